"""Token revocation (RFC 7009) at the development issuer: a client revokes its own
tokens, the answer never tells whether a token was valid, and a revoked token is
inactive at introspection until it expires, when the issuer forgets it."""

from __future__ import annotations

import time

import jwt
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okta_pyramid.devissuer.revocation import RevokedTokens

from ..helpers import Clock, basic
from .helpers import INACTIVE, READER, SVC, DevServer, introspect, mint, tampered

REVOKE = "/oauth2/default/v1/revoke"


def revoke(
    dev: DevServer, token: str, *, authorization: str | None = SVC, status: int = 200, **params: str
):
    headers = {"Authorization": authorization} if authorization else {}
    return dev.app.post(REVOKE, {"token": token, **params}, headers=headers, status=status)


def active(dev: DevServer, token: str) -> bool:
    return introspect(dev, token).json["active"]


# -- revoking ---------------------------------------------------------------------------


def test_a_revoked_token_is_inactive_and_others_are_not(dev: DevServer):
    token, other = dev.token(), dev.token()
    response = revoke(dev, token)
    assert response.body == b""
    assert "Content-Type" not in response.headers
    assert response.cache_control.no_store
    assert introspect(dev, token).json == INACTIVE
    assert active(dev, other)
    revoke(dev, token)  # again: still 200, nothing to say
    assert introspect(dev, token).json == INACTIVE


def test_client_secret_post_authenticates(dev: DevServer):
    token = dev.token(client_id="read-client", secret="p@ss:w0rd!x")
    revoke(dev, token, authorization=None, client_id="read-client", client_secret="p@ss:w0rd!x")
    assert not active(dev, token)


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "no-such-hint"])
def test_token_type_hints_are_ignored(dev: DevServer, hint):
    token = dev.token()
    revoke(dev, token, token_type_hint=hint)
    assert not active(dev, token)


def test_an_inactive_or_unknown_token_is_a_silent_success(dev: DevServer):
    # RFC 7009 §2.2: 200 for an invalid token too, so the answer reveals nothing.
    now = int(time.time())
    good = dev.token()
    for token in (
        "not-a-token",
        "a.b.c",
        tampered(good),
        mint(dev, exp=now - 1, iat=now - 9),
        mint(dev, iss="http://127.0.0.1:1/oauth2/default"),
        mint(dev, cid="read-client", exp=now - 1, iat=now - 9),
    ):
        assert revoke(dev, token).body == b""
    assert len(dev.app.app.registry.devissuer_revoked) == 0
    assert active(dev, good)


def test_a_client_may_not_revoke_another_clients_token(dev: DevServer):
    token = dev.token()  # svc-client's
    response = revoke(dev, token, authorization=READER, status=400)
    assert response.json["error"] == "unauthorized_client"
    assert "WWW-Authenticate" not in response.headers
    assert active(dev, token)
    revoke(dev, token)  # its own client may
    assert not active(dev, token)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=st.text(max_size=300), hint=st.text(max_size=20))
def test_no_token_makes_revocation_fail(dev: DevServer, token, hint):
    response = dev.app.post(
        REVOKE,
        {"token": token, "token_type_hint": hint},
        headers={"Authorization": SVC},
        expect_errors=True,
    )
    assert response.status_int in (200, 400)
    if response.status_int == 200:
        assert response.body == b""


# -- refusals that revoke nothing -------------------------------------------------------


@pytest.mark.parametrize(
    "authorization, params",
    [
        (basic("svc-client", "wrong-secret"), {}),
        (basic("nobody", "s3cret-value"), {}),
        (None, {"client_id": "svc-client", "client_secret": "wrong-secret"}),
        (None, {"client_id": "svc-client"}),
        (None, {}),
    ],
    ids=["wrong-secret", "unknown-client", "form-wrong-secret", "form-no-secret", "none"],
)
def test_revocation_needs_client_authentication(dev: DevServer, authorization, params):
    token = dev.token()
    response = revoke(dev, token, authorization=authorization, status=401, **params)
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"] == f'Basic realm="{dev.issuer}"'
    assert active(dev, token)


def test_two_client_authentication_methods_are_refused(dev: DevServer):
    token = dev.token()
    response = revoke(dev, token, status=400, client_id="svc-client", client_secret="s3cret-value")
    assert response.json["error"] == "invalid_request"
    assert active(dev, token)


@pytest.mark.parametrize("body", [{}, {"token": ""}])
def test_the_token_parameter_is_required(dev: DevServer, body):
    response = dev.app.post(REVOKE, body, headers={"Authorization": SVC}, status=400)
    assert response.json["error"] == "invalid_request"


def test_revocation_only_accepts_post(dev: DevServer):
    assert dev.app.get(REVOKE, status=405).headers["Allow"] == "POST"


# -- the revocation list behind the endpoint: bounded and pruned ------------------------


def test_a_full_revocation_list_refuses_with_503_and_revokes_nothing(dev: DevServer):
    registry = dev.app.app.registry
    registry.devissuer_revoked = RevokedTokens(max_entries=1)
    first, second = dev.token(), dev.token()
    revoke(dev, first)
    response = revoke(dev, second, status=503)
    assert response.json["error"] == "temporarily_unavailable"
    # RFC 7009 §2.2.1: the client retries later; the oldest entry expires within the hour.
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    assert active(dev, second)
    assert not active(dev, first)


def test_a_revoked_token_is_forgotten_once_it_has_expired(dev: DevServer):
    registry = dev.app.app.registry
    token = dev.token()
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    clock = Clock(time.time())
    registry.devissuer_tokens.clock = clock
    registry.devissuer_revoked = revoked = RevokedTokens(clock=clock)
    revoke(dev, token)
    assert len(revoked) == 1 and not active(dev, token)
    clock.now = exp - 0.001
    assert len(revoked) == 1
    clock.now = exp
    assert len(revoked) == 0
    assert introspect(dev, token).json == INACTIVE  # expired, not revoked, now


# -- logs, and the quick start's round trip over HTTP -----------------------------------


def test_no_token_or_secret_is_logged(dev: DevServer, caplog):
    caplog.set_level("DEBUG")
    token, foreign = dev.token(), dev.token()
    revoke(dev, token)
    revoke(dev, foreign, authorization=READER, status=400)
    revoke(dev, token, authorization=basic("svc-client", "wrong-secret"), status=401)
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert f"token revoked: jti={jti} client_id=svc-client" in caplog.text
    assert "revocation refused: error=unauthorized_client" in caplog.text
    for secret in (
        "s3cret-value",
        "p@ss:w0rd!x",
        "wrong-secret",
        token,
        foreign,
        token.split(".")[1],
        token.split(".")[2],
        foreign.split(".")[2],
    ):
        assert secret not in caplog.text


def test_get_a_token_revoke_it_and_introspection_calls_it_inactive(dev: DevServer):
    """The offline quick start, as curl does it: Basic credentials and form bodies."""
    auth = ("svc-client", "s3cret-value")
    with requests.Session() as session:
        session.trust_env = False

        def post(endpoint: str, **data: str) -> requests.Response:
            return session.post(f"{dev.issuer}/v1/{endpoint}", data=data, auth=auth, timeout=10)

        token = post("token", grant_type="client_credentials", scope="api.write").json()[
            "access_token"
        ]
        assert post("introspect", token=token).json()["active"] is True
        revoked = post("revoke", token=token)
        assert revoked.status_code == 200 and revoked.content == b""
        assert post("introspect", token=token).json() == INACTIVE
