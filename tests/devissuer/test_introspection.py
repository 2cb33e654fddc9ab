"""Token introspection (RFC 7662) at the development issuer, answered as an Okta
custom authorization server answers: client authentication, ``{"active": false}``
and nothing else for any token that is not active, Okta's members for one that is."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okta_pyramid.devissuer import TokenFactory
from okta_pyramid.devissuer.introspection import active_claims
from okta_pyramid.devissuer.keys import KeyStore
from okta_pyramid.devissuer.revocation import RevokedTokens
from okta_pyramid.tokens.exceptions import ExpiredToken, ImmatureToken

from ..helpers import b64url, basic, thumbprint
from .helpers import (
    DPOP_CLIENTS,
    INACTIVE,
    INTROSPECT,
    READER,
    SVC,
    DevServer,
    bound_token,
    factory,
    introspect,
    mint,
    tampered,
)

FORM = "application/x-www-form-urlencoded"


# -- metadata ---------------------------------------------------------------------------


def test_metadata_names_the_introspection_and_revocation_endpoints(dev: DevServer):
    document = dev.app.get("/oauth2/default/.well-known/oauth-authorization-server").json
    assert document["introspection_endpoint"] == f"{dev.issuer}/v1/introspect"
    assert document["revocation_endpoint"] == f"{dev.issuer}/v1/revoke"
    methods = ["client_secret_basic", "client_secret_post"]
    assert document["introspection_endpoint_auth_methods_supported"] == methods
    # A public client revokes by its client_id alone (RFC 7009 §2.1).
    assert document["revocation_endpoint_auth_methods_supported"] == [*methods, "none"]
    # The URLs in the metadata are the ones that answer.
    for url in (document["introspection_endpoint"], document["revocation_endpoint"]):
        path = url.removeprefix(dev.base_url)
        assert dev.app.post(path, {"token": "x"}, headers={"Authorization": SVC}).status_int == 200


# -- client authentication (RFC 7662 §2.1, RFC 6749 §2.3.1) -----------------------------


@pytest.mark.parametrize(
    "authorization, params",
    [
        (basic("svc-client", "wrong-secret"), {}),
        (basic("nobody", "s3cret-value"), {}),
        ("Basic !!!not-base64", {}),
        (None, {"client_id": "svc-client", "client_secret": "wrong-secret"}),
        (None, {"client_id": "svc-client"}),
        (None, {}),
        ("Bearer something", {}),
    ],
    ids=[
        "wrong-secret",
        "unknown-client",
        "bad-base64",
        "form-wrong-secret",
        "form-no-secret",
        "none",
        "bearer-instead",
    ],
)
def test_an_unauthenticated_caller_learns_nothing(dev: DevServer, authorization, params):
    token = dev.token()
    response = introspect(dev, token, authorization=authorization, status=401, **params)
    assert response.json["error"] == "invalid_client"
    assert "active" not in response.json
    assert response.headers["WWW-Authenticate"] == f'Basic realm="{dev.issuer}"'
    assert response.cache_control.no_store


def test_two_client_authentication_methods_are_refused(dev: DevServer):
    response = introspect(
        dev, dev.token(), status=400, client_id="svc-client", client_secret="s3cret-value"
    )
    assert response.json["error"] == "invalid_request"
    assert "active" not in response.json


def test_client_secret_post_authenticates(dev: DevServer):
    response = introspect(
        dev, dev.token(), authorization=None, client_id="read-client", client_secret="p@ss:w0rd!x"
    )
    assert response.json["active"] is True


def test_any_client_may_introspect_another_clients_token(dev: DevServer):
    # A resource server introspects with its own credentials tokens issued to others.
    answer = introspect(dev, dev.token(), authorization=READER).json
    assert answer["active"] is True
    assert answer["client_id"] == "svc-client"


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token_type_hint": "access_token"}])
def test_the_token_parameter_is_required(dev: DevServer, body):
    response = dev.app.post(INTROSPECT, body, headers={"Authorization": SVC}, status=400)
    assert response.json["error"] == "invalid_request"


def test_the_form_is_parsed_as_at_the_token_endpoint(dev: DevServer):
    token = dev.token()
    for body, content_type in [
        (f"token={token}&token={token}", FORM),
        ('{"token": "x"}', "application/json"),
    ]:
        response = dev.app.post(
            INTROSPECT,
            body,
            status=400,
            headers={"Authorization": SVC, "Content-Type": content_type},
        )
        assert response.json["error"] == "invalid_request"


def test_introspection_only_accepts_post(dev: DevServer):
    response = dev.app.get(INTROSPECT, status=405)
    assert response.headers["Allow"] == "POST"


# -- an active token: what Okta answers (RFC 7662 §2.2) ---------------------------------


def test_a_clients_token_is_described_as_okta_describes_it(dev: DevServer):
    token = dev.token(scope="api.read api.write")
    response = introspect(dev, token)
    assert response.cache_control.no_store
    claims = jwt.decode(token, options={"verify_signature": False})
    assert response.json == {
        "active": True,
        "token_type": "Bearer",
        "scope": "api.read api.write",
        "client_id": "svc-client",
        "sub": "svc-client",
        "aud": "api://default",
        "iss": dev.issuer,
        "exp": claims["exp"],
        "iat": claims["iat"],
        "jti": claims["jti"],
    }


def test_a_users_token_names_the_user(dev: DevServer):
    token = factory(dev).user_token(
        "alice@example.com", client_id="svc-client", scopes=["api.read"], groups=["admins", "staff"]
    )
    answer = introspect(dev, token).json
    assert answer["username"] == answer["sub"] == "alice@example.com"
    assert answer["uid"].startswith("00u")
    assert answer["groups"] == ["admins", "staff"]
    assert answer["token_type"] == "Bearer"


def test_nbf_is_passed_on_when_the_token_has_it(dev: DevServer):
    now = int(time.time())
    assert introspect(dev, mint(dev, nbf=now - 5)).json["nbf"] == now - 5


def test_a_dpop_bound_token_is_of_type_dpop_with_its_key(serve):
    # RFC 9449 §6.2: token_type DPoP and cnf.jkt, from a token bound at /v1/token.
    dev = serve(**{"devissuer.clients": DPOP_CLIENTS})
    key = ec.generate_private_key(ec.SECP256R1())
    token = bound_token(dev, key).json["access_token"]
    answer = introspect(dev, token).json
    assert answer["active"] is True
    assert answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": thumbprint(key)}


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "id_token", "no-such-hint"])
def test_token_type_hints_are_ignored(dev: DevServer, hint):
    assert introspect(dev, dev.token(), token_type_hint=hint).json["active"] is True


# -- anything else is inactive, and says nothing more -----------------------------------


def other_key_token(dev: DevServer, tmp_path: Path, *, same_kid: bool = False) -> str:
    store = KeyStore(str(tmp_path / "other-keys"))
    other = TokenFactory(factory(dev).settings, store)
    token = other.client_token("svc-client", ["api.read"])
    if same_kid:
        # The issuer's own kid on a signature by another key.
        own_kid = factory(dev).keys.signing_key.kid
        token = jwt.encode(
            jwt.decode(token, options={"verify_signature": False}),
            store.signing_key.private_key,
            algorithm="RS256",
            headers={"kid": own_kid, "typ": None},
        )
    return token


def signed(dev: DevServer, payload: bytes, **header) -> str:
    """``payload`` signed RS256 with this issuer's key, under its kid and ``header``
    (by hand: PyJWT would sign with whatever algorithm the header names)."""
    key = factory(dev).keys.signing_key
    signing_input = (
        b64url(json.dumps({"alg": "RS256", "kid": key.kid, **header}).encode())
        + "."
        + b64url(payload)
    )
    signature = key.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def signed_with_header(dev: DevServer, **header) -> str:
    """A token of this issuer's key, under a header the issuer never writes."""
    claims = factory(dev).claims(client_id="svc-client", subject="svc-client", scopes=["api.read"])
    return signed(dev, json.dumps(claims).encode(), **header)


def test_inactive_answers_say_nothing_else(dev: DevServer, tmp_path: Path):
    now = int(time.time())
    kid = factory(dev).keys.signing_key.kid
    good = dev.token()
    cases = {
        "not a JWT": "not-a-token",
        "three garbage parts": "a.b.c",
        "tampered claims": tampered(good),
        "signature of another token": good.rsplit(".", 1)[0] + "." + dev.token().split(".")[2],
        "another issuer's key": other_key_token(dev, tmp_path),
        "another key under our kid": other_key_token(dev, tmp_path, same_kid=True),
        "HS256 with the kid": jwt.encode(
            {"iss": dev.issuer}, "k" * 32, algorithm="HS256", headers={"kid": kid}
        ),
        # The resource server refuses these, so introspection must not call them active.
        "labelled RS512": signed_with_header(dev, alg="RS512"),
        "a critical extension": signed_with_header(dev, crit=["exp"], exp=1),
        "no kid": signed_with_header(dev, kid=None),
        "wrong issuer": mint(dev, iss="http://127.0.0.1:1/oauth2/default"),
        # Inside the resource server's 60 s leeway: the issuer allows none.
        "expired a second ago": mint(dev, iat=now - 100, exp=now - 1),
        "not before the future": mint(dev, nbf=now + 30),
        "issued in the future": mint(dev, iat=now + 30),
        "no jti": mint(dev, jti=None),
        "no cid": mint(dev, cid=None),
        "no scp": mint(dev, scp=None),
        "exp a string": mint(dev, exp=str(now + 100)),
        "padded": good + "==",
        "not ASCII": good[:-1] + "é",
    }
    assert introspect(dev, signed_with_header(dev)).json["active"] is True  # the control
    for name, token in cases.items():
        response = introspect(dev, token)
        assert response.json == INACTIVE, name
        assert response.cache_control.no_store, name
    assert introspect(dev, good).json["active"] is True


def test_a_token_whose_key_was_withdrawn_is_inactive(dev: DevServer):
    token = dev.token()
    store = KeyStore(str(dev.keys_dir), keep=2)
    store.rotate()
    assert introspect(dev, token).json["active"] is True  # still published
    store.rotate()
    assert introspect(dev, token).json == INACTIVE


def test_expiry_has_no_leeway(dev: DevServer):
    token = dev.token()
    claims = jwt.decode(token, options={"verify_signature": False})
    store = factory(dev).keys

    def judge(now: float):
        return active_claims(token, issuer=dev.issuer, keys=store, revoked=RevokedTokens(), now=now)

    assert judge(claims["exp"] - 0.001)["jti"] == claims["jti"]
    with pytest.raises(ExpiredToken):
        judge(claims["exp"])
    with pytest.raises(ImmatureToken):
        judge(claims["iat"] - 0.001)


# -- logs and robustness ----------------------------------------------------------------


def test_no_token_or_secret_is_logged(dev: DevServer, caplog):
    caplog.set_level("DEBUG")
    token = dev.token()
    introspect(dev, token)
    introspect(dev, tampered(token))
    introspect(dev, token, authorization=basic("svc-client", "wrong-secret"), status=401)
    assert "token introspected: active=true" in caplog.text
    assert "token introspected: active=false reason=bad_signature" in caplog.text
    for secret in (
        "s3cret-value",
        "wrong-secret",
        token,
        token.split(".")[1],
        token.split(".")[2],
        tampered(token).split(".")[1],
    ):
        assert secret not in caplog.text


def test_introspection_over_http_with_curls_basic_credentials(dev: DevServer):
    # What `curl -u id:secret -d token=...` sends: Basic, and a form body.
    token = dev.token()
    with requests.Session() as session:
        session.trust_env = False
        answer = session.post(
            f"{dev.issuer}/v1/introspect",
            data={"token": token},
            auth=("svc-client", "s3cret-value"),
            timeout=10,
        )
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.json()["active"] is True


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    token=st.text(max_size=300)
    | st.from_regex(
        r"[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,40}"
        r"\.[A-Za-z0-9_-]{0,400}",
        fullmatch=True,
    ),
    hint=st.text(max_size=20),
)
def test_no_token_makes_introspection_fail(dev: DevServer, token, hint):
    response = dev.app.post(
        INTROSPECT,
        {"token": token, "token_type_hint": hint},
        headers={"Authorization": SVC},
        expect_errors=True,
    )
    assert response.status_int in (200, 400)
    if response.status_int == 200:
        assert response.json == INACTIVE


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    claims=st.binary(max_size=200)
    | st.dictionaries(
        st.sampled_from(["iss", "exp", "iat", "nbf", "jti", "cid", "sub", "scp", "cnf"]),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=5)
        | st.lists(st.text(max_size=5), max_size=2),
    ).map(lambda d: json.dumps(d).encode())
)
def test_no_claims_signed_by_the_issuers_key_make_introspection_fail(dev: DevServer, claims):
    # Signed with the issuer's key, so every claim check runs on what was drawn.
    assert introspect(dev, signed(dev, claims)).json == INACTIVE
