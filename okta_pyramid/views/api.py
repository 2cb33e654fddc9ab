"""The demonstration API: one public view and one that needs a token."""
from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ..permissions import AUTHENTICATED


@view_config(route_name="hello", request_method=("GET", "HEAD"), renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def hello(request: Request) -> dict[str, Any]:
    """Public: answers with or without a token."""
    return {"message": "Hello! This endpoint is public; /api/whoami needs an access token."}


@view_config(route_name="whoami", request_method=("GET", "HEAD"), renderer="json",
             permission=AUTHENTICATED)
def whoami(request: Request) -> dict[str, Any]:
    """The validated access token's claims."""
    request.response.headers["Cache-Control"] = "no-store"  # the claims are per caller
    return request.identity.claims
