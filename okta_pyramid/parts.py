"""The add-on's parts, built once by ``includeme``: one typed object on the registry.

``registry.okta`` is an :class:`OktaParts`; read it with :func:`okta_parts`. The
parts that includes add later (the security policy, the key refreshers, the
metrics) start empty and are filled by the include that makes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyramid.registry import Registry

if TYPE_CHECKING:
    from .metrics import Metrics
    from .security import OktaSecurityPolicy
    from .settings import OktaSettings
    from .tokens import AccessTokenVerifier, DPoPVerifier, RequestVerifier, TokenJudge
    from .tokens.refresher import KeyRefresher
    from .tokens.shared import RedisStore


@dataclass(eq=False)
class OktaParts:
    """What ``config.include("okta_pyramid")`` built from the ``okta.*`` settings."""

    settings: OktaSettings
    #: One verifier per trusted issuer (``okta.issuer``'s lines), by issuer URL: each
    #: with its own metadata, keys, cooldown and verified-token cache.
    verifiers: Mapping[str, AccessTokenVerifier]
    #: The one issuer's verifier; with several issuers, the judge that chooses among them.
    verifier: TokenJudge
    #: What judges a request's token (with introspection where configured).
    judge: TokenJudge
    #: The DPoP proof checker (``None`` when ``okta.dpop = disabled``).
    dpop: DPoPVerifier | None
    #: The request-level check: the ``Authorization`` scheme, token binding, the proof.
    request_verifier: RequestVerifier
    #: The state the processes share (``okta.shared_store``); ``None``: in-process.
    shared_store: RedisStore | None = None
    #: Added by ``okta_pyramid.security``.
    security_policy: OktaSecurityPolicy | None = None
    #: One background key refresher per issuer, by issuer URL (``okta_pyramid.key_refresh``;
    #: empty when ``okta.jwks_refresh_interval = 0``).
    key_refreshers: dict[str, KeyRefresher] = field(default_factory=dict)
    #: Added by ``okta_pyramid.metrics`` when ``okta.metrics`` is on.
    metrics: Metrics | None = None

    @classmethod
    def from_settings(cls, settings: OktaSettings) -> OktaParts:
        """The parts the settings ask for (:mod:`okta_pyramid.judges` builds them)."""
        from . import judges
        from .tokens import RequestVerifier

        by_issuer = judges.verifiers(settings)
        shared = judges.shared_store(settings)
        judge = judges.tokens_judge(settings, by_issuer, shared)
        dpop = judges.dpop_verifier(settings, shared)
        return cls(
            settings=settings,
            verifiers=by_issuer,
            verifier=next(iter(by_issuer.values())) if len(by_issuer) == 1 else judge,
            judge=judge,
            dpop=dpop,
            request_verifier=RequestVerifier(judge, dpop, mode=settings.dpop),
            shared_store=shared,
        )

    @property
    def key_refresher(self) -> KeyRefresher | None:
        """The first issuer's key refresher, if it runs."""
        return next(iter(self.key_refreshers.values()), None)

    @property
    def policy(self) -> OktaSecurityPolicy:
        """The installed security policy (``okta_pyramid.security`` is always included)."""
        if self.security_policy is None:
            raise RuntimeError("okta_pyramid.security has not been included")
        return self.security_policy


def okta_parts(registry: Registry) -> OktaParts:
    """The add-on's parts in ``registry``; ``LookupError`` if the add-on is not included."""
    parts = getattr(registry, "okta", None)
    if not isinstance(parts, OktaParts):
        raise LookupError('okta_pyramid is not included: config.include("okta_pyramid")')
    return parts
