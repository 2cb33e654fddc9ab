"""Several authorization servers in one API: each token is judged by its own issuer's
verifier, chosen by the exact text of its ``iss`` claim.

This module knows nothing of Pyramid::

    verifier = MultiIssuerVerifier([
        AccessTokenVerifier("https://acme.okta.com/oauth2/default", "api://orders"),
        AccessTokenVerifier("https://acme.okta.com/oauth2/aus9partners", "api://partners"),
    ])
    claims = verifier.verify(token)   # or raises a VerificationError

The rules, and why:

- ``iss`` is read from the unverified token only to choose a verifier, by exact
  string comparison (RFC 9068 §4, RFC 8414 §3.3). An ``iss`` that names no configured
  issuer is refused at once (:class:`~.exceptions.InvalidIssuer`, HTTP 401): no URL is
  ever built from it, nothing is fetched because a token said so (RFC 8725 §3.10).
- The chosen verifier then checks everything, ``iss`` included, with its own
  metadata, key set, refetch cooldown, audiences, clients and required claims; so a
  token of one issuer meant for another issuer's audience is refused.
- Each verifier keeps its own verified-token cache: a flood of one issuer's tokens,
  or a key rotation there, never evicts another issuer's.
- A token seen before is found by its digest first: a small route from digest to
  verifier sends it to its cache without decoding anything, so a cached token costs
  what it costs with one issuer.
- A token that is not a JWT (an opaque token) carries no ``iss``. Sending it to
  every issuer's introspection endpoint would hand it to servers it was never meant
  for, so it goes to at most one, ``opaque``, and is refused when none is named.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from . import _jws
from .cache import token_digest
from .exceptions import InvalidIssuer, InvalidToken, MalformedToken
from .introspection import IntrospectingVerifier
from .verifier import AccessTokenVerifier, VerifiedToken, check_token_text

__all__ = ["MultiIssuerVerifier", "unverified_issuer"]

log = logging.getLogger(__name__)

#: What judges one issuer's tokens: the local verifier, or it with introspection.
Judge: TypeAlias = AccessTokenVerifier | IntrospectingVerifier
#: Digests remembered in the route when no verifier has a cache to size it by.
_MIN_ROUTES = 1024


def unverified_issuer(token: str) -> Any:
    """The ``iss`` claim of a compact JWS, read without verifying anything: only to
    choose who verifies it. Raises :class:`~.exceptions.MalformedToken`."""
    return _jws.unverified_claims(token).get("iss")


def _local(judge: Judge) -> AccessTokenVerifier:
    return judge.verifier if isinstance(judge, IntrospectingVerifier) else judge


class MultiIssuerVerifier:
    """Judges access tokens from several issuers, each with its own judge.

    ``judges`` are :class:`~.verifier.AccessTokenVerifier` or
    :class:`~.introspection.IntrospectingVerifier` objects for distinct issuers (or a
    mapping of issuer to judge). ``opaque`` names the one issuer whose introspection
    endpoint judges tokens that are not JWTs; without it they are refused.
    """

    def __init__(
        self, judges: Mapping[str, Judge] | Iterable[Judge], *, opaque: str | None = None
    ) -> None:
        if isinstance(judges, Mapping):
            pairs = list(judges.items())
        else:
            pairs = [(_local(judge).issuer, judge) for judge in judges]
        self.judges: dict[str, Judge] = {}
        for issuer, judge in pairs:
            if _local(judge).issuer != issuer:
                raise ValueError(
                    f"the judge for {issuer!r} verifies tokens of {_local(judge).issuer!r}"
                )
            if issuer in self.judges:
                raise ValueError(f"{issuer!r} is given twice")
            self.judges[issuer] = judge
        if not self.judges:
            raise ValueError("at least one issuer is required")
        #: Each issuer's local verifier (its keys, its cache).
        self.verifiers: dict[str, AccessTokenVerifier] = {
            issuer: _local(judge) for issuer, judge in self.judges.items()
        }
        if opaque is not None and not isinstance(self.judges.get(opaque), IntrospectingVerifier):
            raise ValueError(
                f"opaque tokens need an issuer that introspects; {opaque!r} is not one of them"
            )
        self.opaque = opaque
        leeways = {verifier.leeway for verifier in self.verifiers.values()}
        if len(leeways) != 1:
            raise ValueError("every issuer's verifier must have the same leeway")
        self.leeway = leeways.pop()
        # Digest -> the verifier whose cache may hold the token. Only a hint: the
        # verifier's cache decides, so a stale route costs a decode, never a wrong
        # verdict. Only verified tokens are routed, so it grows only with them; it is
        # emptied when full (as the verifier's header memo is).
        self._routes: dict[bytes, AccessTokenVerifier] = {}
        self._max_routes = max(
            _MIN_ROUTES,
            2
            * sum(
                verifier.token_cache.max_entries
                for verifier in self.verifiers.values()
                if verifier.token_cache is not None
            ),
        )

    def __repr__(self) -> str:
        return f"<MultiIssuerVerifier issuers={list(self.judges)!r}>"

    def verify(self, token: str) -> dict[str, Any]:
        """Return the token's claims, or raise a :class:`~.exceptions.VerificationError`."""
        return self.verify_token(token).claims()

    def verify_token(self, token: str) -> VerifiedToken:
        """The token, judged by its issuer's judge; or a VerificationError."""
        check_token_text(token)
        digest = token_digest(token)
        verifier = self._routes.get(digest)
        if verifier is not None:
            cache = verifier.token_cache
            # AccessTokenVerifier.cached_token, inlined: this is every request's path.
            # (The ignore: only verifiers with a cache are routed.)
            found: VerifiedToken | None = cache.get(  # type: ignore[union-attr]
                digest, verifier.clock(), verifier.keys.generation
            )
            if found is not None:
                return found
        judge = self.judge_for(token)
        verifier = _local(judge)
        if not isinstance(judge, IntrospectingVerifier):
            # The route may have been emptied while the token stayed in the cache.
            verified = verifier.cached_token(digest) or verifier.verify_new(token, digest)
            cached = verifier.token_cache is not None
        else:
            verified = judge.verify_token(token)
            # An introspected token is in the introspector's cache, not the verifier's.
            cached = verifier.token_cache is not None and judge.judged_locally(token)
        if cached:
            routes = self._routes
            if len(routes) >= self._max_routes:
                routes.clear()
            routes[digest] = verifier
        return verified

    def judge_for(self, token: str) -> Judge:
        """The judge of ``token``'s issuer, chosen without any network request;
        raises :class:`~.exceptions.InvalidToken` when no configured issuer fits."""
        if token.count(".") != 2:
            # Not a compact JWS: there is no iss to read.
            if self.opaque is None:
                raise MalformedToken(
                    "the token is not a JWT, and this API accepts tokens from several "
                    "authorization servers: it cannot tell which one issued it"
                )
            return self.judges[self.opaque]
        iss = unverified_issuer(token)
        judge = self.judges.get(iss) if isinstance(iss, str) else None
        if judge is None:
            raise InvalidIssuer(
                "the token was issued by an authorization server this API does not trust"
            )
        return judge

    def confirm(self, token: str, verified: VerifiedToken) -> VerifiedToken:
        """``verified``, once the issuer that vouched for it has said ``token`` is
        active (see :meth:`.introspection.IntrospectingVerifier.confirm`)."""
        judge = self.judges.get(verified.issuer) if verified.issuer is not None else None
        if not isinstance(judge, IntrospectingVerifier):
            # Only a token this verifier judged reaches here, so this is a caller's bug.
            raise InvalidToken("no authorization server of this API can confirm the token")
        return judge.confirm(token, verified)
