"""Live tokens: views that need the issuer to confirm a token is still active.

A view says so with the view option ``require_active_token=True``
(``okta.introspect_all = true`` makes it the default of every protected view).
Its request is then answered only once the token passed the local checks, the
view's permission, **and** introspection (RFC 7662): a revoked token is refused
(401 ``invalid_token``) within ``okta.introspection_cache_ttl``, and an issuer that
cannot answer makes the request 503, never 200. Other views keep the local check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import IDefaultPermission
from pyramid.request import Request
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from .bearer import withhold_claims
from .errors import answer, scope_needed
from .parts import okta_parts
from .security import authentication
from .tokens.exceptions import InvalidToken, IssuerUnavailable
from .tokens.introspection import IntrospectionUnavailable
from .tokens.judge import LiveTokenJudge
from .tokens.shared import SharedStoreUnavailable

log = logging.getLogger(__name__)

#: The view option.
OPTION = "require_active_token"
#: Where a live view leaves the failure that refused the request (for the metrics).
LIVE_FAILURE = "okta_pyramid.live_token_failure"


def live_token_failure(request: Request) -> tuple[Exception | None, bool]:
    """``(failure, refused)`` for a request to a view that needs a live token:
    ``(None, False)`` when the token is live; otherwise the failure to answer with
    (``None`` with ``refused`` when the request had no token at all)."""
    verdict = authentication(request)
    identity = verdict.identity
    if identity is None:
        return verdict.failure, True
    okta = okta_parts(request.registry)
    # A live view is only configured with introspection on (require_active_token
    # refuses otherwise), and then the judge is one that confirms.
    judge = cast(LiveTokenJudge, okta.request_verifier.tokens)
    credentials = okta.policy.reader.credentials(request)
    if credentials is None:  # an identity was found, so the request had a token
        return None, True
    try:
        judge.confirm(credentials.token, identity.token)
    except InvalidToken as exc:
        log.info("token rejected: reason=%s client=%s", exc.reason, request.remote_addr)
        return exc, True
    except (IntrospectionUnavailable, SharedStoreUnavailable) as exc:
        # The introspector or the store logs the incident once; this is one request.
        log.debug("token not judged: reason=%s client=%s", exc.reason, request.remote_addr)
        return exc, True
    except IssuerUnavailable as exc:
        log.warning("token not judged: reason=%s client=%s", exc.reason, request.remote_addr)
        return exc, True
    return None, False


def view_permission(info: Any) -> str | None:
    """The permission a view needs (its own, or the default one); ``None`` for a
    public view."""
    permission = info.options.get("permission")
    if permission is None:
        permission = info.registry.queryUtility(IDefaultPermission)
    if permission is None or permission == NO_PERMISSION_REQUIRED:
        return None
    return permission if isinstance(permission, str) else None


def _protected(info: Any) -> bool:
    return view_permission(info) is not None


def require_active_token(view: Callable[..., Any], info: Any) -> Callable[..., Any]:
    """The view deriver of the ``require_active_token`` view option."""
    if info.exception_only:
        return view
    settings = okta_parts(info.registry).settings
    wanted = info.options.get(OPTION)
    if wanted is None:
        wanted = settings.introspect_all and _protected(info)
    if not wanted:
        return view
    if settings.introspection is None:
        raise ConfigurationError(
            f"{OPTION}=True on view {info.original_view!r} needs token introspection: "
            f"set okta.introspection_client_id and its credentials (docs/introspection.md)"
        )

    permission = view_permission(info)

    def live_view(context: Any, request: Request) -> Response:
        failure, refused = live_token_failure(request)
        if refused:
            if failure is not None:
                request.__dict__[LIVE_FAILURE] = failure
            withhold_claims(request)
            scope = scope_needed(context, permission) if permission is not None else None
            return answer(request, failure, authentication(request).scheme, scope)
        return view(context, request)

    return live_view


require_active_token.options = (OPTION,)  # type: ignore[attr-defined]


def includeme(config: Configurator) -> None:
    """Add the ``require_active_token`` view option. It runs after the permission
    check (Pyramid's ``secured_view``), so introspection is asked only for a token
    that may already use the view."""
    config.add_view_deriver(require_active_token)
