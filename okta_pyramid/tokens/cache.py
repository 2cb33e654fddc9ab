"""A bounded in-memory cache of access tokens that passed full verification.

Keyed by a SHA-256 digest of the whole token; an entry is served only inside the
token's time window and only while the key set it was verified under is current;
bounded by entries and by bytes. The verifier decides what to store and when;
the rules and their reasons are in docs/validation.md.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

#: Upper bound on the payload bytes held, whatever the entry count.
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


class _Entry(NamedTuple):
    value: Any
    #: what the value counts against ``max_bytes``
    size: int
    #: the token is acceptable while ``not_before <= now < not_after``
    not_before: float
    not_after: float


def token_digest(token: str) -> bytes:
    """The cache key of ``token``: a SHA-256 digest of all of it."""
    return hashlib.sha256(token.encode("ascii")).digest()


class VerifiedTokenCache:
    """Least-recently-used map of token digest to verified token; thread-safe."""

    def __init__(self, max_entries: int, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._bytes = 0
        self._generation: int | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes currently held (the sum of the sizes given to :meth:`put`)."""
        return self._bytes

    def get(self, digest: bytes, now: float, generation: int) -> Any:
        """The stored value if the token is still acceptable at ``now`` under
        key-set ``generation``; ``None`` otherwise (then verify it in full)."""
        with self._lock:
            if generation != self._generation:
                if self._generation is not None and generation < self._generation:
                    self.misses += 1
                    return None  # the caller read the generation before a change
                self._reset(generation)
            entry = self._entries.get(digest)
            if entry is None:
                self.misses += 1
                return None
            if now >= entry.not_after:
                # Expired: it will never be served again, so it goes now rather
                # than when it reaches the end of the LRU order.
                self._drop(digest, entry)
                self.misses += 1
                return None
            if now < entry.not_before:
                # Only possible if the clock went back; the full check decides.
                self.misses += 1
                return None
            self._entries.move_to_end(digest)
            self.hits += 1
            return entry.value

    def put(
        self,
        digest: bytes,
        value: Any,
        *,
        size: int,
        not_before: float,
        not_after: float,
        generation: int,
        now: float,
    ) -> None:
        """Remember ``value`` for a token that has just passed every check at ``now``;
        it counts ``size`` bytes against the bound."""
        if size > self.max_bytes:
            return
        with self._lock:
            if generation != self._generation:
                if self._generation is not None and generation < self._generation:
                    return  # verified under keys that have since changed
                self._reset(generation)
            old = self._entries.pop(digest, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[digest] = _Entry(value, size, not_before, not_after)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size
            # Expired entries that nobody asks for drift to the least recently used
            # end; drop them there (at most one per entry ever stored, so O(1) overall).
            while self._entries:
                oldest = next(iter(self._entries.items()))
                if oldest[1].not_after > now:
                    break
                self._drop(*oldest)

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _reset(self, generation: int) -> None:
        if self._entries:
            log.info("issuer key set changed: forgetting %d verified token(s)", len(self._entries))
        self._entries.clear()
        self._bytes = 0
        self._generation = generation

    def _drop(self, digest: bytes, entry: _Entry) -> None:
        del self._entries[digest]
        self._bytes -= entry.size
