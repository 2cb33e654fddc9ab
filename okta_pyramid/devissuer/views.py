"""The development issuer's endpoints, at the paths an Okta custom authorization
server uses under its issuer URI:

- ``/.well-known/oauth-authorization-server`` and ``/.well-known/openid-configuration``:
  metadata (RFC 8414);
- ``/v1/keys``: the public signing keys (RFC 7517);
- ``/v1/token``: the client-credentials grant (RFC 6749 §4.4).

Every view is public: callers of a token endpoint authenticate as clients, not
with an access token.
"""
from __future__ import annotations

import hmac
import logging
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from pyramid.authentication import extract_http_basic_credentials
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from ..errors import json_error
from ..settings import is_loopback_host
from .config import Client, DevIssuerSettings, is_scope_token
from .tokens import TokenFactory

log = logging.getLogger(__name__)

GRANT_TYPE = "client_credentials"
FORM = "application/x-www-form-urlencoded"
# A token request is a few hundred bytes; refuse to parse anything much larger.
MAX_BODY_BYTES = 16 * 1024
# Compared against when the client id is unknown, so both cases take as long.
_NO_SECRET = b"\0" * 32


class TokenError(Exception):
    """An OAuth error response (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def metadata(request: Request) -> dict[str, Any]:
    """Authorization server metadata (RFC 8414 §2); URLs derive from the issuer."""
    settings: DevIssuerSettings = request.registry.devissuer_settings
    issuer = settings.issuer.rstrip("/")
    request.response.cache_control = "no-cache"
    return {
        "issuer": settings.issuer,
        "token_endpoint": f"{issuer}/v1/token",
        "jwks_uri": f"{issuer}/v1/keys",
        # Only the client-credentials grant is served: no authorization endpoint,
        # so no response types (RFC 8414 §2).
        "response_types_supported": [],
        "grant_types_supported": [GRANT_TYPE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                  "client_secret_post"],
        "scopes_supported": sorted({s for c in settings.clients for s in c.scopes}),
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
    }


def keys(request: Request) -> dict[str, Any]:
    """The JWK Set; ``no-cache`` so a rotation shows at once."""
    request.response.cache_control = "no-cache"
    return request.registry.devissuer_tokens.keys.jwks()


def token(request: Request) -> Response | dict[str, Any]:
    """The client-credentials grant (RFC 6749 §4.4), answered as Okta does."""
    settings: DevIssuerSettings = request.registry.devissuer_settings
    factory: TokenFactory = request.registry.devissuer_tokens
    if not is_loopback_host(request.remote_addr):
        # The development client's secret is public (it is in development.ini): a
        # server reachable from elsewhere (listen = 0.0.0.0, a published container
        # port) must not mint tokens for other machines.
        log.warning("token refused: the caller %s is not on loopback", request.remote_addr)
        return json_error(403, "access_denied",
                          "the development issuer only issues tokens to loopback callers")
    try:
        params = _form(request)
        client = _authenticate_client(request, params, settings)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise TokenError("invalid_request", "the grant_type parameter is required")
        if grant_type != GRANT_TYPE:
            raise TokenError("unsupported_grant_type",
                             f"only the {GRANT_TYPE} grant is supported")
        scopes = _scopes(params.get("scope"), client)
    except TokenError as exc:
        log.info("token refused: error=%s client=%s", exc.error, request.remote_addr)
        return _error(exc, settings)
    access_token = factory.client_token(client.client_id, scopes)
    log.info("token issued: client_id=%s scope=%s kid=%s client=%s", client.client_id,
             " ".join(scopes), factory.keys.signing_key.kid, request.remote_addr)
    # RFC 6749 §5.1: responses carrying tokens must not be cached.
    request.response.cache_control = "no-store"
    request.response.pragma = "no-cache"
    return {
        "token_type": "Bearer",
        "expires_in": settings.token_lifetime,
        "access_token": access_token,
        "scope": " ".join(scopes),
    }


def method_not_allowed(request: Request) -> Response:
    response = json_error(405, "invalid_request", "the token endpoint only accepts POST")
    response.allow = ("POST",)
    return response


def _form(request: Request) -> dict[str, str]:
    if request.content_type.lower() != FORM:  # media types are case-insensitive
        raise TokenError("invalid_request", f"the request body must be {FORM}")
    raw = request.body_file.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise TokenError("invalid_request", "the request body is too large")
    try:
        # Strict, unlike a lenient form parser: a form body is ASCII whose
        # percent-escapes spell UTF-8 (HTML's application/x-www-form-urlencoded).
        items = parse_qsl(raw.decode("ascii"), keep_blank_values=True,
                          encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise TokenError("invalid_request", "the request body is not UTF-8 form data") from None
    params: dict[str, str] = {}
    for name, value in items:
        # RFC 6749 §3.2: parameters must not be included more than once.
        if name in params:
            raise TokenError("invalid_request", f"the {name[:40]!r} parameter is repeated")
        params[name] = value
    return params


def _authenticate_client(request: Request, params: dict[str, str],
                         settings: DevIssuerSettings) -> Client:
    """Client authentication by HTTP Basic or form fields (RFC 6749 §2.3.1), one only."""
    header = request.headers.get("Authorization", "")
    if header.split(" ", 1)[0].lower() == "basic":
        if "client_secret" in params:
            # RFC 6749 §2.3: a client must not use more than one method.
            raise TokenError("invalid_request",
                             "authenticate the client with one method: Basic or form")
        credentials = extract_http_basic_credentials(request)
        if credentials is None:
            raise TokenError("invalid_client", "the Basic credentials are malformed", 401)
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        client_id = unquote_plus(credentials.username)
        secret = unquote_plus(credentials.password)
        if params.get("client_id", client_id) != client_id:
            raise TokenError("invalid_request",
                             "client_id in the body differs from the Basic credentials")
    elif "client_id" in params and "client_secret" in params:
        client_id, secret = params["client_id"], params["client_secret"]
    else:
        raise TokenError("invalid_client",
                         "client authentication is required: HTTP Basic or "
                         "client_id and client_secret in the body", 401)
    client = settings.client(client_id)
    expected = client.secret.encode("utf-8") if client else _NO_SECRET
    if not hmac.compare_digest(secret.encode("utf-8", "replace"), expected) or client is None:
        raise TokenError("invalid_client",
                         "client authentication failed: unknown client or wrong secret", 401)
    return client


def _scopes(raw: str | None, client: Client) -> list[str]:
    if not raw or not raw.strip(" "):
        raise TokenError("invalid_scope", "the scope parameter is required; ask for one "
                         "or more of: " + " ".join(sorted(client.scopes)))
    scopes = list(dict.fromkeys(s for s in raw.split(" ") if s))
    for scope in scopes:
        if not is_scope_token(scope) or scope not in client.scopes:
            raise TokenError("invalid_scope",
                             f"the client may not ask for the scope {scope[:60]!r}")
    return scopes


def _error(exc: TokenError, settings: DevIssuerSettings) -> Response:
    response = json_error(exc.status, exc.error, exc.description)
    response.pragma = "no-cache"
    if exc.status == 401:
        # RFC 6749 §5.2: a 401 names the authentication scheme the client should use.
        response.headers["WWW-Authenticate"] = f'Basic realm="{settings.issuer}"'
    return response


def includeme(config: Configurator) -> None:
    settings: DevIssuerSettings = config.registry.devissuer_settings
    base = settings.path
    for name in ("oauth-authorization-server", "openid-configuration"):
        route = f"devissuer.{name}"
        config.add_route(route, f"{base}/.well-known/{name}")
        config.add_view(metadata, route_name=route, request_method=("GET", "HEAD"),
                        renderer="json", permission=NO_PERMISSION_REQUIRED)
    config.add_route("devissuer.keys", f"{base}/v1/keys")
    config.add_view(keys, route_name="devissuer.keys", request_method=("GET", "HEAD"),
                    renderer="json", permission=NO_PERMISSION_REQUIRED)
    config.add_route("devissuer.token", f"{base}/v1/token")
    config.add_view(token, route_name="devissuer.token", request_method="POST",
                    renderer="json", permission=NO_PERMISSION_REQUIRED)
    config.add_view(method_not_allowed, route_name="devissuer.token",
                    permission=NO_PERMISSION_REQUIRED)
