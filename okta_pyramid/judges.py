"""What judges a token, built from the ``okta.*`` settings: each issuer's verifier,
with token introspection (RFC 7662) where it is configured, the judge that chooses
among several issuers, the DPoP proof checker (RFC 9449) and the shared store.
:meth:`.parts.OktaParts.from_settings` calls these once; nothing here runs per
request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .settings import IssuerSettings, OktaSettings
from .tokens import (
    AccessTokenVerifier,
    DPoPNonces,
    DPoPVerifier,
    InMemoryReplayStore,
    IssuerClient,
    MultiIssuerVerifier,
    TokenJudge,
)
from .tokens.capacity import CallSlots, calls_for_threads, key_waiters_for_threads
from .tokens.client_auth import (
    ClientAuthentication,
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJWT,
)
from .tokens.introspection import IntrospectingVerifier, TokenIntrospector
from .tokens.shared import RedisStore

log = logging.getLogger(__name__)


def verifiers(settings: OktaSettings) -> dict[str, AccessTokenVerifier]:
    """One verifier per trusted issuer (``okta.issuer``'s lines), by issuer URL: each
    with its own metadata, keys, cooldown and verified-token cache."""
    return {
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


def dpop_verifier(settings: OktaSettings, shared: RedisStore | None) -> DPoPVerifier | None:
    """The DPoP proof checker (``None`` when ``okta.dpop = disabled``), with its
    replay store: the shared one, or one in this process with a quota per key."""
    if settings.dpop == "disabled":
        return None
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
    return DPoPVerifier(
        algorithms=settings.dpop_algorithms,
        max_age=settings.dpop_max_age,
        leeway=settings.leeway,
        nonces=nonces,
        replay_store=replays,
    )


def client_authentication(settings: OktaSettings) -> ClientAuthentication:
    """The client credentials of ``okta.introspection_*``."""
    introspection = settings.introspection
    if introspection is None:
        raise ValueError("okta.introspection_client_id: not set, so there is no client")
    if introspection.auth_method == "private_key_jwt":
        return PrivateKeyJWT(
            introspection.client_id, introspection.private_key, key_id=introspection.key_id
        )
    if introspection.client_secret is None:
        raise ValueError("okta.introspection_client_secret: not set")
    if introspection.auth_method == "client_secret_post":
        return ClientSecretPost(introspection.client_id, introspection.client_secret)
    return ClientSecretBasic(introspection.client_id, introspection.client_secret)


def shared_store(settings: OktaSettings) -> RedisStore | None:
    """The store of ``okta.shared_store``, or ``None`` when each process keeps its own
    state. Nothing is sent to Redis yet: start-up does not wait for it."""
    if settings.shared_store is None:
        return None
    from .tokens.shared import RedisStore

    return RedisStore(
        settings.shared_store,
        timeout=settings.shared_store_timeout,
        min_replicas=settings.shared_store_min_replicas,
    )


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
