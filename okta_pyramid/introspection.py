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
from collections.abc import Callable, Mapping
from typing import Any

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import IDefaultPermission
from pyramid.request import Request
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from .errors import answer
from .security import authentication, withhold_claims
from .settings import IssuerSettings, OktaSettings
from .tokens import AccessTokenVerifier, IssuerClient, MultiIssuerVerifier, TokenJudge
from .tokens.capacity import CallSlots, calls_for_threads
from .tokens.client_auth import (
    ClientAuthentication,
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJWT,
)
from .tokens.exceptions import InvalidToken, IssuerUnavailable
from .tokens.introspection import (
    IntrospectingVerifier,
    IntrospectionUnavailable,
    TokenIntrospector,
)
from .tokens.shared import RedisStore, SharedStoreUnavailable

log = logging.getLogger(__name__)

#: The view option.
OPTION = "require_active_token"
#: Where a live view leaves the failure that refused the request (for the metrics).
LIVE_FAILURE = "okta_pyramid.live_token_failure"


def client_authentication(settings: OktaSettings) -> ClientAuthentication:
    """The client credentials of ``okta.introspection_*``."""
    introspection = settings.introspection
    assert introspection is not None
    if introspection.auth_method == "private_key_jwt":
        return PrivateKeyJWT(
            introspection.client_id, introspection.private_key, key_id=introspection.key_id
        )
    assert introspection.client_secret is not None
    if introspection.auth_method == "client_secret_post":
        return ClientSecretPost(introspection.client_id, introspection.client_secret)
    return ClientSecretBasic(introspection.client_id, introspection.client_secret)


def shared_store(settings: OktaSettings) -> RedisStore | None:
    """The store of ``okta.shared_store``, or ``None`` when each process keeps its own
    state. Nothing is sent to Redis yet: start-up does not wait for it."""
    if settings.shared_store is None:
        return None
    from .tokens.shared import RedisStore

    return RedisStore(settings.shared_store, timeout=settings.shared_store_timeout)


def call_slots(settings: OktaSettings) -> CallSlots:
    """The introspection call slots of the process, sized to ``okta.server_threads``
    and shared by every issuer (they share the server's threads)."""
    return CallSlots(calls_for_threads(settings.server_threads), timeout=settings.http_timeout)


def token_judge(
    settings: OktaSettings,
    verifier: AccessTokenVerifier,
    issuer: IssuerSettings | None = None,
    shared: RedisStore | None = None,
    slots: CallSlots | None = None,
) -> AccessTokenVerifier | IntrospectingVerifier:
    """What judges the tokens of ``verifier``'s issuer (``issuer``, by default the
    first): the local verifier alone, or with introspection when
    ``okta.introspection_client_id`` is set (its answers shared through ``shared``
    when given, its calls in ``slots``)."""
    line = issuer or settings.issuers[0]
    if settings.introspection is None:
        return verifier
    # Its own client: the key set's client keeps its metadata, this one its own
    # (both discover the same document, once each). Introspection asks often, so it
    # keeps its connection: one round trip a call instead of a new TLS handshake.
    client = IssuerClient(line.issuer, http_timeout=settings.http_timeout, keep_alive=True)
    introspector = TokenIntrospector(
        client,
        client_authentication(settings),
        rules=verifier,
        cache_ttl=settings.introspection.cache_ttl,
        shared=shared.answers if shared is not None else None,
        endpoint=settings.introspection.endpoint,
        slots=slots or call_slots(settings),
    )
    return IntrospectingVerifier(
        verifier, introspector, local=not line.org_server, opaque=line.opaque
    )


def tokens_judge(
    settings: OktaSettings,
    verifiers: Mapping[str, AccessTokenVerifier],
    shared: RedisStore | None = None,
) -> TokenJudge:
    """What judges a request's token: :func:`token_judge` of the one issuer, or, with
    several (``okta.issuer`` lines), a :class:`MultiIssuerVerifier` choosing among
    theirs by the token's ``iss``; opaque tokens go to the line marked ``opaque``."""
    slots = call_slots(settings)
    if len(settings.issuers) == 1:
        return token_judge(settings, verifiers[settings.issuer], shared=shared, slots=slots)
    judges = {
        line.issuer: token_judge(settings, verifiers[line.issuer], line, shared, slots)
        for line in settings.issuers
    }
    opaque = next((line.issuer for line in settings.issuers if line.opaque), None)
    return MultiIssuerVerifier(judges, opaque=opaque)


def live_token_failure(request: Request) -> tuple[Exception | None, bool]:
    """``(failure, refused)`` for a request to a view that needs a live token:
    ``(None, False)`` when the token is live; otherwise the failure to answer with
    (``None`` with ``refused`` when the request had no token at all)."""
    verdict = authentication(request)
    identity = verdict.identity
    if identity is None:
        return verdict.failure, True
    judge = request.registry.okta_request_verifier.tokens
    credentials = request.registry.okta_security_policy.reader.credentials(request)
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


def _protected(info: Any) -> bool:
    permission = info.options.get("permission")
    if permission is None:
        permission = info.registry.queryUtility(IDefaultPermission)
    return permission is not None and permission != NO_PERMISSION_REQUIRED


def require_active_token(view: Callable[..., Any], info: Any) -> Callable[..., Any]:
    """The view deriver of the ``require_active_token`` view option."""
    if info.exception_only:
        return view
    settings: OktaSettings = info.registry.okta_settings
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

    def live_view(context: Any, request: Request) -> Response:
        failure, refused = live_token_failure(request)
        if refused:
            if failure is not None:
                request.__dict__[LIVE_FAILURE] = failure
            withhold_claims(request)
            return answer(request, failure, authentication(request).scheme)
        return view(context, request)

    return live_view


require_active_token.options = (OPTION,)  # type: ignore[attr-defined]


def includeme(config: Configurator) -> None:
    """Add the ``require_active_token`` view option. It runs after the permission
    check (Pyramid's ``secured_view``), so introspection is asked only for a token
    that may already use the view."""
    config.add_view_deriver(require_active_token)
