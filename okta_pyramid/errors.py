"""Every error answer of the add-on is decided here.

One table, :data:`ANSWERS`, maps what went wrong to the HTTP status, the error code
and the scheme whose ``WWW-Authenticate`` challenge carries it; the body is always
``{"error": ..., "error_description": ...}`` (RFC 6750 §3), with the challenge's
``scope``, ``acr_values`` and ``max_age`` when it has them. A new failure, error
code or scheme is a row in that table (and :data:`SCHEMES`), not a new branch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyramid.authorization import Deny
from pyramid.config import Configurator
from pyramid.exceptions import PredicateMismatch, URLDecodeError
from pyramid.httpexceptions import HTTPException, HTTPForbidden
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response

from .parts import okta_parts
from .permissions import scopes_granting
from .principals import BEARER_TOKEN
from .resource_metadata import request_metadata_url
from .security import authentication
from .tokens import (
    InvalidDPoPProof,
    InvalidToken,
    IssuerUnavailable,
    ReplayQuotaExceeded,
    ReplayStoreFull,
    SchemeNotAccepted,
    UseDPoPNonce,
)
from .tokens.exceptions import MalformedRequest
from .tokens.shared import SharedStoreUnavailable

# RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


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


class InsufficientUserAuthentication(Exception):
    """A valid token whose sign-in is not strong or recent enough for the view
    (RFC 9470 §3): the client signs the user in again with ``acr_values`` and
    ``max_age`` and retries."""

    reason = "insufficient_user_authentication"

    def __init__(self, description: str, acr_values: str | None, max_age: int | None) -> None:
        super().__init__(description)
        self.description = description
        #: The acceptable ``acr`` values, space-separated, for the challenge.
        self.acr_values = acr_values
        #: The most seconds since the user's sign-in, for the challenge.
        self.max_age = max_age


class UserSignInRequired(Exception):
    """A token issued to a client alone on a view that needs a user's sign-in: no
    sign-in can step it up, so the answer is 403 and asks for none (docs/step-up.md)."""

    reason = "insufficient_user_authentication"
    description = (
        "this endpoint needs a user's sign-in; a token issued to a client alone "
        "(client credentials) cannot be stepped up"
    )


#: :attr:`Answer.scheme`: the challenge of the scheme the request used, or the one a
#: :class:`SchemeNotAccepted` names; the first scheme the API accepts when the request
#: used none, or one the API does not accept.
USED = "used"


@dataclass(frozen=True)
class Answer:
    """How one kind of failure is answered."""

    status: int
    #: The error code, in the JSON body and the challenge.
    error: str
    #: The authentication scheme whose challenge carries the error: :data:`USED`, the
    #: scheme the request used (RFC 9449 §7.1), or a scheme's name; ``None`` for no
    #: challenge (a 503 says when to retry instead: the credentials were not judged).
    scheme: str | None = USED


#: Failure to answer; a failure is answered by the first of its classes (in method
#: resolution order) found here.
ANSWERS: dict[type[Exception], Answer] = {
    MalformedRequest: Answer(400, "invalid_request"),
    InvalidToken: Answer(401, "invalid_token"),
    # RFC 9449 §7.1 and §12.2: DPoP's own error codes, in a DPoP challenge.
    InvalidDPoPProof: Answer(401, "invalid_dpop_proof", scheme="DPoP"),
    UseDPoPNonce: Answer(401, "use_dpop_nonce", scheme="DPoP"),
    InsufficientScope: Answer(403, "insufficient_scope"),
    # RFC 9470 §3: sign the user in again, as the challenge's parameters say.
    InsufficientUserAuthentication: Answer(401, "insufficient_user_authentication"),
    UserSignInRequired: Answer(403, "insufficient_user_authentication"),
    IssuerUnavailable: Answer(503, "temporarily_unavailable", scheme=None),
    # Every recent proof is remembered and the store is full: retry shortly.
    ReplayStoreFull: Answer(503, "temporarily_unavailable", scheme=None),
    # This DPoP key sent more recent proofs than one key may (RFC 6585 §4): its
    # client slows down; other clients are not affected.
    ReplayQuotaExceeded: Answer(429, "too_many_requests", scheme=None),
    # The shared state (okta.shared_store) did not answer: fail closed, retry shortly.
    SharedStoreUnavailable: Answer(503, "temporarily_unavailable", scheme=None),
}
#: Every scheme the API knows, in the order of its challenges. A request without
#: credentials is challenged with each scheme the mode
#: (``okta.dpop``) accepts (RFC 9110 §11.6.1; RFC 6750 §3.1 and RFC 9449 §7.1: then
#: without an error code). DPoP's ``algs`` lists the accepted proof algorithms.
SCHEMES = ("Bearer", "DPoP")
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


def www_authenticate(
    realm: str,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
    *,
    scheme: str = "Bearer",
    algs: str | None = None,
    acr_values: str | None = None,
    max_age: int | None = None,
    resource_metadata: str | None = None,
) -> str:
    """One ``WWW-Authenticate`` challenge in the form of RFC 6750 §3 (and, for
    ``DPoP``, RFC 9449 §7.1 with ``algs``), with RFC 9470 §3's ``acr_values`` and
    ``max_age`` and RFC 9728 §5.1's ``resource_metadata``."""
    params = [f'realm="{_quoted(realm)}"']
    if algs:
        params.append(f'algs="{_quoted(algs)}"')
    if error:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{_quoted(description)}"')
    if scope:
        params.append(f'scope="{_quoted(scope)}"')
    if acr_values:
        params.append(f'acr_values="{_quoted(acr_values)}"')
    if max_age is not None:
        params.append(f'max_age="{max_age}"')
    if resource_metadata:
        params.append(f'resource_metadata="{_quoted(resource_metadata)}"')
    return f"{scheme} " + ", ".join(params)


def json_error(status: int, error: str, description: str) -> Response:
    """A JSON error response with no authentication challenge."""
    response = Response(status=status, json_body={"error": error, "error_description": description})
    response.cache_control = "no-store"
    return response


def challenge(
    failure: Exception | None,
    *,
    realm: str,
    schemes: tuple[str, ...] = ("Bearer",),
    used: str | None = None,
    algs: str | None = None,
    scope: str | None = None,
    resource_metadata: str | None = None,
) -> Response:
    """The answer to a request whose credentials did not grant access: ``failure`` is
    the exception that decided it, ``None`` when the request carried no credentials.

    ``schemes`` are those the API accepts, ``used`` the one the request used, ``algs``
    the accepted DPoP proof algorithms (space-separated); ``scope`` the scopes that
    would grant the view's permission (RFC 6750 §3), unless the failure names its
    own; ``resource_metadata`` the URL of the API's metadata (RFC 9728 §5.1), in
    every challenge.
    """
    if failure is None:
        how = " or ".join(f"'Authorization: {scheme} <token>'" for scheme in schemes)
        response = json_error(
            401, "unauthorized", f"this endpoint needs an access token: send {how}"
        )
        response.headers["WWW-Authenticate"] = ", ".join(
            www_authenticate(
                realm,
                scope=scope,
                scheme=scheme,
                algs=algs if scheme == "DPoP" else None,
                resource_metadata=resource_metadata,
            )
            for scheme in SCHEMES
            if scheme in schemes
        )
    else:
        answer = answer_for(failure)
        description = getattr(failure, "description", None) or answer.error
        # Only a challenge names scopes: a 503 did not judge the credentials.
        scope = (getattr(failure, "scope", None) or scope) if answer.scheme else None
        acr_values = getattr(failure, "acr_values", None)
        max_age = getattr(failure, "max_age", None)
        response = json_error(answer.status, answer.error, description)
        extra = {
            name: value
            for name, value in (("scope", scope), ("acr_values", acr_values), ("max_age", max_age))
            if value is not None and value != ""
        }
        if extra:
            response.json_body = {**response.json_body, **extra}
        if answer.scheme is None:
            response.retry_after = getattr(failure, "retry_after", None) or DEFAULT_RETRY_AFTER
        else:
            scheme = answer.scheme
            if scheme == USED:
                # Never a challenge for a scheme the mode refuses (okta.dpop =
                # required refuses Bearer): the client could not answer it.
                scheme = getattr(failure, "challenge", None) or (
                    used if used in schemes else schemes[0]
                )
            # RFC 6750 §3: a 400 or 401 carries the challenge; §3.1: so may a 403.
            response.headers["WWW-Authenticate"] = www_authenticate(
                realm,
                answer.error,
                description,
                scope,
                scheme=scheme,
                algs=algs if scheme == "DPoP" else None,
                acr_values=acr_values,
                max_age=max_age,
                resource_metadata=resource_metadata,
            )
        nonce = getattr(failure, "nonce", None)
        if nonce:
            # RFC 9449 §9; json_error already made the answer no-store.
            response.headers["DPoP-Nonce"] = nonce
    response.vary = ("Authorization",)
    return response


def answer(
    request: Request,
    failure: Exception | None,
    used: str | None = None,
    scope: str | None = None,
) -> Response:
    """:func:`challenge` with the application's realm, schemes, DPoP algorithms and
    metadata URL; ``scope`` as there."""
    okta = okta_parts(request.registry)
    schemes = okta.request_verifier.schemes
    dpop = okta.dpop
    return challenge(
        failure,
        realm=okta.settings.realm,
        schemes=schemes,
        used=used,
        algs=" ".join(dpop.algorithms) if dpop is not None else None,
        scope=scope,
        resource_metadata=request_metadata_url(request),
    )


def forbidden_view(exc: HTTPForbidden, request: Request) -> Response:
    """Pyramid raises HTTPForbidden when a view's permission is denied."""
    verdict = authentication(request)
    failure = verdict.failure
    if verdict.identity is None:
        # RFC 6750 §3: a 401 may name the scopes the request needs, too.
        return answer(request, failure, verdict.scheme, _scope_needed(exc, request))
    if _denied_bearer(exc):
        # The ACL requires a sender-constrained token (docs/dpop.md): tell the
        # client how to get in (RFC 9449 §7.1), not that a scope is missing.
        failure = SchemeNotAccepted(
            "this resource needs a DPoP-bound access token: send "
            "'Authorization: DPoP <token>' with a DPoP proof",
            "DPoP",
        )
    else:
        failure = InsufficientScope(_scope_needed(exc, request))
    return answer(request, failure, verdict.scheme)


def _denied_bearer(exc: HTTPForbidden) -> bool:
    # Pyramid 2's ACLDenied names the entry that decided: (Deny, token:bearer, ...).
    ace = getattr(getattr(exc, "result", None), "ace", None)
    return isinstance(ace, tuple) and len(ace) == 3 and ace[0] == Deny and ace[1] == BEARER_TOKEN


def _scope_needed(exc: HTTPForbidden, request: Request) -> str | None:
    """The scopes that would grant the denied permission, space-separated; ``None``
    when no scope grants it."""
    # Pyramid 2 puts the failed ``permits`` verdict (an ACLDenied) on the exception.
    result: Any = getattr(exc, "result", None)
    permission = getattr(result, "permission", None)
    if not isinstance(permission, str):
        return None
    # The ACL search starts at the view's context, as the denied check did.
    context = getattr(request, "context", None)
    if context is None:
        context = getattr(result, "context", None)
    return scope_needed(context, permission)


def scope_needed(context: Any, permission: str) -> str | None:
    """The scopes that, by the ACL of ``context``, grant ``permission``, space-separated
    (RFC 6750 §3's ``scope``); ``None`` when none does."""
    return " ".join(scopes_granting(context, permission)) or None


def not_found(request: Request) -> Response:
    """A JSON 404 for a request no view answers, or a 405 with ``Allow`` when its route's
    views answer other methods only (RFC 9110 §15.5.6)."""
    if isinstance(request.exception, PredicateMismatch) and request.matched_route is not None:
        allowed = allowed_methods(request.registry).get(request.matched_route.name)
        # None: a view of the route takes every method, so another predicate refused.
        if allowed and request.method not in allowed:
            response = json_error(
                405, "method_not_allowed", "this endpoint accepts only " + ", ".join(allowed)
            )
            response.allow = allowed
            return response
    return json_error(404, "not_found", "no such endpoint")


# The usual order of an Allow header; other methods follow, sorted.
_METHOD_ORDER = {
    method: rank
    for rank, method in enumerate(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
}


# Each application's table, on its registry under a name private to this module:
# the error views also serve applications that include them without the add-on
# (the development issuer's), so it is not one of the add-on's parts.
_ALLOWED_METHODS = "_okta_pyramid_allowed_methods"


def allowed_methods(registry: Registry) -> Mapping[str, tuple[str, ...] | None]:
    """Route name to the methods its views accept, ``None`` when one accepts any
    method; read once from Pyramid's introspector (views added with introspection
    off are not known, and their routes keep answering 404)."""
    table: Mapping[str, tuple[str, ...] | None] | None = getattr(registry, _ALLOWED_METHODS, None)
    if table is None:
        found: dict[str, set[str] | None] = {}
        for entry in registry.introspector.get_category("views", []):
            view = entry["introspectable"]
            route = view.get("route_name")
            if route is None or view.get("exception_only"):
                continue
            methods = _view_methods(view.get("request_methods"))
            known = found.setdefault(route, set())
            if methods is None or known is None:
                found[route] = None  # one view takes any method: the route does too
            else:
                known.update(methods)
        table = {
            route: None
            if methods is None
            else tuple(sorted(methods, key=lambda m: (_METHOD_ORDER.get(m, len(_METHOD_ORDER)), m)))
            for route, methods in found.items()
        }
        setattr(registry, _ALLOWED_METHODS, table)
    return table


def _view_methods(value: Any) -> set[str] | None:
    # What add_view's request_method took: a name or names; anything else (none, or
    # pyramid.config.not_(...)) may accept any method.
    if isinstance(value, str):
        methods = {value}
    elif isinstance(value, (tuple, list, set, frozenset)) and all(
        isinstance(method, str) for method in value
    ):
        methods = set(value)
    else:
        return None
    if "GET" in methods:
        methods.add("HEAD")  # Pyramid's request_method predicate: GET implies HEAD
    return methods


def http_error(exc: HTTPException, request: Request) -> Response:
    """The JSON answer to an HTTP error raised by Pyramid or a view (405, 400...)."""
    if exc.code < 400:
        return exc
    return json_error(exc.code, exc.title.lower().replace(" ", "_"), exc.title)


def undecodable_path(exc: URLDecodeError, request: Request) -> Response:
    # The path is not UTF-8 (e.g. /api/%ff): a bad request, not a server error.
    return json_error(400, "invalid_request", "the request path is not valid UTF-8")


def add_json_error_views(config: Configurator) -> None:
    """JSON answers, never Pyramid's text pages, for what no view handles: unknown
    paths, methods a route's views do not accept (405 with ``Allow``), HTTP errors,
    paths that are not UTF-8. An application (the demo, each
    authorization server of the development issuer) adds them to its own
    configuration; the add-on does not, so an including app keeps its own."""
    config.add_notfound_view(not_found)
    config.add_exception_view(http_error, context=HTTPException)
    config.add_exception_view(undecodable_path, context=URLDecodeError)


def includeme(config: Configurator) -> None:
    config.add_forbidden_view(forbidden_view)
