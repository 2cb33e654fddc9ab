"""Every error answer of the API is built here: status, ``WWW-Authenticate`` and
a JSON body ``{"error": ..., "error_description": ...}`` (RFC 6750 §3).
"""
from __future__ import annotations

import re

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPForbidden
from pyramid.interfaces import ISecurityPolicy
from pyramid.request import Request
from pyramid.response import Response

from .permissions import scopes_granting
from .security import Authentication

# RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_UNSAFE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')

STATUS = {
    None: 401,
    "invalid_request": 400,
    "invalid_token": 401,
    "insufficient_scope": 403,
    "temporarily_unavailable": 503,
}


def _quoted(value: str) -> str:
    return _UNSAFE.sub("?", value)


def www_authenticate(realm: str, error: str | None = None,
                     description: str | None = None, scope: str | None = None) -> str:
    """The ``WWW-Authenticate: Bearer ...`` challenge of RFC 6750 §3."""
    params = [f'realm="{_quoted(realm)}"']
    if error:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{_quoted(description)}"')
    if scope:
        params.append(f'scope="{_quoted(scope)}"')
    return "Bearer " + ", ".join(params)


def json_error(status: int, error: str, description: str) -> Response:
    """A JSON error response with no authentication challenge."""
    response = Response(status=status, json_body={"error": error,
                                                  "error_description": description})
    response.cache_control = "no-store"
    return response


def challenge(auth: Authentication, *, realm: str, scope: str | None = None) -> Response:
    """The answer to a request whose credentials did not grant access."""
    error = auth.error
    description = auth.description
    if auth.identity is not None:
        # RFC 6750 §3.1: a valid token without the needed privileges is a 403, not a 401.
        error = "insufficient_scope"
        description = "the access token does not grant the permission this request needs"
        if scope:
            description = f"the access token lacks the scope this request needs: {scope}"
    status = STATUS[error]
    if error is None:
        response = json_error(status, "unauthorized",
                              "this endpoint needs an access token: "
                              "send 'Authorization: Bearer <token>'")
    else:
        response = json_error(status, error, description or error)
        if error == "insufficient_scope" and scope:
            response.json_body = {**response.json_body, "scope": scope}
    if status == 503:
        response.retry_after = auth.retry_after or 5
    else:
        # RFC 6750 §3: a 400 or 401 carries the challenge; §3.1: so may a 403.
        response.headers["WWW-Authenticate"] = www_authenticate(
            realm, error, description if error else None, scope)
    response.vary = ("Authorization",)
    return response


def forbidden_view(exc: HTTPForbidden, request: Request) -> Response:
    """Pyramid raises HTTPForbidden when a view's permission is denied."""
    policy = request.registry.getUtility(ISecurityPolicy)
    auth = policy.authenticate(request)
    scope = None
    if auth.identity is not None:
        scope = " ".join(_scopes_needed(exc, request)) or None
    return challenge(auth, realm=policy.realm, scope=scope)


def _scopes_needed(exc: HTTPForbidden, request: Request) -> list[str]:
    # Pyramid 2 puts the failed ``permits`` verdict (an ACLDenied) on the exception.
    result = getattr(exc, "result", None)
    permission = getattr(result, "permission", None)
    if not isinstance(permission, str):
        return []
    # The ACL search starts at the view's context, as the denied check did.
    context = getattr(request, "context", None)
    if context is None:
        context = getattr(result, "context", None)
    return scopes_granting(context, permission)


def includeme(config: Configurator) -> None:
    config.add_forbidden_view(forbidden_view)
