"""Signing a user in: the authorization endpoint and its login page, the userinfo
endpoint and RP-initiated logout, at the paths Okta uses under its issuer URI:

- ``/v1/authorize``: the authorization-code flow (RFC 6749 §4.1, OIDC Core §3.1)
  with PKCE ``S256`` required (RFC 7636; ``plain`` is refused). The login page asks
  for a username (any text; recent users are offered), the user's groups and the
  scopes to grant, then a one-time code when ``acr_values`` asks for two factors.
- ``/v1/login``: where the login page's form posts (CSRF-protected).
- ``/v1/userinfo``: the signed-in user's claims (OIDC Core §5.3).
- ``/v1/logout``: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

An error is sent back to the client only once its ``client_id`` and
``redirect_uri`` are known to be valid (RFC 6749 §4.1.2.1); before that, the
browser gets an error page and is redirected nowhere, so the endpoint is never an
open redirector. A browser that signed in keeps a session by the issuer's own
cookie, so ``prompt=none`` and a second sign-in skip the form.

Pages run no script, may be framed by nobody, and post their forms only to the
issuer (and follow redirects only to the client's registered redirect URI).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from ..errors import json_error
from ..tokens.dpop import DPoPVerifier, InvalidDPoPProof
from ..tokens.exceptions import InvalidToken
from ..tokens.replay import ReplayStoreFull
from .config import Client, DevIssuerSettings, is_scope_token
from .introspection import active_claims
from .signin import (
    ACR_VALUES,
    ONE_FACTOR,
    TWO_FACTOR_ACR_VALUES,
    TWO_FACTORS,
    AuthorizationRequest,
    SignIn,
    SignIns,
    Transaction,
)
from .tokens import TokenFactory

log = logging.getLogger(__name__)

#: The issuer's cookies: the signed-in session, and the browser that a login form
#: was shown to (the CSRF check compares it with the transaction's).
SESSION_COOKIE = "okta_dev_session"
BROWSER_COOKIE = "okta_dev_browser"
#: ``okta_post_message`` is Okta's own: the answer is posted with ``postMessage`` to
#: the page that framed the request or opened it in a pop-up, as okta-auth-js's
#: ``token.getWithoutPrompt()`` (its silent renewal) and ``getWithPopup()`` ask.
RESPONSE_MODES = ("query", "fragment", "form_post", "okta_post_message")
PROMPTS = ("none", "login", "consent")
#: RFC 7636 §4.1: a verifier is 43 to 128 characters of this alphabet; an S256
#: challenge is the 43-character base64url of a SHA-256 digest (§4.2).
CODE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
#: Usernames and groups are free text, kept short and printable.
MAX_USERNAME = 100
MAX_GROUPS = 20
_GROUP = re.compile(r"[^\s,]{1,64}")
#: A state, nonce or hint longer than this is not a client's honest value.
MAX_PARAM = 512

STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;
color:#1d1d1f;background:#f5f5f7}
main{background:#fff;border-radius:12px;padding:1.5rem 2rem;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin-top:0}label{display:block;margin-top:1rem;font-weight:600}
input[type=text]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
fieldset{margin-top:1rem;border:1px solid #ccc;border-radius:8px}
.scope{font-weight:400;display:inline-block;margin-right:1rem}
button{margin-top:1.5rem;padding:.6rem 1.5rem;font-size:1rem}
.hint{color:#555;font-size:.9rem}.code{font:700 1.6rem monospace;letter-spacing:.2rem}
.error{color:#b00020}
""".strip()
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode("ascii")


class AuthorizeError(Exception):
    """An error for the client (RFC 6749 §4.1.2.1), or for a page when the client or
    redirect URI cannot be trusted."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


# -- the authorization request ------------------------------------------------------


def authorize(request: Request) -> Response:
    """The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2), GET or POST."""
    settings: DevIssuerSettings = request.registry.devissuer_settings
    try:
        params = _params(request)
    except AuthorizeError as exc:
        return _error_page(request, 400, exc.description)
    client_id = params.get("client_id", "")
    client = settings.client(client_id) if client_id else None
    if client is None or not client.redirect_uris:
        return _error_page(
            request,
            400,
            "The client_id is missing, unknown, or names a client that has no redirect "
            "URI (devissuer.clients: redirect=URI).",
        )
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or not client.redirect_uri_allowed(redirect_uri):
        # RFC 6749 §4.1.2.1: never redirect to an unverified URI.
        log.info("authorize refused: unregistered redirect_uri client_id=%s", client.client_id)
        return _error_page(
            request,
            400,
            f"The redirect_uri is missing or is not registered for the client "
            f"{client.client_id!r}; registered: {', '.join(client.redirect_uris)}.",
        )
    mode = params.get("response_mode", "query")
    if mode not in RESPONSE_MODES:
        mode = "query"
    state = params.get("state")
    try:
        authz = _authorization_request(params, client, redirect_uri)
    except AuthorizeError as exc:
        log.info("authorize refused: error=%s client_id=%s", exc.error, client.client_id)
        return _redirect(redirect_uri, mode, _error_params(exc, state))
    signins: SignIns = request.registry.devissuer_signins
    session = signins.session(request.cookies.get(SESSION_COOKIE))
    now = int(signins.clock())
    fresh = session is not None and (
        authz.max_age is None or now - session.auth_time <= authz.max_age
    )
    if session is not None and fresh and "login" not in authz.prompt:
        if not authz.two_factors or session.two_factors:
            return _issue_code(request, authz, session, authz.scopes)
        if "none" in authz.prompt:
            return _redirect(
                redirect_uri,
                mode,
                _error_params(
                    AuthorizeError(
                        "interaction_required", "a second factor is needed: sign in again"
                    ),
                    state,
                ),
            )
        # Step-up: the user of the session proves a second factor only.
        return _login_page(request, authz, step_up=session)
    if "none" in authz.prompt:
        return _redirect(
            redirect_uri,
            mode,
            _error_params(AuthorizeError("login_required", "the user must sign in"), state),
        )
    return _login_page(request, authz)


def _params(request: Request) -> dict[str, str]:
    try:
        items = list(request.GET.items())
        if request.method == "POST":
            items += list(request.POST.items())
    except UnicodeDecodeError:
        raise AuthorizeError("invalid_request", "The parameters are not UTF-8.") from None
    params: dict[str, str] = {}
    for name, value in items:
        if name in params:
            # RFC 6749 §3.1: "Request and response parameters MUST NOT be included more
            # than once." Answered on a page: even the client id may be the repeated one.
            raise AuthorizeError("invalid_request", f"The {name[:40]!r} parameter is repeated.")
        params[name] = value
    return params


def _authorization_request(
    params: dict[str, str], client: Client, redirect_uri: str
) -> AuthorizationRequest:
    """Validate every other parameter; raises :class:`AuthorizeError` for the client."""
    for name in ("request", "request_uri"):
        if name in params:
            raise AuthorizeError(
                f"{name}_not_supported", f"the {name} parameter is not supported here"
            )
    if "response_mode" in params and params["response_mode"] not in RESPONSE_MODES:
        raise AuthorizeError(
            "invalid_request", f"response_mode must be one of {', '.join(RESPONSE_MODES)}"
        )
    if params.get("response_type") != "code":
        raise AuthorizeError(
            "unsupported_response_type", "only response_type=code (with PKCE) is supported"
        )
    for name in ("state", "nonce", "login_hint"):
        if len(params.get(name, "")) > MAX_PARAM:
            raise AuthorizeError("invalid_request", f"the {name} is too long")
    # RFC 7636 §4.4.1: a server that requires PKCE answers invalid_request.
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if not challenge:
        raise AuthorizeError(
            "invalid_request",
            "PKCE is required: send code_challenge and code_challenge_method=S256",
        )
    if method != "S256":
        # Absent means plain (RFC 7636 §4.3); plain is refused (OAuth 2.0 Security BCP).
        raise AuthorizeError(
            "invalid_request",
            "code_challenge_method must be S256; plain (also the default when absent) "
            "is not supported",
        )
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise AuthorizeError(
            "invalid_request", "code_challenge is not an S256 challenge (43 base64url characters)"
        )
    raw_scope = params.get("scope", "")
    scopes = tuple(dict.fromkeys(s for s in raw_scope.split(" ") if s))
    if not scopes:
        raise AuthorizeError("invalid_scope", "the scope parameter is required")
    for scope in scopes:
        if not is_scope_token(scope) or scope not in client.scopes:
            raise AuthorizeError(
                "invalid_scope", f"the client may not ask for the scope {scope[:60]!r}"
            )
    prompt = frozenset(p for p in params.get("prompt", "").split(" ") if p)
    if not prompt <= set(PROMPTS) or ("none" in prompt and len(prompt) > 1):
        raise AuthorizeError("invalid_request", "prompt must be none, or login and/or consent")
    max_age = None
    if "max_age" in params:
        raw = params["max_age"]
        if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
            raise AuthorizeError("invalid_request", "max_age must be a whole number of seconds")
        max_age = int(raw)
    acr_values = [v for v in params.get("acr_values", "").split(" ") if v]
    unknown = [v for v in acr_values if v not in ACR_VALUES]
    if unknown:
        raise AuthorizeError(
            "invalid_request",
            f"unsupported acr_values {unknown[0][:60]!r}; supported: {' '.join(ACR_VALUES)}",
        )
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        response_mode=params.get("response_mode", "query"),
        state=params.get("state"),
        nonce=params.get("nonce"),
        scopes=scopes,
        code_challenge=challenge,
        # The strongest asked for decides: any of them asking two factors needs two.
        two_factors=any(v in TWO_FACTOR_ACR_VALUES for v in acr_values),
        max_age=max_age,
        prompt=prompt,
        login_hint=params.get("login_hint"),
    )


def _error_params(exc: AuthorizeError, state: str | None) -> dict[str, str]:
    answer = {"error": exc.error, "error_description": exc.description}
    if state is not None:
        answer["state"] = state
    return answer


def _redirect(redirect_uri: str, mode: str, params: dict[str, str]) -> Response:
    """A 302 to the client's verified redirect URI with ``params`` in its query (kept
    with the URI's own query, RFC 6749 §3.1.2) or its fragment; or, for
    ``form_post``, a page that posts them there (OAuth 2.0 Form Post Response Mode)."""
    if mode == "form_post":
        return _form_post(redirect_uri, params)
    if mode == "okta_post_message":
        return _post_message(redirect_uri, params)
    if mode == "fragment":
        location = f"{redirect_uri}#{urlencode(params)}"
    else:
        separator = (
            "&" if urlsplit(redirect_uri).query else ("" if redirect_uri.endswith("?") else "?")
        )
        location = f"{redirect_uri}{separator}{urlencode(params)}"
    response = Response(status=302, location=location)
    response.cache_control = "no-store"
    # The code is in the Location: no page may learn it from a Referer.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


#: The one script the issuer's pages run: it submits the form_post page's form.
FORM_POST_SCRIPT = "document.forms[0].submit();"
FORM_POST_SCRIPT_HASH = base64.b64encode(
    hashlib.sha256(FORM_POST_SCRIPT.encode("ascii")).digest()
).decode("ascii")


def _form_post(redirect_uri: str, params: dict[str, str]) -> Response:
    """The form_post response: an auto-submitted form to the redirect URI (with a
    button for a browser that runs no script). Its CSP allows that one script, by
    hash, and posting to that one origin."""
    e = html.escape
    fields = "".join(
        f'<input type="hidden" name="{e(name)}" value="{e(value)}">'
        for name, value in params.items()
    )
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Continue · development issuer</title>
<meta name="referrer" content="no-referrer"><style>{STYLE}</style></head>
<body><main><form method="post" action="{e(redirect_uri)}">{fields}
<p>Returning to the application…</p><button type="submit">Continue</button></form>
<script>{FORM_POST_SCRIPT}</script></main></body></html>"""
    parts = urlsplit(redirect_uri)
    response = Response(body=document, content_type="text/html", charset="utf-8")
    response.headers.update(
        {
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; "
                f"script-src 'sha256-{FORM_POST_SCRIPT_HASH}'; "
                f"form-action {parts.scheme}://{parts.netloc}; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
    )
    response.cache_control = "no-store"
    return response


def _post_message(redirect_uri: str, params: dict[str, str]) -> Response:
    """Okta's ``okta_post_message`` response: a page that posts ``params`` to its
    framing page (or its opener), addressed to the redirect URI's origin only. It may
    be framed by that origin alone; its one script runs by a nonce of this answer."""
    parts = urlsplit(redirect_uri)
    origin = f"{parts.scheme}://{parts.netloc}"
    nonce = secrets.token_urlsafe(16)
    # JSON in a script: "<" escaped, so no value can close the script element.
    data = json.dumps(params).replace("<", "\\u003c")
    target = json.dumps(origin).replace("<", "\\u003c")
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>development issuer</title></head>
<body><script nonce="{nonce}">(window.opener || window.parent).postMessage({data}, {target});
</script></body></html>"""
    response = Response(body=document, content_type="text/html", charset="utf-8")
    response.headers.update(
        {
            "Content-Security-Policy": (
                f"default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors {origin}; "
                "base-uri 'none'; form-action 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
    )
    response.cache_control = "no-store"
    return response


def _issue_code(
    request: Request, authz: AuthorizationRequest, user: SignIn, scopes: tuple[str, ...]
) -> Response:
    signins: SignIns = request.registry.devissuer_signins
    code = signins.issue_code(authz, user, scopes)
    log.info(
        "authorization code issued: client_id=%s user=%r acr=%s scope=%s",
        authz.client_id,
        user.username,
        user.acr,
        " ".join(scopes),
    )
    params = {"code": code}
    if authz.state is not None:
        params["state"] = authz.state
    return _redirect(authz.redirect_uri, authz.response_mode, params)


# -- the login page --------------------------------------------------------------------


def login(request: Request) -> Response:
    """The login page's form: the first step (username, groups, scopes), or the
    second (the one-time code). Checked against CSRF: the form's token must be the
    transaction's, posted from the browser the form was shown to."""
    signins: SignIns = request.registry.devissuer_signins
    form = request.POST
    tx_id, csrf = form.get("tx", ""), form.get("csrf", "")
    browser = request.cookies.get(BROWSER_COOKIE, "")
    tx = signins.transaction(tx_id, csrf, browser) if tx_id and csrf and browser else None
    if tx is None:
        log.warning("login form refused: no valid CSRF token for this browser")
        return _error_page(
            request,
            400,
            "This sign-in form has expired or was not posted from this browser's login "
            "page (CSRF check). Start the sign-in again from the application.",
        )
    authz = tx.request
    if form.get("step") == "otp":
        return _second_step(request, tx_id, tx)
    if tx.user is not None:  # a step-up transaction only takes the one-time code
        return _error_page(request, 400, "Enter the one-time code to continue.")
    username = form.get("username", "").strip()
    if not username or len(username) > MAX_USERNAME or not username.isprintable():
        return _login_page(
            request,
            authz,
            tx=(tx_id, tx),
            error=f"Enter a username (up to {MAX_USERNAME} printable characters).",
        )
    groups = tuple(dict.fromkeys(_GROUP.findall(form.get("groups", ""))))
    if len(groups) > MAX_GROUPS:
        return _login_page(
            request, authz, tx=(tx_id, tx), error=f"At most {MAX_GROUPS} groups, please."
        )
    granted = tuple(s for s in authz.scopes if s in form.getall("scope"))
    if not granted:
        return _login_page(request, authz, tx=(tx_id, tx), error="Grant at least one scope.")
    if authz.two_factors:
        now = int(signins.clock())
        tx.user = SignIn(username, groups, now, *ONE_FACTOR)
        tx.otp = f"{secrets.randbelow(10**6):06d}"
        tx.granted = granted
        return _otp_page(request, tx_id, tx)
    user = SignIn(username, groups, int(signins.clock()), *ONE_FACTOR)
    return _signed_in(request, tx_id, authz, user, granted)


def _second_step(request: Request, tx_id: str, tx: Transaction) -> Response:
    signins: SignIns = request.registry.devissuer_signins
    if tx.user is None or tx.otp is None:
        return _error_page(request, 400, "This sign-in has no second step.")
    entered = request.POST.get("otp", "").strip()
    if not secrets.compare_digest(entered.encode("utf-8", "replace"), tx.otp.encode()):
        return _otp_page(request, tx_id, tx, error="That is not the code shown. Try again.")
    first = tx.user
    user = SignIn(first.username, first.groups, int(signins.clock()), *TWO_FACTORS)
    return _signed_in(request, tx_id, tx.request, user, tx.granted or tx.request.scopes)


def _signed_in(
    request: Request,
    tx_id: str,
    authz: AuthorizationRequest,
    user: SignIn,
    granted: tuple[str, ...],
) -> Response:
    signins: SignIns = request.registry.devissuer_signins
    signins.finish(tx_id)
    signins.end_session(request.cookies.get(SESSION_COOKIE))
    session_id = signins.start_session(user)
    log.info("user signed in: user=%r acr=%s", user.username, user.acr)
    response = _issue_code(request, authz, user, granted)
    # Lax: the session must come along when a client's page sends the user here.
    _set_cookie(request, response, SESSION_COOKIE, session_id, samesite="lax")
    return response


def _login_page(
    request: Request,
    authz: AuthorizationRequest,
    *,
    step_up: SignIn | None = None,
    tx: tuple[str, Transaction] | None = None,
    error: str | None = None,
) -> Response:
    signins: SignIns = request.registry.devissuer_signins
    browser = request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(24)
    if tx is None:
        tx_id, transaction = signins.begin(authz, browser)
    else:
        tx_id, transaction = tx
    if step_up is not None:
        # Step-up: the session's user, already past the first factor.
        transaction.user = step_up
        transaction.otp = f"{secrets.randbelow(10**6):06d}"
        response = _otp_page(request, tx_id, transaction)
    else:
        response = _page(
            request, "Sign in", _login_form(request, authz, tx_id, transaction, error), authz
        )
    # Strict: only the login page's own form sends it back.
    _set_cookie(request, response, BROWSER_COOKIE, transaction.browser, samesite="strict")
    return response


def _cookie_path(request: Request) -> str:
    """The issuer's own pages: no other path on the host is sent its cookies."""
    settings: DevIssuerSettings = request.registry.devissuer_settings
    return settings.path + "/"


def _set_cookie(
    request: Request, response: Response, name: str, value: str, *, samesite: str
) -> None:
    """A cookie of the sign-in pages: on their path, out of scripts' reach, and sent
    only over https when the page was served over https."""
    response.set_cookie(
        name,
        value,
        path=_cookie_path(request),
        httponly=True,
        samesite=samesite,
        secure=request.scheme == "https",
    )


def _login_form(
    request: Request, authz: AuthorizationRequest, tx_id: str, tx: Transaction, error: str | None
) -> str:
    signins: SignIns = request.registry.devissuer_signins
    e = html.escape
    recent = signins.recent_users()
    hint = authz.login_hint or (recent[0][0] if recent else "")
    groups = dict(recent).get(hint, ())
    options = "".join(f'<option value="{e(name)}">' for name, _ in recent)
    scopes = "".join(
        f'<label class="scope"><input type="checkbox" name="scope" value="{e(s)}" checked> '
        f"{e(s)}</label>"
        for s in authz.scopes
    )
    recent_text = (
        f'<p class="hint">Recent users: {e(", ".join(name for name, _ in recent))}</p>'
        if recent
        else ""
    )
    steps = " Then a one-time code (two factors were asked for)." if authz.two_factors else ""
    return f"""
<h1>Sign in to {e(authz.client_id)}</h1>
<p class="hint">Development issuer: any username signs in, with the groups you type.{steps}</p>
{f'<p class="error" role="alert">{e(error)}</p>' if error else ""}
<form method="post" action="{e(_login_url(request))}">
<input type="hidden" name="tx" value="{e(tx_id)}">
<input type="hidden" name="csrf" value="{e(tx.csrf)}">
<input type="hidden" name="step" value="login">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{e(hint)}" list="recent-users"
 autocomplete="username" autofocus required maxlength="{MAX_USERNAME}">
<datalist id="recent-users">{options}</datalist>
{recent_text}
<label for="groups">Groups <span class="hint">(space-separated)</span></label>
<input type="text" id="groups" name="groups" value="{e(" ".join(groups))}">
<fieldset><legend>Scopes to grant</legend>{scopes}</fieldset>
<button type="submit" id="sign-in">Sign in</button>
</form>"""


def _otp_page(request: Request, tx_id: str, tx: Transaction, error: str | None = None) -> Response:
    e = html.escape
    if tx.user is None or tx.otp is None:  # the callers set both
        return _error_page(request, 400, "This sign-in has no second step.")
    body = f"""
<h1>Second factor for {e(tx.user.username)}</h1>
<p class="hint">The application asked for two factors. A real issuer would send a
code to the user's device; this one shows it here:</p>
<p class="code" id="otp-code">{e(tx.otp)}</p>
{f'<p class="error" role="alert">{e(error)}</p>' if error else ""}
<form method="post" action="{e(_login_url(request))}">
<input type="hidden" name="tx" value="{e(tx_id)}">
<input type="hidden" name="csrf" value="{e(tx.csrf)}">
<input type="hidden" name="step" value="otp">
<label for="otp">One-time code</label>
<input type="text" id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code"
 autofocus required maxlength="6">
<button type="submit" id="verify">Verify</button>
</form>"""
    return _page(request, "Verify", body, tx.request)


def _login_url(request: Request) -> str:
    settings: DevIssuerSettings = request.registry.devissuer_settings
    return settings.path + "/v1/login"


def _page(
    request: Request, title: str, body: str, authz: AuthorizationRequest | None, status: int = 200
) -> Response:
    """An HTML page with the issuer's security headers: no script, no framing, forms
    only to the issuer, redirects only to the request's verified redirect URI."""
    targets = "'self'"
    if authz is not None:
        # Chromium applies form-action to the redirect that follows a form post.
        parts = urlsplit(authz.redirect_uri)
        targets += f" {parts.scheme}://{parts.netloc}"
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{html.escape(title)} · development issuer</title>
<style>{STYLE}</style></head>
<body><main>{body}</main></body></html>"""
    response = Response(body=document, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(
        {
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action {targets}; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            # Not no-referrer: with it, a browser sends "Origin: null" with the
            # form's POST, which the guard rightly refuses. same-origin sends the
            # issuer's origin to the issuer, and nothing to anyone else.
            "Referrer-Policy": "same-origin",
        }
    )
    response.cache_control = "no-store"
    return response


def _error_page(request: Request, status: int, message: str) -> Response:
    body = f'<h1>Sign-in error</h1><p class="error" role="alert">{html.escape(message)}</p>'
    return _page(request, "Error", body, None, status)


# -- userinfo ------------------------------------------------------------------------


def userinfo(request: Request) -> Response | dict[str, Any]:
    """OIDC Core §5.3: the claims of the user an access token with ``openid`` was
    issued for; ``sub`` is the user's id, as in the ID token. A DPoP-bound token is
    accepted only with the ``DPoP`` scheme and a proof of its key (RFC 9449 §7)."""
    factory: TokenFactory = request.registry.devissuer_tokens
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() not in ("bearer", "dpop") or not token:
        return _bearer_error(
            request, 401, None, "send the access token in the Authorization header"
        )
    try:
        claims = active_claims(
            token,
            issuer=factory.settings.issuer,
            keys=factory.keys,
            revoked=request.registry.devissuer_revoked,
            now=factory.clock(),
        )
    except InvalidToken:
        return _bearer_error(request, 401, "invalid_token", "the access token is not active")
    jkt = (claims.get("cnf") or {}).get("jkt") if isinstance(claims.get("cnf"), dict) else None
    if jkt is not None or scheme.lower() == "dpop":
        if scheme.lower() != "dpop" or jkt is None:
            return _bearer_error(
                request, 401, "invalid_token", "a DPoP-bound token goes with the DPoP scheme"
            )
        verifier: DPoPVerifier = request.registry.devissuer_userinfo_dpop
        try:
            verifier.verify(
                request.environ.get("HTTP_DPOP", ""),
                request.method,
                request.path_url,
                access_token=token,
                jkt=jkt,
            )
        except (InvalidDPoPProof, ReplayStoreFull) as exc:
            return _bearer_error(request, 401, "invalid_dpop_proof", str(exc))
    if "uid" not in claims or "openid" not in claims["scp"]:
        return _bearer_error(
            request, 403, "insufficient_scope", "the token was not issued with the openid scope"
        )
    username = claims["sub"]
    answer: dict[str, Any] = {"sub": claims["uid"]}
    if "profile" in claims["scp"]:
        answer.update(name=username, preferred_username=username)
    if "email" in claims["scp"] and "@" in username:
        answer.update(email=username, email_verified=True)
    if "groups" in claims:
        answer["groups"] = claims["groups"]
    request.response.cache_control = "no-store"
    return answer


def _bearer_error(request: Request, status: int, error: str | None, description: str) -> Response:
    settings: DevIssuerSettings = request.registry.devissuer_settings
    response = json_error(status, error or "invalid_request", description)
    challenge = f'Bearer realm="{settings.issuer}"'
    if error:  # RFC 6750 §3.1: no error code when the request had no token
        challenge += f', error="{error}", error_description="{description}"'
    response.headers["WWW-Authenticate"] = challenge
    return response


# -- logout ----------------------------------------------------------------------------


def logout(request: Request) -> Response:
    """RP-initiated logout: ends the browser's session, then returns to the client's
    ``post_logout_redirect_uri`` if it is one of that client's registered redirect
    URIs, named by the ``id_token_hint`` this issuer signed (expired is fine)."""
    settings: DevIssuerSettings = request.registry.devissuer_settings
    factory: TokenFactory = request.registry.devissuer_tokens
    signins: SignIns = request.registry.devissuer_signins
    try:
        params = _params(request)
    except AuthorizeError as exc:
        return _error_page(request, 400, exc.description)
    target = params.get("post_logout_redirect_uri")
    client = None
    if target is not None or "id_token_hint" in params:
        hint = _id_token_claims(params.get("id_token_hint", ""), factory)
        client = settings.client(hint.get("aud", "")) if hint else None
        if client is None:
            return _error_page(
                request,
                400,
                "The id_token_hint is missing or is not an ID token of this issuer; "
                "it names the client to return to.",
            )
        if target is not None and not client.redirect_uri_allowed(target):
            return _error_page(
                request,
                400,
                f"The post_logout_redirect_uri is not registered for the client "
                f"{client.client_id!r}.",
            )
    signins.end_session(request.cookies.get(SESSION_COOKIE))
    if target is not None:
        extra = {"state": params["state"]} if "state" in params else {}
        response = (
            _redirect(target, "query", extra) if extra else Response(status=302, location=target)
        )
    else:
        response = _page(
            request, "Signed out", "<h1>Signed out</h1><p>You may close this page.</p>", None
        )
    response.delete_cookie(SESSION_COOKIE, path=_cookie_path(request))
    log.info("user signed out: client_id=%s", client.client_id if client else "-")
    return response


def _id_token_claims(token: str, factory: TokenFactory) -> dict[str, Any] | None:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = factory.keys.public_key(kid) if isinstance(kid, str) else None
        if key is None:
            return None
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            issuer=factory.settings.issuer,
            # OIDC RP-Initiated Logout §2: an expired ID token is a fine hint.
            options={"verify_exp": False, "verify_aud": False, "require": ["aud", "sub"]},
        )
    except jwt.PyJWTError:
        return None
    # An ID token names its client in aud; an access token (with scp) is no hint.
    if not isinstance(claims.get("aud"), str) or "scp" in claims:
        return None
    return claims


def includeme(config: Configurator) -> None:
    settings: DevIssuerSettings = config.registry.devissuer_settings
    base = settings.path
    for name, path, view, methods, renderer in (
        ("authorize", "/v1/authorize", authorize, ("GET", "HEAD", "POST"), None),
        ("login", "/v1/login", login, ("POST",), None),
        ("userinfo", "/v1/userinfo", userinfo, ("GET", "POST"), "json"),
        ("logout", "/v1/logout", logout, ("GET", "HEAD", "POST"), None),
    ):
        config.add_route(f"devissuer.{name}", base + path)
        config.add_view(
            view,
            route_name=f"devissuer.{name}",
            request_method=methods,
            renderer=renderer,
            permission=NO_PERMISSION_REQUIRED,
        )
