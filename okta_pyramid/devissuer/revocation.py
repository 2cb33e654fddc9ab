"""The tokens the development issuer has revoked (RFC 7009), until each expires.

The issuer's tokens are JWTs it does not store, so revoking one means remembering
its ``jti`` and answering ``active: false`` for it at the introspection endpoint
(RFC 7662). A revoked token needs remembering only while it could still be active:
once its ``exp`` has passed, it is inactive anyway and its entry is dropped. The
list is held in this process's memory, so a restart forgets it (as it forgets
DPoP nonces); it is capped, so a flood of revocations cannot exhaust memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ..tokens.replay import InMemoryReplayStore, ReplayStoreFull

#: About 250 bytes each: 10 000 revoked tokens hold some 2.5 MB. A developer's
#: machine revokes a handful; the cap only stops a runaway script.
DEFAULT_MAX_REVOKED = 10_000


class RevocationListFull(Exception):
    """No room to remember one more revoked token.

    Answered 503 with ``Retry-After`` (RFC 7009 §2.2.1: the client must then
    assume the token is still valid and may retry). Making room by forgetting an
    unexpired entry would silently bring a revoked token back to life.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many revoked tokens are remembered to revoke another; try again later"
        )
        self.description = str(self)
        self.retry_after = max(1, retry_after)


class RevokedTokens:
    """A bounded, thread-safe set of revoked tokens' ``jti``, each kept until its
    token's ``exp``: the bounded, expiring set of the DPoP replay check, which
    refuses rather than forgets when it is full."""

    def __init__(
        self, max_entries: int = DEFAULT_MAX_REVOKED, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.clock = clock
        self._jtis = InMemoryReplayStore(
            max_entries, clock=clock, name="development issuer: revocation list"
        )

    def __len__(self) -> int:
        return len(self._jtis)

    def __contains__(self, jti: object) -> bool:
        return isinstance(jti, str) and jti.encode("utf-8") in self._jtis

    def revoke(self, jti: str, expires_at: float) -> bool:
        """Remember ``jti`` until ``expires_at``; False if it already was (or has
        expired, so there is nothing to revoke). Raises :class:`RevocationListFull`."""
        if expires_at <= self.clock():
            return False
        # A token is active while now < exp (no leeway at the issuer); the store keeps
        # a key while now <= its time, so it is given the last moment before exp.
        try:
            return self._jtis.add_if_absent(
                jti.encode("utf-8"), math.nextafter(expires_at, -math.inf)
            )
        except ReplayStoreFull as exc:
            raise RevocationListFull(exc.retry_after) from None
