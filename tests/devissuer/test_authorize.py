"""Signing users in at the development issuer: the authorization endpoint and its
login page (RFC 6749 §4.1, RFC 7636, RFC 8252 §7.3, OIDC Core §3.1), the
authorization-code and refresh-token grants, userinfo and logout. Each rule has a
test that fails without it."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from typing import Any

import jwt
import pytest
import webtest
from cryptography.hazmat.primitives.asymmetric import ec
from webtest.http import StopableWSGIServer

from okta_pyramid.app import main
from okta_pyramid.devissuer.signin import SignIns
from okta_pyramid.tokens.dpop import make_proof

from .helpers import DevServer, basic, dev_settings
from .signin_helpers import (
    APP_CALLBACK,
    AUTHORIZE,
    LOGIN,
    LOGOUT,
    SIGNIN_CLIENTS,
    SPA,
    TOKEN,
    USERINFO,
    WEB,
    WEB_SECRET,
    authorize_params,
    exchange,
    form_fields,
    pkce,
    redirect_params,
    refresh,
    sign_in,
    submit_login,
    submit_otp,
)

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def dev(serve) -> DevServer:
    return serve(**{"devissuer.clients": SIGNIN_CLIENTS})


def signin_state(dev: DevServer) -> SignIns:
    return dev.app.app.registry.devissuer_signins


def tokens_for(dev: DevServer, **changes: Any) -> dict[str, Any]:
    pair = pkce()
    params = sign_in(dev, pair, **changes)
    redirect_uri = changes.get("redirect_uri", "http://127.0.0.1:49152/callback")
    return exchange(dev, params["code"], pair.verifier, redirect_uri=redirect_uri, status=200).json


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# -- the whole flow ---------------------------------------------------------------


def test_a_user_signs_in_and_calls_the_api(dev: DevServer):
    pair = pkce()
    page = dev.app.get(AUTHORIZE, authorize_params(pair, state="s-1", nonce="n-1"))
    assert page.content_type == "text/html"
    assert 'name="username"' in page.text
    answer = redirect_params(submit_login(dev.app, page, "alice@example.com", "admins staff"))
    assert answer["state"] == "s-1"
    tokens = exchange(dev, answer["code"], pair.verifier, status=200).json
    assert tokens["token_type"] == "Bearer"
    assert set(tokens) >= {"access_token", "id_token", "refresh_token", "expires_in", "scope"}
    access = claims(tokens["access_token"])
    assert access["sub"] == "alice@example.com"
    assert access["uid"].startswith("00u")
    assert access["cid"] == SPA
    assert access["scp"] == ["openid", "profile", "offline_access", "api.read"]
    assert access["groups"] == ["admins", "staff"]
    assert access["acr"] == "urn:okta:loa:1fa:pwd"
    assert access["amr"] == ["pwd"]
    assert abs(access["auth_time"] - time.time()) < 10
    whoami = dev.whoami(tokens["access_token"]).json
    assert whoami["sub"] == "alice@example.com"


def test_the_id_token_is_rs256_with_nonce_and_at_hash(dev: DevServer):
    tokens = tokens_for(dev, nonce="n-42")
    keys = dev.app.get("/oauth2/default/v1/keys").json["keys"]
    header = jwt.get_unverified_header(tokens["id_token"])
    key = jwt.PyJWK(keys[0]).key
    assert header["alg"] == "RS256" and header["kid"] == keys[0]["kid"]
    id_token = jwt.decode(tokens["id_token"], key, algorithms=["RS256"], audience=SPA)
    assert id_token["iss"] == dev.issuer
    assert id_token["nonce"] == "n-42"
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()[:16]
    assert id_token["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert id_token["sub"] == claims(tokens["access_token"])["uid"]
    assert id_token["preferred_username"] == "alice@example.com"


def test_the_metadata_lists_the_sign_in_endpoints(dev: DevServer):
    for name in ("oauth-authorization-server", "openid-configuration"):
        meta = dev.app.get(f"/oauth2/default/.well-known/{name}").json
        assert meta["authorization_endpoint"] == dev.issuer + "/v1/authorize"
        assert meta["userinfo_endpoint"] == dev.issuer + "/v1/userinfo"
        assert meta["end_session_endpoint"] == dev.issuer + "/v1/logout"
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert meta["response_types_supported"] == ["code"]
        assert meta["grant_types_supported"] == [
            "client_credentials",
            "authorization_code",
            "refresh_token",
        ]
        assert "none" in meta["token_endpoint_auth_methods_supported"]
        assert meta["acr_values_supported"] == [
            "urn:okta:loa:1fa:any",
            "urn:okta:loa:1fa:pwd",
            "urn:okta:loa:2fa:any",
            "urn:okta:loa:2fa:any:ifpossible",
            "phr",
            "phrh",
        ]
        assert {"openid", "offline_access"} <= set(meta["scopes_supported"])


# -- PKCE -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "description"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "PKCE is required"),
        ({"code_challenge_method": "plain"}, "must be S256"),
        ({"code_challenge_method": None}, "must be S256"),
        ({"code_challenge": "too-short"}, "not an S256 challenge"),
    ],
)
def test_pkce_s256_is_required_at_the_authorize_endpoint(dev: DevServer, changes, description):
    answer = redirect_params(dev.app.get(AUTHORIZE, authorize_params(pkce(), **changes)))
    assert answer["error"] == "invalid_request"
    assert description in answer["error_description"]
    assert "state" in answer


@pytest.mark.parametrize(
    ("verifier", "description"),
    [
        (None, "PKCE is required"),
        ("x" * 43, "does not match"),
        ("short", "43 to 128"),
    ],
)
def test_the_code_needs_the_right_verifier(dev: DevServer, verifier, description):
    pair = pkce()
    code = sign_in(dev, pair)["code"]
    body = {
        "grant_type": "authorization_code",
        "client_id": SPA,
        "code": code,
        "redirect_uri": "http://127.0.0.1:49152/callback",
    }
    if verifier is not None:
        body["code_verifier"] = verifier
    answer = dev.app.post(TOKEN, body, status=400).json
    assert description in answer["error_description"]


def test_a_public_client_cannot_use_client_credentials(dev: DevServer):
    body = {"grant_type": "client_credentials", "client_id": SPA, "scope": "api.read"}
    assert dev.app.post(TOKEN, body, status=400).json["error"] == "unauthorized_client"


def test_a_public_client_has_no_secret_to_send(dev: DevServer):
    body = {"grant_type": "client_credentials", "client_id": SPA, "client_secret": "-"}
    assert dev.app.post(TOKEN, body, status=401).json["error"] == "invalid_client"


def test_a_confidential_client_must_authenticate_for_its_code(dev: DevServer):
    pair = pkce()
    redirect = "https://app.example/cb"
    scope = "openid api.read"
    code = sign_in(dev, pair, client_id=WEB, redirect_uri=redirect, scope=scope)["code"]
    no_secret = exchange(dev, code, pair.verifier, client_id=WEB, redirect_uri=redirect)
    assert no_secret.status_int == 401
    code = sign_in(dev, pair, client_id=WEB, redirect_uri=redirect, scope=scope)["code"]
    ok = exchange(
        dev,
        code,
        pair.verifier,
        client_id=WEB,
        redirect_uri=redirect,
        headers={"Authorization": basic(WEB, WEB_SECRET)},
        status=200,
    )
    assert claims(ok.json["access_token"])["cid"] == WEB


# -- redirect URIs ------------------------------------------------------------------


def test_a_loopback_redirect_uri_may_use_any_port(dev: DevServer):
    for port in (1024, 49152, 65535):
        uri = f"http://127.0.0.1:{port}/callback"
        assert "code" in sign_in(dev, pkce(), redirect_uri=uri)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:49152/other",  # another path
        "http://localhost:8081/app/callback",  # another port, not a loopback IP
        "http://localhost:8080/app/callback/",  # not exactly the registered string
        "http://localhost:8080/app/callback?x=1",
        "https://evil.example/callback",
        "http://127.0.0.1.evil.example/callback",
        "http://127.0.0.1@evil.example/callback",
        "//evil.example/callback",
        "javascript:alert(1)",
        "",
    ],
)
def test_an_unregistered_redirect_uri_gets_a_page_not_a_redirect(dev: DevServer, redirect_uri):
    page = dev.app.get(AUTHORIZE, authorize_params(pkce(), redirect_uri=redirect_uri), status=400)
    assert "Location" not in page.headers
    assert page.content_type == "text/html"
    assert "not registered" in page.text or "missing" in page.text


def test_the_registered_non_loopback_uri_matches_exactly(dev: DevServer):
    assert "code" in sign_in(dev, pkce(), redirect_uri=APP_CALLBACK)


@pytest.mark.parametrize("client_id", [None, "", "unknown", "svc-client"])
def test_an_unknown_client_gets_a_page(dev: DevServer, client_id):
    page = dev.app.get(AUTHORIZE, authorize_params(pkce(), client_id=client_id), status=400)
    assert "Location" not in page.headers
    assert "client_id" in page.text


def test_a_repeated_parameter_gets_a_page(dev: DevServer):
    query = "client_id=spa-client&client_id=other&response_type=code"
    page = dev.app.get(f"{AUTHORIZE}?{query}", status=400)
    assert "Location" not in page.headers


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid api.write"}, "invalid_scope"),
        ({"scope": None}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"acr_values": "urn:example:gold"}, "invalid_request"),
        ({"request": "eyJ..."}, "request_not_supported"),
    ],
)
def test_other_errors_go_back_to_the_client(dev: DevServer, changes, error):
    answer = redirect_params(dev.app.get(AUTHORIZE, authorize_params(pkce(), **changes)))
    assert answer["error"] == error


def test_fragment_response_mode(dev: DevServer):
    page = dev.app.get(AUTHORIZE, authorize_params(pkce(), response_mode="fragment"))
    location = submit_login(dev.app, page).headers["Location"]
    assert "#code=" in location and "?" not in location


def test_form_post_response_mode(dev: DevServer):
    pair = pkce()
    page = dev.app.get(AUTHORIZE, authorize_params(pair, response_mode="form_post", state="fp"))
    answer = submit_login(dev.app, page, status=200)
    assert '<form method="post" action="http://127.0.0.1:49152/callback">' in answer.text
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', answer.text))
    assert fields["state"] == "fp"
    exchange(dev, fields["code"], pair.verifier, status=200)
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in csp and "form-action http://127.0.0.1:49152;" in csp
    assert answer.headers["X-Frame-Options"] == "DENY"
    # Errors go back the same way.
    error = dev.app.get(AUTHORIZE, authorize_params(pair, response_mode="form_post", scope="x"))
    assert 'name="error" value="invalid_scope"' in error.text


def test_okta_post_message_response_mode(dev: DevServer):
    sign_in(dev, pkce())
    pair = pkce()
    params = authorize_params(
        pair, response_mode="okta_post_message", prompt="none", state="</script><b>"
    )
    page = dev.app.get(AUTHORIZE, params)
    assert page.status_int == 200
    data = re.search(r"postMessage\((\{.*?\}), \"http://127.0.0.1:49152\"\)", page.text)
    assert data is not None, page.text
    assert "</script><b>" not in page.text  # escaped inside the script
    posted = json.loads(data.group(1))
    assert posted["state"] == "</script><b>"
    exchange(dev, posted["code"], pair.verifier, status=200)
    csp = page.headers["Content-Security-Policy"]
    # Framed by the client's origin only; its one script runs by this answer's nonce.
    assert "frame-ancestors http://127.0.0.1:49152;" in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
    assert f'<script nonce="{nonce}">' in page.text
    assert "X-Frame-Options" not in page.headers
    dev.app.reset()
    error = dev.app.get(AUTHORIZE, params)
    assert '"error": "login_required"' in error.text


# -- codes ------------------------------------------------------------------------


def test_a_code_works_once_and_its_reuse_revokes_its_tokens(dev: DevServer):
    pair = pkce()
    code = sign_in(dev, pair)["code"]
    tokens = exchange(dev, code, pair.verifier, status=200).json
    again = exchange(dev, code, pair.verifier, status=400).json
    assert again["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: the tokens the code was exchanged for are revoked.
    assert refresh(dev, tokens["refresh_token"], status=400).json["error"] == "invalid_grant"
    active = dev.app.post(
        "/oauth2/default/v1/introspect",
        {"token": tokens["access_token"]},
        headers={"Authorization": basic("svc-client", "s3cret-value")},
    ).json
    assert active == {"active": False}


def test_a_code_expires_after_60_seconds(dev: DevServer):
    now = [time.time()]
    dev.app.app.registry.devissuer_signins = SignIns(clock=lambda: now[0])
    pair = pkce()
    code = sign_in(dev, pair)["code"]
    now[0] += 61
    assert exchange(dev, code, pair.verifier, status=400).json["error"] == "invalid_grant"


def test_a_code_is_bound_to_its_client_and_redirect_uri(dev: DevServer):
    pair = pkce()
    code = sign_in(dev, pair)["code"]
    other_port = exchange(
        dev, code, pair.verifier, redirect_uri="http://127.0.0.1:49153/callback", status=400
    )
    assert "redirect_uri" in other_port.json["error_description"]
    code = sign_in(dev, pair)["code"]
    other_client = exchange(
        dev,
        code,
        pair.verifier,
        client_id=WEB,
        headers={"Authorization": basic(WEB, WEB_SECRET)},
        status=400,
    )
    assert "another client" in other_client.json["error_description"]
    # Left unused: its own client still exchanges it.
    exchange(dev, code, pair.verifier, status=200)


# -- refresh tokens ------------------------------------------------------------------


def test_refresh_tokens_rotate(dev: DevServer):
    first = tokens_for(dev)
    second = refresh(dev, first["refresh_token"], status=200).json
    assert second["refresh_token"] != first["refresh_token"]
    assert claims(second["access_token"])["sub"] == "alice@example.com"
    third = refresh(dev, second["refresh_token"], status=200).json
    assert third["access_token"] != second["access_token"]


def test_a_rotated_refresh_token_used_again_revokes_the_family(dev: DevServer):
    first = tokens_for(dev)
    second = refresh(dev, first["refresh_token"], status=200).json
    reused = refresh(dev, first["refresh_token"], status=400).json
    assert reused["error"] == "invalid_grant"
    # The family is revoked: the live refresh token and the access tokens too.
    assert refresh(dev, second["refresh_token"], status=400).json["error"] == "invalid_grant"
    dev.app.get(USERINFO, headers={"Authorization": f"Bearer {second['access_token']}"}, status=401)


def test_a_refresh_token_is_bound_to_its_client(dev: DevServer):
    first = tokens_for(dev)
    body = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    other = dev.app.post(TOKEN, body, headers={"Authorization": basic(WEB, WEB_SECRET)}, status=400)
    assert "another client" in other.json["error_description"]
    # Left as it was: its own client still uses it, once.
    refresh(dev, first["refresh_token"], status=200)


def test_no_refresh_token_without_offline_access(dev: DevServer):
    tokens = tokens_for(dev, scope="openid api.read")
    assert "refresh_token" not in tokens


# -- sessions, prompt, max_age, acr_values ---------------------------------------------


def test_a_second_authorize_skips_the_form(dev: DevServer):
    sign_in(dev, pkce())
    again = dev.app.get(AUTHORIZE, authorize_params(pkce()))
    assert "code" in redirect_params(again)


def test_prompt_none_without_a_session_is_login_required(dev: DevServer):
    answer = redirect_params(dev.app.get(AUTHORIZE, authorize_params(pkce(), prompt="none")))
    assert answer["error"] == "login_required"


def test_prompt_none_with_a_session_gives_a_code(dev: DevServer):
    sign_in(dev, pkce())
    answer = redirect_params(dev.app.get(AUTHORIZE, authorize_params(pkce(), prompt="none")))
    assert "code" in answer


def test_prompt_login_shows_the_form_again(dev: DevServer):
    sign_in(dev, pkce())
    page = dev.app.get(AUTHORIZE, authorize_params(pkce(), prompt="login"))
    assert page.status_int == 200 and 'name="username"' in page.text


def test_max_age_forces_a_new_sign_in(dev: DevServer):
    now = [time.time()]
    dev.app.app.registry.devissuer_signins = SignIns(clock=lambda: now[0])
    sign_in(dev, pkce())
    now[0] += 100
    within = dev.app.get(AUTHORIZE, authorize_params(pkce(), max_age="300"))
    assert within.status_int == 302
    page = dev.app.get(AUTHORIZE, authorize_params(pkce(), max_age="60"))
    assert page.status_int == 200 and 'name="username"' in page.text
    none = redirect_params(
        dev.app.get(AUTHORIZE, authorize_params(pkce(), max_age="60", prompt="none"))
    )
    assert none["error"] == "login_required"


def test_acr_values_force_the_second_step(dev: DevServer):
    pair = pkce()
    page = dev.app.get(AUTHORIZE, authorize_params(pair, acr_values="urn:okta:loa:2fa:any"))
    otp_page = submit_login(dev.app, page)
    assert otp_page.status_int == 200 and 'id="otp-code"' in otp_page.text
    wrong = submit_otp(dev.app, otp_page, "000000" if "000000" not in otp_page.text else "999999")
    assert wrong.status_int == 200 and "not the code" in wrong.text
    answer = redirect_params(submit_otp(dev.app, otp_page))
    access = claims(exchange(dev, answer["code"], pair.verifier, status=200).json["access_token"])
    assert access["acr"] == "urn:okta:loa:2fa:any"
    assert access["amr"] == ["pwd", "otp"]


def test_a_one_factor_session_steps_up_with_the_code_only(dev: DevServer):
    sign_in(dev, pkce())
    pair = pkce()
    page = dev.app.get(AUTHORIZE, authorize_params(pair, acr_values="phr", max_age="300"))
    assert 'id="otp-code"' in page.text and 'name="username"' not in page.text
    answer = redirect_params(submit_otp(dev.app, page))
    access = claims(exchange(dev, answer["code"], pair.verifier, status=200).json["access_token"])
    assert access["acr"] == "urn:okta:loa:2fa:any"
    none = redirect_params(
        dev.app.get(AUTHORIZE, authorize_params(pkce(), acr_values="phr", prompt="none"))
    )
    assert "code" in none


def test_prompt_none_cannot_step_up(dev: DevServer):
    sign_in(dev, pkce())
    params = authorize_params(pkce(), acr_values="urn:okta:loa:2fa:any", prompt="none")
    assert redirect_params(dev.app.get(AUTHORIZE, params))["error"] == "interaction_required"


def test_login_hint_fills_in_the_username(dev: DevServer):
    page = dev.app.get(AUTHORIZE, authorize_params(pkce(), login_hint="bob@example.com"))
    assert 'value="bob@example.com"' in page.text


def test_recent_users_are_offered(dev: DevServer):
    sign_in(dev, pkce())
    page = dev.app.get(AUTHORIZE, authorize_params(pkce(), prompt="login"))
    assert '<option value="alice@example.com">' in page.text


def test_the_user_chooses_the_scopes_to_grant(dev: DevServer):
    pair = pkce()
    page = dev.app.get(AUTHORIZE, authorize_params(pair))
    answer = redirect_params(submit_login(dev.app, page, scopes=["openid", "api.read"]))
    tokens = exchange(dev, answer["code"], pair.verifier, status=200).json
    assert claims(tokens["access_token"])["scp"] == ["openid", "api.read"]
    assert "refresh_token" not in tokens


# -- the login form's safety -----------------------------------------------------------


@pytest.mark.parametrize("field", ["csrf", "tx"])
def test_the_form_needs_its_csrf_token(dev: DevServer, field):
    page = dev.app.get(AUTHORIZE, authorize_params(pkce()))
    fields = form_fields(page)
    for value in ("", "forged"):
        body = {**fields, field: value, "username": "mallory", "scope": "openid"}
        refused = dev.app.post(LOGIN, body, status=400)
        assert "CSRF" in refused.text
        assert "Location" not in refused.headers


def _cookie(response: webtest.TestResponse, name: str) -> list[str]:
    """The attributes of the ``Set-Cookie`` for ``name``, lower-cased, without its value."""
    (header,) = [h for h in response.headers.getall("Set-Cookie") if h.startswith(name + "=")]
    return sorted(part.strip().lower() for part in header.split(";")[1:])


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_sign_in_cookies_stay_on_the_issuer_s_pages_and_out_of_scripts(
    dev: DevServer, scheme: str
):
    secure = ["secure"] if scheme == "https" else []
    dev.app.extra_environ["wsgi.url_scheme"] = scheme
    page = dev.app.get(AUTHORIZE, authorize_params(pkce()))
    # The browser cookie binds the login form (CSRF): strict, sent by the form alone.
    assert _cookie(page, "okta_dev_browser") == sorted(
        ["httponly", "path=/oauth2/default/", "samesite=strict", *secure]
    )
    signed_in = submit_login(dev.app, page, status=302)
    # The session comes along when a client's page sends the user back: lax.
    assert _cookie(signed_in, "okta_dev_session") == sorted(
        ["httponly", "path=/oauth2/default/", "samesite=lax", *secure]
    )


def test_the_form_must_come_back_from_the_same_browser(dev: DevServer):
    page = dev.app.get(AUTHORIZE, authorize_params(pkce()))
    fields = form_fields(page)
    dev.app.reset()  # another browser: no cookie of the issuer's
    body = {**fields, "username": "mallory", "scope": "openid"}
    assert "CSRF" in dev.app.post(LOGIN, body, status=400).text
    # ... or a cookie of its own, from another login page.
    other = dev.app.get(AUTHORIZE, authorize_params(pkce()))
    assert form_fields(other)["csrf"] != fields["csrf"]
    assert "CSRF" in dev.app.post(LOGIN, body, status=400).text


def test_the_pages_may_not_be_framed_and_run_no_script(dev: DevServer):
    page = dev.app.get(AUTHORIZE, authorize_params(pkce()))
    csp = page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # so none runs (the form_post page runs one)
    assert "form-action 'self' http://127.0.0.1:49152" in csp
    assert "<script" not in page.text
    error = dev.app.get(AUTHORIZE, {"client_id": "nobody"}, status=400)
    assert error.headers["X-Frame-Options"] == "DENY"


def test_user_text_is_escaped(dev: DevServer):
    page = dev.app.get(AUTHORIZE, authorize_params(pkce(), login_hint='"><script>x</script>'))
    assert "<script>x" not in page.text
    assert "&lt;script&gt;" in page.text


def test_no_code_or_token_in_the_log(dev: DevServer, caplog):
    caplog.set_level("DEBUG")
    tokens = tokens_for(dev)
    refresh(dev, tokens["refresh_token"], status=200)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "authorization code issued" in logged
    for secret in (tokens["access_token"], tokens["refresh_token"], tokens["id_token"]):
        assert secret not in logged
    assert not re.search(r"code=[A-Za-z0-9_-]{20,}", logged)


def test_a_cross_site_form_post_is_refused_by_the_guard(dev: DevServer):
    page = dev.app.get(AUTHORIZE, authorize_params(pkce()))
    body = {**form_fields(page), "username": "mallory", "scope": "openid"}
    refused = dev.app.post(LOGIN, body, headers={"Origin": "https://evil.example"}, status=403)
    assert refused.json["error"] == "access_denied"


# -- userinfo and logout -----------------------------------------------------------


def test_userinfo_answers_for_the_user(dev: DevServer):
    tokens = tokens_for(dev, scope="openid profile email api.read")
    info = dev.app.get(USERINFO, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.json == {
        "sub": claims(tokens["id_token"])["sub"],
        "name": "alice@example.com",
        "preferred_username": "alice@example.com",
        "email": "alice@example.com",
        "email_verified": True,
        "groups": ["admins", "staff"],
    }
    assert dev.app.get(USERINFO, status=401).headers["WWW-Authenticate"].startswith("Bearer")
    assert dev.app.get(USERINFO, headers={"Authorization": "Bearer nope"}, status=401)
    client_token = dev.token()
    dev.app.get(USERINFO, headers={"Authorization": f"Bearer {client_token}"}, status=403)


def test_logout_ends_the_session_and_returns_to_a_registered_uri(dev: DevServer):
    tokens = tokens_for(dev)
    params = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": APP_CALLBACK,
        "state": "bye",
    }
    out = dev.app.get(LOGOUT, params, status=302)
    assert out.headers["Location"] == APP_CALLBACK + "?state=bye"
    none = redirect_params(dev.app.get(AUTHORIZE, authorize_params(pkce(), prompt="none")))
    assert none["error"] == "login_required"


@pytest.mark.parametrize("target", ["https://evil.example/", "http://localhost:8081/app/callback"])
def test_logout_never_redirects_elsewhere(dev: DevServer, target):
    tokens = tokens_for(dev)
    params = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": target}
    page = dev.app.get(LOGOUT, params, status=400)
    assert "Location" not in page.headers
    # An access token is no hint, nor is nothing.
    hint = {"id_token_hint": tokens["access_token"], "post_logout_redirect_uri": APP_CALLBACK}
    assert "Location" not in dev.app.get(LOGOUT, hint, status=400).headers
    bare = {"post_logout_redirect_uri": APP_CALLBACK}
    assert "Location" not in dev.app.get(LOGOUT, bare, status=400).headers


# -- DPoP ------------------------------------------------------------------------------


def test_a_token_request_with_a_proof_gets_dpop_bound_tokens(dev: DevServer):
    key = ec.generate_private_key(ec.SECP256R1())
    url = dev.base_url + TOKEN
    pair = pkce()
    code = sign_in(dev, pair)["code"]
    first = exchange(
        dev, code, pair.verifier, headers={"DPoP": make_proof(key, "POST", url)}, status=400
    )
    nonce = first.headers["DPoP-Nonce"]
    proof = make_proof(key, "POST", url, nonce=nonce)
    tokens = exchange(dev, code, pair.verifier, headers={"DPoP": proof}, status=200).json
    assert tokens["token_type"] == "DPoP"
    assert "jkt" in claims(tokens["access_token"])["cnf"]
    # The refresh token is bound too: without a proof of the key, refused (and left
    # usable); with one, refreshed.
    without = refresh(dev, tokens["refresh_token"], status=400).json
    assert "DPoP key" in without["error_description"]
    body = {
        "grant_type": "refresh_token",
        "client_id": SPA,
        "refresh_token": tokens["refresh_token"],
    }
    other = make_proof(ec.generate_private_key(ec.SECP256R1()), "POST", url, nonce=nonce)
    dev.app.post(TOKEN, body, headers={"DPoP": other}, status=400)
    proof = make_proof(key, "POST", url, nonce=nonce)
    again = dev.app.post(TOKEN, body, headers={"DPoP": proof}, status=200).json
    assert again["token_type"] == "DPoP"
    # userinfo wants the DPoP scheme and a proof with ath.
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    dev.app.get(USERINFO, headers=bearer, status=401)
    userinfo_proof = make_proof(
        key, "GET", dev.base_url + USERINFO, access_token=tokens["access_token"]
    )
    headers = {"Authorization": f"DPoP {tokens['access_token']}", "DPoP": userinfo_proof}
    assert dev.app.get(USERINFO, headers=headers).json["preferred_username"] == "alice@example.com"


# -- bad input: a clear answer, never a 500 ------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", AUTHORIZE + "?client_id=%ff%fe", {}, 400),
        ("GET", AUTHORIZE + "?client_id=spa-client&redirect_uri=%ff", {}, 400),
        ("POST", AUTHORIZE, {"params": b"client_id=%ff", "content_type": FORM}, 400),
        ("POST", LOGIN, {"params": b"tx=%ff&csrf=%fe", "content_type": FORM}, 400),
        ("POST", LOGIN, {"params": b'{"tx": 1}', "content_type": "application/json"}, 400),
        ("POST", LOGIN, {}, 400),
        ("GET", LOGOUT + "?id_token_hint=not.a.jwt&post_logout_redirect_uri=x", {}, 400),
        ("GET", LOGOUT + "?id_token_hint=%ff", {}, 400),
        ("GET", USERINFO, {"headers": {"Authorization": "Bearer a.b.c"}}, 401),
        ("GET", USERINFO, {"headers": {"Authorization": "DPoP " + "x" * 9000}}, 401),
        ("GET", USERINFO, {"headers": {"Authorization": "Basic abc"}}, 401),
        ("PUT", USERINFO, {}, 405),
        ("DELETE", LOGIN, {}, 405),
    ],
)
def test_bad_input_gets_a_clear_answer(dev: DevServer, method, path, kwargs, status):
    call = getattr(dev.app, method.lower())
    response = call(path, expect_errors=True, **kwargs)
    assert response.status_int == status, response.text[:300]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {"grant_type": "authorization_code", "client_id": SPA},
        {"grant_type": "authorization_code", "client_id": SPA, "code": "x"},
        {"grant_type": "authorization_code", "client_id": SPA, "code": "x", "redirect_uri": "y"},
        {"grant_type": "refresh_token", "client_id": SPA},
        {"grant_type": "refresh_token", "client_id": SPA, "refresh_token": "nope"},
        {"grant_type": "authorization_code", "client_id": "unknown", "code": "x"},
    ],
)
def test_bad_token_requests_get_oauth_errors(dev: DevServer, body):
    response = dev.app.post(TOKEN, body, expect_errors=True)
    assert response.status_int in (400, 401)
    assert response.json["error"] in ("invalid_request", "invalid_grant", "invalid_client")


def test_a_further_authorization_server_signs_users_in_with_its_own_state(tmp_path):
    server = StopableWSGIServer.create(
        lambda e, s: holder["app"](e, s), host="127.0.0.1", threads=4
    )
    holder: dict[str, Any] = {}
    base = f"http://127.0.0.1:{server.adj.port}"
    settings = dev_settings(
        server.adj.port,
        tmp_path / "keys",
        **{
            "okta.issuer": f"{base}/oauth2/default\n{base}/oauth2/partners api://partners",
            "devissuer.clients": SIGNIN_CLIENTS,
        },
    )
    holder["app"] = main({}, **settings)
    app = webtest.TestApp(
        holder["app"],
        extra_environ={"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": f"127.0.0.1:{server.adj.port}"},
    )
    try:
        pair = pkce()
        page = app.get("/oauth2/partners/v1/authorize", authorize_params(pair))
        assert 'action="/oauth2/partners/v1/login"' in page.text
        fields = form_fields(page)
        body = [*fields.items(), ("username", "bob@partner.example"), ("scope", "api.read")]
        code = redirect_params(app.post("/oauth2/partners/v1/login", body))["code"]
        # The default server knows nothing of the partners' code.
        token_body = {
            "grant_type": "authorization_code",
            "client_id": SPA,
            "code": code,
            "code_verifier": pair.verifier,
            "redirect_uri": "http://127.0.0.1:49152/callback",
        }
        app.post(TOKEN, token_body, status=400)
        tokens = app.post("/oauth2/partners/v1/token", token_body).json
        access = claims(tokens["access_token"])
        assert access["iss"] == f"{base}/oauth2/partners" and access["aud"] == "api://partners"
        assert (
            app.get(
                "/api/whoami", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            ).json["sub"]
            == "bob@partner.example"
        )
    finally:
        server.shutdown()


# -- trusted origins: a single-page app on another origin ------------------------------

APP_ORIGIN = "http://localhost:8080"  # the origin of APP_CALLBACK, a redirect URI of SPA


def test_a_public_clients_origin_may_call_the_token_endpoint_across_origins(dev: DevServer):
    preflight = dev.app.options(
        TOKEN,
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, dpop",
        },
        status=204,
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "dpop" in preflight.headers["Access-Control-Allow-Headers"]
    pair = pkce()
    code = sign_in(dev, pair, redirect_uri=APP_CALLBACK)["code"]
    tokens = exchange(
        dev, code, pair.verifier, redirect_uri=APP_CALLBACK, headers={"Origin": APP_ORIGIN}
    )
    assert tokens.status_int == 200
    assert tokens.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "DPoP-Nonce" in tokens.headers["Access-Control-Expose-Headers"]
    assert "Origin" in tokens.headers["Vary"]
    # Any port of a loopback IP redirect URI's host (RFC 8252 §7.3).
    meta = dev.app.get(
        "/oauth2/default/.well-known/openid-configuration",
        headers={"Origin": "http://127.0.0.1:5173"},
    )
    assert meta.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:5173"


def test_a_trusted_page_may_not_use_a_confidential_client(dev: DevServer):
    body = {"grant_type": "client_credentials", "scope": "api.read"}
    refused = dev.app.post(
        TOKEN,
        body,
        headers={"Origin": APP_ORIGIN, "Authorization": basic("svc-client", "s3cret-value")},
        status=400,
    )
    assert refused.json["error"] == "unauthorized_client"


@pytest.mark.parametrize(
    ("origin", "method", "path"),
    [
        ("http://localhost:8081", "POST", TOKEN),  # another port, not a loopback IP
        ("https://app.example", "POST", TOKEN),  # a confidential client's origin
        ("https://evil.example", "GET", "/oauth2/default/v1/keys"),
        (APP_ORIGIN, "POST", "/oauth2/default/v1/introspect"),
        (APP_ORIGIN, "GET", LOGOUT),
        (APP_ORIGIN, "POST", LOGIN),
        (APP_ORIGIN, "POST", AUTHORIZE),
    ],
)
def test_other_origins_and_endpoints_stay_closed_to_pages(dev: DevServer, origin, method, path):
    response = getattr(dev.app, method.lower())(path, headers={"Origin": origin}, status=403)
    assert response.json["error"] == "access_denied"
    assert "Access-Control-Allow-Origin" not in response.headers


# -- revocation by a public client ------------------------------------------------------

REVOKE = "/oauth2/default/v1/revoke"


def test_a_public_client_revokes_its_refresh_token_and_the_grants_tokens(dev: DevServer):
    tokens = tokens_for(dev)
    answer = dev.app.post(
        REVOKE,
        {"client_id": SPA, "token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        headers={"Origin": APP_ORIGIN},
    )
    assert answer.status_int == 200 and answer.body == b""
    assert answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert refresh(dev, tokens["refresh_token"], status=400).json["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    dev.app.get(USERINFO, headers=bearer, status=401)


def test_a_public_client_revokes_its_access_token(dev: DevServer):
    tokens = tokens_for(dev)
    dev.app.post(REVOKE, {"client_id": SPA, "token": tokens["access_token"]}, status=200)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    dev.app.get(USERINFO, headers=bearer, status=401)
    # The refresh token lives on: only the access token was revoked.
    refresh(dev, tokens["refresh_token"], status=200)


def test_revocation_stays_with_the_tokens_own_client(dev: DevServer):
    tokens = tokens_for(dev)
    other = dev.app.post(
        REVOKE,
        {"token": tokens["refresh_token"]},
        headers={"Authorization": basic(WEB, WEB_SECRET)},
        status=400,
    )
    assert other.json["error"] == "unauthorized_client"
    refresh(dev, tokens["refresh_token"], status=200)
    # A page may not revoke with a confidential client.
    page = dev.app.post(
        REVOKE,
        {"token": tokens["access_token"]},
        headers={"Origin": APP_ORIGIN, "Authorization": basic("svc-client", "s3cret-value")},
        status=400,
    )
    assert page.json["error"] == "unauthorized_client"


@pytest.mark.parametrize("credentials", [SPA, f"{SPA}:"])
def test_a_public_client_may_name_itself_in_basic_credentials(dev: DevServer, credentials):
    # okta-auth-js revokes with "Basic base64(client_id)", and Okta accepts it.
    tokens = tokens_for(dev)
    header = "Basic " + base64.b64encode(credentials.encode()).decode()
    dev.app.post(
        REVOKE, {"token": tokens["refresh_token"]}, headers={"Authorization": header}, status=200
    )
    assert refresh(dev, tokens["refresh_token"], status=400).json["error"] == "invalid_grant"


@pytest.mark.parametrize("credentials", ["svc-client", "svc-client:", "nobody", ":", ""])
def test_no_confidential_or_unknown_client_without_its_secret(dev: DevServer, credentials):
    header = "Basic " + base64.b64encode(credentials.encode()).decode()
    refused = dev.app.post(
        REVOKE, {"token": "x"}, headers={"Authorization": header}, status=401
    ).json
    assert refused["error"] == "invalid_client"
    refused = dev.app.post(
        "/oauth2/default/v1/introspect",
        {"token": "x"},
        headers={"Authorization": header},
        status=401,
    ).json
    assert refused["error"] == "invalid_client"
