"""Which DPoP proofs were already used (RFC 9449 §11.1).

A proof is accepted once: the resource server remembers each proof's ``jti``
(scoped by the proof's key) for as long as the proof's ``iat`` would still be
accepted, and the leeway more (another process's clock may be that far behind),
and refuses it when it comes again.

:class:`ReplayStore` is the whole interface: one atomic "add if absent". The
in-process :class:`InMemoryReplayStore` is the default; an API served by several
processes or hosts needs a store they share (a Redis ``SET key 1 NX PXAT ...``
is the same operation), or a replayed proof can be accepted once per process.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .exceptions import VerificationError

log = logging.getLogger(__name__)

#: About 200 bytes each: 200 000 entries hold some 40 MB at most, and cover about
#: 550 proofs a second for a 360-second window (300 s max age + 60 s leeway).
DEFAULT_MAX_ENTRIES = 200_000
#: The smallest store that makes sense (``okta.dpop_replay_store_size``).
MIN_ENTRIES = 100


class ReplayStoreFull(VerificationError):
    """The replay store cannot remember one more proof, so the proof is not accepted.

    This is the server's limit, not the client's fault: answer it like an overload
    (HTTP 503 with ``Retry-After``). ``retry_after`` is when, in whole seconds, the
    oldest remembered proof is forgotten.
    """

    reason = "dpop_replay_store_full"

    def __init__(self, description: str, retry_after: int = 1) -> None:
        super().__init__(description)
        self.retry_after = max(1, int(retry_after))


class ReplayQuotaExceeded(ReplayStoreFull):
    """The proof's key holds as many remembered proofs as one key may: this key's
    client sends proofs faster than the store is sized for (HTTP 429 with
    ``Retry-After``: when that key's oldest proof is forgotten). Other keys are
    not affected."""

    reason = "dpop_key_quota"


@runtime_checkable
class ReplayStore(Protocol):
    """Remembers keys until they expire. Implementations must be safe to share
    between threads (and, for a shared store, between processes)."""

    def add_if_absent(self, key: bytes, expires_at: float, owner: str | None = None) -> bool:
        """Remember ``key`` until ``expires_at`` (a :func:`time.time` value) and return
        True, or return False if it is already remembered and not expired.

        The test and the insertion are one atomic step: of two concurrent calls with
        one key, exactly one returns True. ``owner`` names who the key belongs to (the
        proof's key thumbprint), for a store that bounds what one owner may hold. May
        raise :class:`ReplayStoreFull` (or :class:`ReplayQuotaExceeded`); it must never
        forget an unexpired key to make room.
        """
        ...


class InMemoryReplayStore:
    """A bounded, thread-safe :class:`ReplayStore` for one process.

    Expired keys are dropped as new ones arrive (a heap ordered by expiry). When
    ``max_entries`` unexpired keys are held, a new key is refused with
    :class:`ReplayStoreFull` rather than making room: forgetting an unexpired key
    would let that proof be replayed, while refusing fails closed and lasts only
    until the oldest key expires.

    One owner (a DPoP key) may hold at most ``owner_quota`` keys: beyond that, its
    new keys are refused with :class:`ReplayQuotaExceeded` until its oldest expire,
    so one client sending proofs as fast as it can fills its own share, not the
    store that every other client needs.
    """

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        owner_quota: int | None = None,
        clock: Callable[[], float] = time.time,
        name: str = "DPoP replay store",
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if owner_quota is not None and owner_quota < 1:
            raise ValueError("owner_quota must be at least 1")
        self.max_entries = max_entries
        #: The most keys one owner may hold (``None``: no bound but the store's).
        self.owner_quota = owner_quota
        self.clock = clock
        #: What the log line calls it when it is full.
        self.name = name
        self._expiry: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes, str | None]] = []
        #: Each owner's keys' expiry times, as a heap (the soonest first).
        self._owned: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._warned_full = False
        self._warned_owners: set[str] = set()

    def __len__(self) -> int:
        with self._lock:
            self._purge(self.clock())
            return len(self._expiry)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is remembered and not expired."""
        with self._lock:
            self._purge(self.clock())
            return key in self._expiry

    def held_by(self, owner: str) -> int:
        """How many unexpired keys ``owner`` holds."""
        with self._lock:
            self._purge(self.clock())
            return len(self._owned.get(owner, ()))

    def add_if_absent(self, key: bytes, expires_at: float, owner: str | None = None) -> bool:
        expiry = self._expiry
        with self._lock:
            now = self.clock()
            heap = self._heap
            if heap and heap[0][0] < now:
                self._purge(now)
            if key in expiry:
                return False
            owned = None
            if owner is not None and self.owner_quota is not None:
                owned = self._owned.get(owner)
                if owned is not None and len(owned) >= self.owner_quota:
                    self._over_quota(owner)
                    raise ReplayQuotaExceeded(
                        "this DPoP key has sent more recent proofs than one key may; "
                        "try again later",
                        retry_after=math.ceil(owned[0] - now),
                    )
            if len(expiry) >= self.max_entries:
                wait = math.ceil(self._heap[0][0] - now)
                if not self._warned_full:
                    # Once per episode: a flood must not become a flood of log lines.
                    log.warning(
                        "%s full (%d entries); refusing new ones for up to %ds",
                        self.name,
                        self.max_entries,
                        wait,
                    )
                    self._warned_full = True
                raise ReplayStoreFull(
                    "too many recent DPoP proofs to remember another; try again later",
                    retry_after=wait,
                )
            self._warned_full = False
            expiry[key] = expires_at
            if owner is not None and self.owner_quota is not None:
                heapq.heappush(heap, (expires_at, key, owner))
                if owned is None:
                    owned = self._owned[owner] = []
                heapq.heappush(owned, expires_at)
            else:
                heapq.heappush(heap, (expires_at, key, None))
            return True

    def _over_quota(self, owner: str) -> None:
        # Once per owner and episode; the owner is a key thumbprint, not a secret,
        # but a flood must not become a flood of log lines.
        if owner not in self._warned_owners:
            if len(self._warned_owners) < 1024:
                self._warned_owners.add(owner)
            log.warning(
                "%s: DPoP key %s holds %d recent proofs, its quota; refusing its "
                "new ones until the oldest expire",
                self.name,
                owner[:43],
                self.owner_quota,
            )

    def _purge(self, now: float) -> None:
        # A key is remembered while now <= expires_at (the last moment the proof's
        # iat is still accepted, plus the leeway).
        heap, expiry, owners = self._heap, self._expiry, self._owned
        while heap and heap[0][0] < now:
            _, key, owner = heapq.heappop(heap)
            del expiry[key]
            if owner is not None:
                # Expiry order is global, so this owner's soonest is the one going.
                owned = owners[owner]
                heapq.heappop(owned)
                if not owned:
                    del owners[owner]
                    self._warned_owners.discard(owner)
