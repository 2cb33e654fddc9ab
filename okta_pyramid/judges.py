"""What judges a token, built from the ``okta.*`` settings: each issuer's verifier
with token introspection (RFC 7662) where it is configured, the judge that chooses
among several issuers, and the shared store. The add-on's ``includeme`` calls
these once; nothing here runs per request.
"""

from __future__ import annotations

from collections.abc import Mapping

from .settings import IssuerSettings, OktaSettings
from .tokens import AccessTokenVerifier, IssuerClient, MultiIssuerVerifier, TokenJudge
from .tokens.capacity import CallSlots, calls_for_threads
from .tokens.client_auth import (
    ClientAuthentication,
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJWT,
)
from .tokens.introspection import IntrospectingVerifier, TokenIntrospector
from .tokens.shared import RedisStore


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
