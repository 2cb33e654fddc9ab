"""Every error answer of the add-on is decided here.

One table, :data:`ANSWERS`, maps what went wrong to the HTTP status, the error code
and the scheme whose ``WWW-Authenticate`` challenge carries it; the body is always
``{"error": ..., "error_description": ...}`` (RFC 6750 §3). A new failure, error
code or scheme is a row in that table (and :data:`SCHEMES`), not a new branch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPForbidden
from pyramid.request import Request
from pyramid.response import Response

from .permissions import scopes_granting
from .security import MalformedRequest, authentication
from .tokens import InvalidToken, IssuerUnavailable

# RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_UNSAFE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')


class InsufficientScope(Exception):
    """A valid token without the permission the view needs (RFC 6750 §3.1)."""

    reason = "insufficient_scope"

    def __init__(self, scope: str | None = None) -> None:
        if scope:
            description = f"the access token lacks the scope this request needs: {scope}"
        else:
            description = "the access token does not grant the permission this request needs"
        super().__init__(description)
        self.description = description
        #: The scopes that would grant the permission, space-separated (RFC 6750 §3).
        self.scope = scope


@dataclass(frozen=True)
class Answer:
    """How one kind of failure is answered."""

    status: int
    #: The error code, in the JSON body and the challenge.
    error: str
    #: The authentication scheme whose challenge carries the error; ``None`` for no
    #: challenge (a 503 says when to retry instead: the credentials were not judged).
    scheme: str | None = "Bearer"


#: Failure to answer; a failure is answered by the first of its classes (in method
#: resolution order) found here.
ANSWERS: dict[type[Exception], Answer] = {
    MalformedRequest: Answer(400, "invalid_request"),
    InvalidToken: Answer(401, "invalid_token"),
    InsufficientScope: Answer(403, "insufficient_scope"),
    IssuerUnavailable: Answer(503, "temporarily_unavailable", scheme=None),
}
#: The schemes the API accepts. A request without credentials is challenged with
#: each (RFC 9110 §11.6.1, RFC 6750 §3.1: then without an error code).
SCHEMES = ("Bearer",)
#: Retry-After, in seconds, of a 503 whose failure names none.
DEFAULT_RETRY_AFTER = 5


def answer_for(failure: Exception) -> Answer:
    """The row of :data:`ANSWERS` that answers ``failure``."""
    for cls in type(failure).__mro__:
        found = ANSWERS.get(cls)
        if found is not None:
            return found
    raise LookupError(f"no answer for {type(failure).__name__}")


def _quoted(value: str) -> str:
    return _UNSAFE.sub("?", value)


def www_authenticate(realm: str, error: str | None = None, description: str | None = None,
                     scope: str | None = None, *, scheme: str = "Bearer") -> str:
    """One ``WWW-Authenticate`` challenge in the form of RFC 6750 §3."""
    params = [f'realm="{_quoted(realm)}"']
    if error:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{_quoted(description)}"')
    if scope:
        params.append(f'scope="{_quoted(scope)}"')
    return f"{scheme} " + ", ".join(params)


def json_error(status: int, error: str, description: str) -> Response:
    """A JSON error response with no authentication challenge."""
    response = Response(status=status, json_body={"error": error,
                                                  "error_description": description})
    response.cache_control = "no-store"
    return response


def challenge(failure: Exception | None, *, realm: str) -> Response:
    """The answer to a request whose credentials did not grant access: ``failure`` is
    the exception that decided it, ``None`` when the request carried no credentials."""
    if failure is None:
        response = json_error(401, "unauthorized",
                              "this endpoint needs an access token: "
                              "send 'Authorization: Bearer <token>'")
        response.headers["WWW-Authenticate"] = ", ".join(
            www_authenticate(realm, scheme=scheme) for scheme in SCHEMES)
    else:
        answer = answer_for(failure)
        description = getattr(failure, "description", None) or answer.error
        scope = getattr(failure, "scope", None)
        response = json_error(answer.status, answer.error, description)
        if scope:
            response.json_body = {**response.json_body, "scope": scope}
        if answer.scheme is None:
            response.retry_after = getattr(failure, "retry_after", None) or DEFAULT_RETRY_AFTER
        else:
            # RFC 6750 §3: a 400 or 401 carries the challenge; §3.1: so may a 403.
            response.headers["WWW-Authenticate"] = www_authenticate(
                realm, answer.error, description, scope, scheme=answer.scheme)
    response.vary = ("Authorization",)
    return response


def forbidden_view(exc: HTTPForbidden, request: Request) -> Response:
    """Pyramid raises HTTPForbidden when a view's permission is denied."""
    verdict = authentication(request)
    failure = verdict.failure
    if verdict.identity is not None:
        failure = InsufficientScope(" ".join(_scopes_needed(exc, request)) or None)
    return challenge(failure, realm=request.registry.okta_settings.realm)


def _scopes_needed(exc: HTTPForbidden, request: Request) -> list[str]:
    # Pyramid 2 puts the failed ``permits`` verdict (an ACLDenied) on the exception.
    result: Any = getattr(exc, "result", None)
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
