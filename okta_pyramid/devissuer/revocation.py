"""The tokens the development issuer has revoked (RFC 7009), until each expires.

The issuer's tokens are JWTs it does not store, so revoking one means remembering
its ``jti`` and answering ``active: false`` for it at the introspection endpoint
(RFC 7662). A revoked token needs remembering only while it could still be active:
once its ``exp`` has passed, it is inactive anyway and its entry is dropped. The
list is held in this process's memory, so a restart forgets it (as it forgets
DPoP nonces); it is capped, so a flood of revocations cannot exhaust memory.
"""
from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

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
        super().__init__("too many revoked tokens are remembered to revoke another; "
                         "try again later")
        self.description = str(self)
        self.retry_after = max(1, retry_after)


class RevokedTokens:
    """A bounded, thread-safe set of revoked tokens' ``jti``, each kept until its
    token's ``exp``."""

    def __init__(self, max_entries: int = DEFAULT_MAX_REVOKED, *,
                 clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.clock = clock
        self._expiry: dict[str, float] = {}
        # (exp, jti), soonest first: expired entries are dropped from the front.
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._warned_full = False

    def __len__(self) -> int:
        with self._lock:
            self._prune(self.clock())
            return len(self._expiry)

    def __contains__(self, jti: object) -> bool:
        with self._lock:
            self._prune(self.clock())
            return jti in self._expiry

    def revoke(self, jti: str, expires_at: float) -> bool:
        """Remember ``jti`` until ``expires_at``; False if it already was (or has
        expired, so there is nothing to revoke). Raises :class:`RevocationListFull`."""
        with self._lock:
            now = self.clock()
            self._prune(now)
            if jti in self._expiry or expires_at <= now:
                return False
            if len(self._expiry) >= self.max_entries:
                wait = math.ceil(self._heap[0][0] - now)
                if not self._warned_full:
                    # Once per episode: a flood must not become a flood of log lines.
                    self._warned_full = True
                    log.warning("development issuer: %d revoked tokens remembered; refusing "
                                "revocations for up to %ds", self.max_entries, wait)
                raise RevocationListFull(retry_after=wait)
            self._warned_full = False
            self._expiry[jti] = expires_at
            heapq.heappush(self._heap, (expires_at, jti))
            return True

    def _prune(self, now: float) -> None:
        # A token is active while now < exp (no leeway at the issuer), so its entry
        # goes at exp <= now, exactly when introspection calls it expired.
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, jti = heapq.heappop(heap)
            del self._expiry[jti]
