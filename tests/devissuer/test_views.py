"""The development issuer's endpoints, and its tokens judged by the resource server
through discovery and JWKS over real HTTP."""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okta_pyramid.devissuer import prefetch_keys
from okta_pyramid.devissuer.keys import KeyStore
from okta_pyramid.tokens.discovery import IssuerClient
from okta_pyramid.tokens.verifier import AccessTokenVerifier

from ..helpers import basic
from ..issuer import unreachable_url
from .helpers import GRANT, TOKEN, DevServer


def header(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


# -- metadata and keys ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["oauth-authorization-server", "openid-configuration"])
def test_metadata_is_public_and_names_the_configured_issuer(dev: DevServer, name: str):
    # okta.protect_all is on: these views must still answer without a token.
    document = dev.app.get(f"/oauth2/default/.well-known/{name}").json
    assert document["issuer"] == dev.issuer
    assert document["jwks_uri"] == f"{dev.issuer}/v1/keys"
    assert document["token_endpoint"] == f"{dev.issuer}/v1/token"
    assert document["grant_types_supported"] == [
        "client_credentials",
        "authorization_code",
        "refresh_token",
    ]
    # The clients' scopes, and the OpenID Connect ones any sign-in may ask for.
    assert document["scopes_supported"] == [
        "api.read",
        "api.write",
        "email",
        "offline_access",
        "openid",
        "profile",
    ]


def test_the_resource_servers_discovery_accepts_the_metadata(dev: DevServer):
    metadata = IssuerClient(dev.issuer, http_timeout=2).metadata()
    assert metadata.jwks_uri == f"{dev.issuer}/v1/keys"


def test_keys_publish_public_halves_only(dev: DevServer):
    response = dev.app.get("/oauth2/default/v1/keys")
    assert response.cache_control.no_cache
    (key,) = response.json["keys"]
    assert set(key) == {"kty", "alg", "kid", "use", "e", "n"}
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"


# -- the token endpoint: success --------------------------------------------------------


def test_client_credentials_with_basic_authentication(dev: DevServer):
    response = dev.app.post(
        TOKEN, GRANT, headers={"Authorization": basic("svc-client", "s3cret-value")}
    )
    assert response.cache_control.no_store
    assert response.headers["Pragma"] == "no-cache"
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "api.read"
    token = body["access_token"]
    # Okta's header: kid and alg, nothing else.
    assert header(token) == {"alg": "RS256", "kid": KeyStore(str(dev.keys_dir)).signing_key.kid}
    claims = AccessTokenVerifier(dev.issuer, "api://default", http_timeout=2).verify(token)
    assert set(claims) == {"ver", "jti", "iss", "aud", "iat", "exp", "cid", "scp", "sub"}
    assert claims["iss"] == dev.issuer
    assert claims["aud"] == "api://default"
    assert claims["cid"] == claims["sub"] == "svc-client"
    assert claims["scp"] == ["api.read"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"].startswith("AT.")


def test_the_form_media_type_is_case_insensitive(dev: DevServer):
    body = "grant_type=client_credentials&scope=api.read"
    response = dev.app.post(
        TOKEN,
        body,
        content_type="Application/X-WWW-Form-Urlencoded",
        headers={"Authorization": basic("svc-client", "s3cret-value")},
    )
    assert response.json["token_type"] == "Bearer"


def test_client_credentials_with_form_authentication(dev: DevServer):
    response = dev.app.post(
        TOKEN,
        {
            **GRANT,
            "scope": "api.read api.write",
            "client_id": "svc-client",
            "client_secret": "s3cret-value",
        },
    )
    assert response.json["scope"] == "api.read api.write"


def test_basic_credentials_are_form_urlencoded(dev: DevServer):
    # RFC 6749 §2.3.1: "p@ss:w0rd!x" travels as "p%40ss%3Aw0rd%21x" inside Basic.
    response = dev.app.post(
        TOKEN, GRANT, headers={"Authorization": basic("read-client", "p@ss:w0rd!x")}
    )
    assert response.json["token_type"] == "Bearer"


def test_token_lifetime_comes_from_the_settings(serve):
    dev = serve(**{"devissuer.token_lifetime": "300"})
    claims = jwt.decode(dev.token(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 300


# -- the token endpoint: OAuth errors (RFC 6749 §5.2) -----------------------------------


@pytest.mark.parametrize(
    "headers, params",
    [
        ({"Authorization": basic("svc-client", "wrong-secret")}, {}),
        ({"Authorization": basic("nobody", "s3cret-value")}, {}),
        ({"Authorization": "Basic !!!not-base64"}, {}),
        ({"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, {}),
        ({}, {"client_id": "svc-client", "client_secret": "wrong-secret"}),
        ({}, {"client_id": "svc-client"}),
        ({}, {}),
        ({"Authorization": "Bearer something"}, {}),
    ],
    ids=[
        "wrong-secret",
        "unknown-client",
        "bad-base64",
        "no-colon",
        "form-wrong-secret",
        "form-no-secret",
        "none",
        "bearer-instead",
    ],
)
def test_invalid_client_is_401_with_a_basic_challenge(dev: DevServer, headers, params):
    response = dev.app.post(TOKEN, {**GRANT, **params}, headers=headers, status=401)
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"] == f'Basic realm="{dev.issuer}"'
    assert response.cache_control.no_store


def test_two_client_authentication_methods_are_refused(dev: DevServer):
    # RFC 6749 §2.3: the client must not use more than one authentication method.
    response = dev.app.post(
        TOKEN,
        {**GRANT, "client_id": "svc-client", "client_secret": "s3cret-value"},
        headers={"Authorization": basic("svc-client", "s3cret-value")},
        status=400,
    )
    assert response.json["error"] == "invalid_request"


def test_client_id_in_the_body_must_match_basic(dev: DevServer):
    response = dev.app.post(
        TOKEN,
        {**GRANT, "client_id": "read-client"},
        headers={"Authorization": basic("svc-client", "s3cret-value")},
        status=400,
    )
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    "params, error",
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        # A client with no redirect URI has no user signing in to it.
        ({"grant_type": "authorization_code"}, "unauthorized_client"),
        ({"grant_type": ""}, "invalid_request"),
        ({"grant_type": None}, "invalid_request"),
        ({"scope": None}, "invalid_scope"),
        ({"scope": "  "}, "invalid_scope"),
        ({"scope": "api.admin"}, "invalid_scope"),
        ({"scope": "api.read api.admin"}, "invalid_scope"),
    ],
    ids=[
        "password",
        "code",
        "empty-grant",
        "no-grant",
        "no-scope",
        "blank-scope",
        "unknown-scope",
        "one-unknown-scope",
    ],
)
def test_grant_and_scope_errors_are_400(dev: DevServer, params, error):
    form = {k: v for k, v in {**GRANT, **params}.items() if v is not None}
    response = dev.app.post(
        TOKEN, form, headers={"Authorization": basic("svc-client", "s3cret-value")}, status=400
    )
    assert response.json["error"] == error
    assert "WWW-Authenticate" not in response.headers


def test_a_client_only_gets_its_own_scopes(dev: DevServer):
    response = dev.app.post(
        TOKEN,
        {**GRANT, "scope": "api.write"},
        headers={"Authorization": basic("read-client", "p@ss:w0rd!x")},
        status=400,
    )
    assert response.json["error"] == "invalid_scope"


def test_repeated_parameters_are_refused(dev: DevServer):
    body = "grant_type=client_credentials&scope=api.read&scope=api.write"
    response = dev.app.post(
        TOKEN,
        body,
        headers={
            "Authorization": basic("svc-client", "s3cret-value"),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        status=400,
    )
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", b'{"grant_type": "client_credentials"}'),
        ("text/plain", b"grant_type=client_credentials"),
        ("application/x-www-form-urlencoded", b"grant_type=\xff\xfe&scope=%ff"),
        ("application/x-www-form-urlencoded", b"scope=" + b"a" * 20000),
    ],
)
def test_malformed_bodies_are_invalid_request(dev: DevServer, content_type, body):
    response = dev.app.post(
        TOKEN,
        body,
        headers={
            "Authorization": basic("svc-client", "s3cret-value"),
            "Content-Type": content_type,
        },
        status=400,
    )
    assert response.json["error"] == "invalid_request"


def test_the_token_endpoint_only_accepts_post(dev: DevServer):
    response = dev.app.get(TOKEN, status=405)
    assert response.headers["Allow"] == "POST"
    assert response.json["error"] == "invalid_request"


def test_secrets_and_tokens_are_never_logged(dev: DevServer, caplog):
    caplog.set_level("DEBUG")
    token = dev.token()
    dev.app.post(
        TOKEN, GRANT, headers={"Authorization": basic("svc-client", "wrong-secret")}, status=401
    )
    dev.whoami(token)
    assert "token issued: client_id=svc-client" in caplog.text
    for secret in ("s3cret-value", "wrong-secret", token, token.split(".")[2]):
        assert secret not in caplog.text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=300), authorization=st.text(max_size=80))
def test_no_request_makes_the_token_endpoint_fail(dev: DevServer, body, authorization):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if authorization.isascii() and authorization.isprintable():
        headers["Authorization"] = authorization
    response = dev.app.post(TOKEN, body, headers=headers, expect_errors=True)
    assert response.status_int in (200, 400, 401)


# -- the resource server judges dev tokens as it judges Okta's --------------------------


def test_whoami_accepts_a_dev_token_through_discovery_and_jwks(dev: DevServer):
    claims = dev.whoami(dev.token(scope="api.read api.write")).json
    assert claims["sub"] == "svc-client"
    assert claims["scp"] == ["api.read", "api.write"]


def test_whoami_rejects_a_token_signed_with_another_folders_key(dev: DevServer, tmp_path):
    # Same issuer, same claims, but a key this issuer never published: no shortcut.
    from okta_pyramid.devissuer import TokenFactory

    other = TokenFactory(
        dev.app.app.registry.devissuer_settings, KeyStore(str(tmp_path / "other-keys"))
    )
    response = dev.whoami(other.client_token("svc-client", ["api.read"]), status=401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_keys_survive_a_restart(serve):
    first = serve()
    token = first.token()
    second = serve()  # a new process would read the same keys folder
    assert second.keys_dir == first.keys_dir
    assert KeyStore(str(second.keys_dir)).signing_key.kid == header(token)["kid"]
    second.whoami(second.token())


def test_rotation_end_to_end(dev: DevServer):
    """Tokens signed before a rotation stay valid while their key is published; the
    new key is picked up by the running resource server without a restart."""
    old = dev.token()
    dev.whoami(old)
    other_process = KeyStore(str(dev.keys_dir), keep=2)

    new_key = other_process.rotate()
    published = [k["kid"] for k in dev.app.get("/oauth2/default/v1/keys").json["keys"]]
    assert published == [new_key.kid, header(old)["kid"]]
    new = dev.token()
    assert header(new)["kid"] == new_key.kid
    dev.whoami(new)
    dev.whoami(old)

    newest_key = other_process.rotate()  # keep=2: the first key is withdrawn
    newest = dev.token()
    assert header(newest)["kid"] == newest_key.kid
    dev.whoami(newest)  # unknown kid: the resource server refetches the key set
    response = dev.whoami(old, status=401)
    assert "key" in response.json["error_description"]
    dev.whoami(new)


# -- the app fetching its own keys never starves its workers ----------------------------


def wait_for_prefetch(dev: DevServer, timeout: float = 10) -> frozenset[str]:
    keys = dev.app.app.registry.okta.verifier.keys
    deadline = time.monotonic() + timeout
    while not keys.kids and time.monotonic() < deadline:
        time.sleep(0.02)
    return keys.kids


def test_keys_are_prefetched_once_the_server_listens(dev: DevServer):
    # No request has been made: the keys come from the prefetch alone.
    assert wait_for_prefetch(dev) == {KeyStore(str(dev.keys_dir)).signing_key.kid}


def test_a_burst_larger_than_the_worker_pool_is_answered(dev: DevServer):
    """More concurrent first requests than waitress has workers (4 here): without the
    prefetch every worker would wait on a key fetch that needs a worker itself."""
    token = dev.token()
    assert wait_for_prefetch(dev)

    def call(_: int) -> int:
        return requests.get(
            f"{dev.base_url}/api/whoami", timeout=30, headers={"Authorization": f"Bearer {token}"}
        ).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(call, range(12)))
    assert statuses == [200] * 12
    assert time.monotonic() - started < 2  # no request waited for a fetch timeout


def test_prefetch_gives_up_when_nothing_listens(dev: DevServer):
    verifier = AccessTokenVerifier(unreachable_url(), http_timeout=1)
    assert prefetch_keys(verifier, verifier.issuer, timeout=0.3) is False
