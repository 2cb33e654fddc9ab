"""okta_pyramid: protect a Pyramid API with OAuth 2.0 access tokens from Okta.

``config.include("okta_pyramid")`` is the add-on; the application that
``pserve development.ini`` serves is :mod:`okta_pyramid.app`, and the
Pyramid-free verification core is :mod:`okta_pyramid.tokens`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyramid.config import Configurator

__all__ = ["__version__", "includeme"]

#: The one place the version is written (setup.cfg reads it from here).
__version__ = "0.9.0"

log = logging.getLogger(__name__)


def includeme(config: Configurator) -> None:
    """Protect the including application with Okta access tokens.

    Reads the ``okta.*`` settings (docs/settings.md) and refuses to start if one is
    wrong; installs the security policy, the root ACL and the error answers, and
    what the settings ask for (CORS, the console, the production checks). With
    ``okta.protect_all`` (the default) every view needs a valid token unless it
    says ``permission=NO_PERMISSION_REQUIRED``; a view that needs the issuer to
    confirm the token is live says ``require_active_token=True`` (token
    introspection, docs/introspection.md). Health checks are opt-in:
    ``config.include("okta_pyramid.health")``.
    """
    # Imported here, not above: okta_pyramid.tokens must import without Pyramid.
    from .judges import shared_store, tokens_judge
    from .parts import OktaParts
    from .permissions import AUTHENTICATED, Root
    from .settings import parse_settings
    from .tokens import (
        AccessTokenVerifier,
        DPoPNonces,
        DPoPVerifier,
        InMemoryReplayStore,
        RequestVerifier,
    )
    from .tokens.capacity import key_waiters_for_threads

    settings = parse_settings(config.get_settings())
    verifiers = {
        line.issuer: AccessTokenVerifier(
            line.issuer,
            line.audiences,
            client_ids=line.client_ids,
            leeway=settings.leeway,
            http_timeout=settings.http_timeout,
            jwks_refetch_cooldown=settings.jwks_refetch_cooldown,
            required_claims=line.required_claims,
            token_cache_size=settings.token_cache_size,
            key_waiters=key_waiters_for_threads(settings.server_threads),
        )
        for line in settings.issuers
    }
    shared = shared_store(settings)
    judge = tokens_judge(settings, verifiers, shared)
    dpop = None
    if settings.dpop != "disabled":
        nonces = None
        if settings.dpop_nonce:
            if settings.dpop_nonce_secret is None and settings.environment == "production":
                log.warning(
                    "okta.dpop_nonce_secret: is not set, so each process makes its own "
                    "secret and refuses the DPoP nonces of the others (one extra "
                    "use_dpop_nonce round trip when a client changes process); set the "
                    "same secret on every process"
                )
            nonces = DPoPNonces(settings.dpop_nonce_secret)
        replays = (
            shared.replays
            if shared is not None
            else InMemoryReplayStore(
                settings.dpop_replay_store_size, owner_quota=settings.dpop_replay_key_quota
            )
        )
        dpop = DPoPVerifier(
            algorithms=settings.dpop_algorithms,
            max_age=settings.dpop_max_age,
            leeway=settings.leeway,
            nonces=nonces,
            replay_store=replays,
        )
    config.registry.okta = OktaParts(
        settings=settings,
        verifiers=verifiers,
        verifier=next(iter(verifiers.values())) if len(verifiers) == 1 else judge,
        judge=judge,
        dpop=dpop,
        request_verifier=RequestVerifier(judge, dpop, mode=settings.dpop),
        shared_store=shared,
    )
    config.include(".security")
    config.include(".active_token")
    _default_root_factory(config, Root)
    if settings.protect_all:
        config.set_default_permission(AUTHENTICATED)
    config.include(".errors")
    if settings.cors_allowed_origins:
        config.include(".cors")
    if settings.console:
        config.include(".console")
    if settings.environment == "production":
        config.include(".production")
    config.include(".key_refresh")
    if settings.metrics:
        config.include(".metrics")


#: Actions run in ``order``; the application's own ``set_root_factory`` runs at the
#: default order (0), so this one runs after it and sees whether it did.
_AFTER_THE_APPLICATIONS_OWN = 1


def _default_root_factory(config: Configurator, root: type) -> None:
    """Make ``root`` the root factory unless the application sets one of its own
    (``Configurator(root_factory=...)`` or ``config.set_root_factory`` anywhere):
    its resources then carry the ACLs (docs/authorization.md)."""
    from pyramid.interfaces import IDefaultRootFactory, IRootFactory

    registry = config.registry

    def register() -> None:
        if registry.queryUtility(IRootFactory) is None:
            registry.registerUtility(root, IRootFactory)
            registry.registerUtility(root, IDefaultRootFactory)

    config.action(
        ("okta_pyramid", "default root factory"), register, order=_AFTER_THE_APPLICATIONS_OWN
    )
