"""The development issuer's guard: it answers only tools on this machine.

Every request under the issuer's path passes :class:`LocalOnlyTween` first: it
must come from loopback, name the issuer's own host and port in ``Host``, carry no
``Origin`` but the issuer's own, and carry no header a proxy adds (a reverse proxy
on the same host would make every caller look local).

One exception, Okta's "Trusted Origins": a single-page app served from the origin
of a public client's redirect URI (``http://localhost:3000`` for a client that
registered ``http://localhost:3000/callback``) may call the endpoints a browser app
needs (discovery, keys, token, userinfo, revocation) across origins, with CORS answers. At the
token endpoint such a page may use that public client only, so the confidential
clients' secrets (public in development.ini) stay useless to web pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response

from ..errors import json_error
from ..settings import is_loopback_host
from .config import DevIssuerSettings

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}
#: The endpoints (under the issuer's path) that a page on a trusted origin may call.
BROWSER_ENDPOINTS = frozenset(
    {
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/v1/keys",
        "/v1/token",
        "/v1/userinfo",
        "/v1/revoke",
    }
)
#: Set on a request from a page on a trusted origin: the origin (the token endpoint
#: then lets it use only a public client that trusts it).
PAGE_ORIGIN = "okta_pyramid.devissuer.page_origin"
CORS_ALLOWED_HEADERS = "accept, authorization, content-type, dpop, x-okta-user-agent-extended"
CORS_EXPOSED_HEADERS = "DPoP-Nonce, WWW-Authenticate"
CORS_MAX_AGE = "600"


def _origin(scheme: str, host: str, port: int | None) -> str:
    """The RFC 6454 §6.2 serialization: no default port, IPv6 in brackets."""
    shown = f"[{host}]" if ":" in host else host
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{shown}"
    return f"{scheme}://{shown}:{port}"


class LocalOnlyTween:
    """The guard in front of every endpoint of the development issuer.

    Its client secret is public (it is in development.ini), so the issuer must
    answer only this machine, and on it only the developer's own tools, never a
    web page open in the developer's browser (whose requests also come from
    loopback). A request is refused with 403 unless:

    - it comes from a loopback address, and not through a proxy: a request that
      carries ``Forwarded``, ``X-Forwarded-*``, ``X-Real-IP`` or ``Via`` was relayed
      by one, and a proxy on this machine relays the whole network's requests
      from loopback (with ``Host`` set to the upstream's, nginx's default);
    - its ``Host`` names the issuer's own port on the issuer's host or on a
      loopback literal (a page that rebinds its own DNS name to 127.0.0.1 sends
      that name: DNS rebinding);
    - its ``Origin``, if any, is the issuer's own origin or the one the request
      was sent to (the page is served by this app); a cross-site page, a form
      posted from one, or a sandboxed page (``Origin: null``) is refused;
    - its ``Sec-Fetch-Site``, if any, is not ``cross-site`` or ``same-site``,
      except for a GET that opens a page (a link to the metadata, say).
    """

    def __init__(self, handler: Callable[[Request], Response], registry: Registry) -> None:
        self.handler = handler
        settings: DevIssuerSettings = registry.devissuer_settings
        issuer = urlsplit(settings.issuer)
        self.path = settings.path
        self.scheme = issuer.scheme
        self.hostname = (issuer.hostname or "").lower()
        self.port = issuer.port or DEFAULT_PORTS[issuer.scheme]
        self.origin = _origin(self.scheme, self.hostname, self.port)
        self.clients = settings.clients

    def __call__(self, request: Request) -> Response:
        # The WSGI path (RFC 3333: the request's bytes as latin-1), not webob's
        # path_info, which raises on bytes that are not UTF-8: the issuer's path is
        # ASCII, so both compare alike, and a bad path reaches the app's 400 view.
        path = request.environ.get("PATH_INFO", "")
        if path == self.path or path.startswith(self.path + "/"):
            refusal = self.refusal(request)
            if refusal is not None:
                # repr: the path is the caller's text and must not forge log lines.
                log.warning(
                    "development issuer: refused %s %r: %s", request.method, path[:200], refusal
                )
                return json_error(
                    403, "access_denied", f"the development issuer refuses this request: {refusal}"
                )
            page = request.environ.get(PAGE_ORIGIN)
            if page is not None:
                return self.cross_origin(request, page)
        return self.handler(request)

    def trusted_page(self, origin: str, path: str) -> bool:
        """Whether ``origin`` is a public client's trusted origin and ``path`` an
        endpoint a browser app calls."""
        return path[len(self.path) :] in BROWSER_ENDPOINTS and any(
            client.trusts_origin(origin) for client in self.clients
        )

    def cross_origin(self, request: Request, origin: str) -> Response:
        """A trusted page's request: its preflight answered here, its answer labelled
        for it (the Fetch standard's CORS protocol; no credentials)."""
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = Response(status=204)
            response.headers.update(
                {
                    "Access-Control-Allow-Methods": "GET, POST",
                    "Access-Control-Allow-Headers": CORS_ALLOWED_HEADERS,
                    "Access-Control-Max-Age": CORS_MAX_AGE,
                }
            )
        else:
            response = self.handler(request)
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
        response.headers["Access-Control-Allow-Origin"] = origin
        response.vary = tuple(dict.fromkeys((*(response.vary or ()), "Origin")))
        return response

    def refusal(self, request: Request) -> str | None:
        """Why ``request`` must not reach the development issuer, or ``None``."""
        if not is_loopback_host(request.remote_addr):
            # A server reachable from elsewhere (listen = 0.0.0.0, a published
            # container port) must not mint tokens for other machines.
            return "it only answers callers on loopback"
        relayed = _proxy_header(request.environ)
        if relayed is not None:
            return f"it does not answer through a proxy (the request carries {relayed})"
        try:
            # WebOb falls back to the server's own address when Host is absent.
            host = urlsplit("//" + request.host)
            hostname, port = (host.hostname or "").lower(), host.port
        except ValueError:
            return "the Host header is not host[:port]"
        port = port if port is not None else DEFAULT_PORTS.get(request.scheme)
        if port != self.port or not (hostname == self.hostname or is_loopback_host(hostname)):
            return (
                f"the Host header must name this issuer ({self.hostname}:{self.port}) "
                f"or a loopback address on its port"
            )
        origin = request.headers.get("Origin")
        if origin is not None:
            own = _origin(request.scheme, hostname, port)
            if origin.lower() not in (self.origin, own):
                if self.trusted_page(origin, request.environ.get("PATH_INFO", "")):
                    request.environ[PAGE_ORIGIN] = origin
                    return None
                return f"requests from a web page are only accepted from {self.origin}"
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        if site in ("cross-site", "same-site"):
            opens_a_page = (
                request.method in ("GET", "HEAD")
                and request.headers.get("Sec-Fetch-Mode") == "navigate"
            )
            if not opens_a_page:
                return f"requests from a web page are only accepted from {self.origin}"
        return None


#: Headers that proxies add to what they relay (RFC 7239, RFC 9110 §7.6.3, and the
#: de facto X-Forwarded-* and X-Real-IP), by their WSGI names.
_PROXY_HEADERS = {"HTTP_FORWARDED": "Forwarded", "HTTP_X_REAL_IP": "X-Real-IP", "HTTP_VIA": "Via"}


def _proxy_header(environ: dict[str, Any]) -> str | None:
    """The name of a header a proxy added to the request, or ``None``."""
    for key in environ:
        if key in _PROXY_HEADERS:
            return _PROXY_HEADERS[key]
        if key.startswith("HTTP_X_FORWARDED_"):
            return "X-Forwarded-" + key[17:].replace("_", "-").title()
    return None
