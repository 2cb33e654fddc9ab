"""The demonstration API: one public view, one that needs a token, one that needs a
recent two-factor sign-in, and one that needs a DPoP-bound token."""

from __future__ import annotations

import json
from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from okta_pyramid.permissions import AUTHENTICATED

HELLO = json.dumps(
    {"message": "Hello! This endpoint is public; /api/whoami needs an access token."}
).encode()


def json_response(body: bytes, *headers: tuple[str, str]) -> Response:
    """A 200 answer whose body is already JSON (UTF-8, RFC 8259 §8.1)."""
    return Response(body=body, headerlist=[("Content-Type", "application/json"), *headers])


@view_config(route_name="hello", request_method=("GET", "HEAD"), permission=NO_PERMISSION_REQUIRED)
def hello(request: Request) -> Response:
    """Public: answers with or without a token."""
    return json_response(HELLO)


@view_config(route_name="whoami", request_method=("GET", "HEAD"), permission=AUTHENTICATED)
def whoami(request: Request) -> Response:
    """The validated access token's claims, exactly as the issuer signed them (a JSON
    object without repeated names), serialized once per token."""
    return json_response(
        request.identity.token.payload, ("Cache-Control", "no-store")
    )  # the claims are per caller


#: What /api/sensitive accepts as the user's sign-in (RFC 9470): Okta's two-factor
#: level, or phishing-resistant (``phr``) and hardware-protected (``phrh``) sign-ins.
STRONG_SIGN_IN = ("urn:okta:loa:2fa:any", "phr", "phrh")
#: ... made within the last five minutes.
RECENT_SIGN_IN = 300


@view_config(
    route_name="sensitive",
    request_method=("GET", "HEAD"),
    permission=AUTHENTICATED,
    acr_values=STRONG_SIGN_IN,
    max_age=RECENT_SIGN_IN,
    renderer="json",
)
def sensitive(request: Request) -> dict[str, Any]:
    """Needs a user who signed in with a second factor in the last five minutes (a
    weaker or older sign-in gets 401 ``insufficient_user_authentication``): who, how
    and when they signed in."""
    claims = request.identity.claims
    request.response.cache_control = "no-store"  # per caller
    return {
        "sub": claims.get("sub"),
        "acr": claims.get("acr"),
        "amr": claims.get("amr"),
        "auth_time": claims.get("auth_time"),
    }


@view_config(
    route_name="dpop", request_method=("GET", "HEAD"), permission=AUTHENTICATED, renderer="json"
)
def dpop(request: Request) -> dict[str, Any]:
    """Needs a DPoP-bound token and its proof (the context's ACL denies ``Bearer``): who
    called, and the thumbprint of the key they proved they hold."""
    identity = request.identity
    request.response.cache_control = "no-store"  # per caller
    return {"sub": identity.subject, "scheme": identity.scheme, "jkt": identity.proof.jkt}
