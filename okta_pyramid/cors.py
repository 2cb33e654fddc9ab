"""Cross-origin requests from browser apps (the Fetch standard's CORS protocol).

Only configured origins get CORS headers; any other origin gets none and the
browser blocks it. Preflights are answered here, before routing and security,
because a browser never sends credentials on a preflight.
"""

from __future__ import annotations

from collections.abc import Callable

from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response

from .errors import json_error
from .parts import okta_parts
from .resource_metadata import PATH as METADATA_PATH

ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
# DPoP: the proof of a sender-constrained token (RFC 9449 §4.1).
ALLOWED_HEADERS = frozenset(
    {
        "authorization",
        "dpop",
        "content-type",
        "accept",
        "accept-language",
        "content-language",
        "x-request-id",
    }
)
# Browser code may read these on a cross-origin response: a DPoP client must read
# DPoP-Nonce to sign its next proof (RFC 9449 §8).
EXPOSED_HEADERS = "WWW-Authenticate, Retry-After, DPoP-Nonce"


class CORSTween:
    """Tween that answers preflights and labels responses for allowed origins."""

    def __init__(self, handler: Callable[[Request], Response], registry: Registry) -> None:
        self.handler = handler
        settings = okta_parts(registry).settings
        self.any_origin = "*" in settings.cors_allowed_origins
        self.origins = frozenset(settings.cors_allowed_origins)
        self.max_age = settings.cors_max_age

    def allowed(self, origin: str | None) -> bool:
        return origin is not None and (self.any_origin or origin in self.origins)

    def __call__(self, request: Request) -> Response:
        if request.path_info == METADATA_PATH:
            # Public and readable from any origin: the metadata view answers itself.
            return self.handler(request)
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return self.preflight(request, origin)
        response = self.handler(request)
        if self.allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = "*" if self.any_origin else origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if self.origins:
            response.vary = tuple(dict.fromkeys((*(response.vary or ()), "Origin")))
        return response

    def preflight(self, request: Request, origin: str | None) -> Response:
        if not self.allowed(origin):
            response = json_error(
                403, "cors_origin_not_allowed", "this origin may not call the API from a browser"
            )
        else:
            requested = {
                h.strip().lower()
                for h in request.headers.get("Access-Control-Request-Headers", "").split(",")
                if h.strip()
            }
            response = Response(status=204)
            response.headers.update(
                {
                    "Access-Control-Allow-Origin": "*" if self.any_origin else origin,
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ", ".join(
                        sorted(requested & ALLOWED_HEADERS | {"authorization"})
                    ),
                    "Access-Control-Max-Age": str(self.max_age),
                }
            )
        response.vary = (
            "Origin",
            "Access-Control-Request-Method",
            "Access-Control-Request-Headers",
        )
        return response


def includeme(config) -> None:
    config.add_tween("okta_pyramid.cors.CORSTween")
