"""Signing a user in at the development issuer, as a browser and a client would:
the authorization request, the login page's form, the code exchange."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import webtest

from okta_pyramid.devissuer.signin import s256

from .helpers import CLIENTS, DevServer

AUTHORIZE = "/oauth2/default/v1/authorize"
LOGIN = "/oauth2/default/v1/login"
TOKEN = "/oauth2/default/v1/token"
USERINFO = "/oauth2/default/v1/userinfo"
LOGOUT = "/oauth2/default/v1/logout"
SPA = "spa-client"
CALLBACK = "http://127.0.0.1/callback"
APP_CALLBACK = "http://localhost:8080/app/callback"
WEB = "web-client"
WEB_SECRET = "w3b-secret-value"
SIGNIN_CLIENTS = (
    CLIENTS
    + f"{SPA}  -  openid profile email offline_access api.read groups"
    + f"  redirect={CALLBACK} redirect={APP_CALLBACK}\n"
    + f"{WEB}  {WEB_SECRET}  openid offline_access api.read  redirect=https://app.example/cb\n"
)


@dataclass
class Pkce:
    verifier: str
    challenge: str


def pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    return Pkce(verifier, s256(verifier))


def authorize_params(pair: Pkce, **changes: Any) -> dict[str, str]:
    params = {
        "client_id": SPA,
        "redirect_uri": "http://127.0.0.1:49152/callback",
        "response_type": "code",
        "scope": "openid profile offline_access api.read",
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
        "code_challenge": pair.challenge,
        "code_challenge_method": "S256",
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def redirect_params(response: webtest.TestResponse) -> dict[str, str]:
    """The parameters a 302 to the client carries (query or fragment)."""
    assert response.status_int == 302, response.text[:500]
    location = urlsplit(response.headers["Location"])
    raw = location.fragment or location.query
    return {k: v[0] for k, v in parse_qs(raw).items()}


def form_fields(page: webtest.TestResponse) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text))


def submit_login(
    app: webtest.TestApp,
    page: webtest.TestResponse,
    username: str = "alice@example.com",
    groups: str = "admins staff",
    scopes: list[str] | None = None,
    status: int | str = "*",
) -> webtest.TestResponse:
    fields = form_fields(page)
    if scopes is None:
        scopes = re.findall(r'name="scope" value="([^"]*)"', page.text)
    body = [(k, v) for k, v in fields.items()] + [("username", username), ("groups", groups)]
    body += [("scope", s) for s in scopes]
    return app.post(LOGIN, body, status=status)


def submit_otp(app: webtest.TestApp, page: webtest.TestResponse, code: str | None = None):
    fields = form_fields(page)
    if code is None:
        code = re.search(r'id="otp-code">(\d{6})<', page.text).group(1)  # type: ignore[union-attr]
    return app.post(LOGIN, {**fields, "otp": code}, status="*")


def sign_in(dev: DevServer, pair: Pkce, **changes: Any) -> dict[str, str]:
    """Authorize, fill in the form (and the one-time code if asked); the redirect's
    parameters."""
    page = dev.app.get(AUTHORIZE, authorize_params(pair, **changes), status="*")
    if page.status_int == 302:
        return redirect_params(page)
    answer = submit_login(dev.app, page)
    if answer.status_int == 200 and 'id="otp-code"' in answer.text:
        answer = submit_otp(dev.app, answer)
    return redirect_params(answer)


def exchange(
    dev: DevServer,
    code: str,
    verifier: str,
    *,
    client_id: str = SPA,
    redirect_uri: str = "http://127.0.0.1:49152/callback",
    status: int | str = "*",
    headers: dict[str, str] | None = None,
) -> webtest.TestResponse:
    body = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }
    return dev.app.post(TOKEN, body, headers=headers or {}, status=status)


def refresh(dev: DevServer, token: str, *, client_id: str = SPA, status: int | str = "*"):
    body = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": token}
    return dev.app.post(TOKEN, body, status=status)
