"""How many request threads may wait on an authorization server, and for how long.

A request thread that waits for the issuer (a key fetch, an introspection call)
serves nobody else meanwhile. An issuer that stalls must not hold every thread of
the server, and an issuer that is merely busy must not turn honest traffic away.
The two are told apart by *progress*, not by how many requests are waiting:

- an endpoint makes progress while it answers: a request waits for a call or a
  fetch under way, or for a free call slot, as long as some answer arrived within
  the endpoint's *patience* (or the calls outstanding began less than that ago),
  and never past its own deadline;
- the patience is a quarter of the HTTP timeout, or three times the slowest of the
  last answers when that is longer (an endpoint that is slow but answering is not
  stalled), and never more than the timeout;
- an endpoint that has not answered for its patience while calls to it are
  outstanding is *stalled*: further requests are answered at once (HTTP 503)
  instead of joining the queue, and those waiting are released.

:class:`CallSlots` bounds the introspection calls in flight in a process (every
issuer's together, since they share the server's threads), keeping one thread of
the server free of them, and gives tokens that are probably genuine (a JWT whose
signature verified, a token the issuer called active before) capacity that others
cannot take. This module knows nothing of Pyramid.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

__all__ = [
    "DEFAULT_SERVER_THREADS",
    "CallSlots",
    "Progress",
    "calls_for_threads",
    "key_waiters_for_threads",
]

#: The request threads a server is assumed to have when it is not told: waitress's
#: default (``okta.server_threads``).
DEFAULT_SERVER_THREADS = 4
#: An endpoint that has not answered for this share of the HTTP timeout, while calls
#: to it are outstanding, is stalled (unless its recent answers were slower).
STALL_FRACTION = 0.25
#: ... or for this many times its slowest recent answer, when that is longer.
STALL_FACTOR = 3.0
#: How many recent answers the patience is measured on.
RECENT_ANSWERS = 32


def calls_for_threads(threads: int) -> int:
    """The introspection calls a process with ``threads`` request threads may have in
    flight: all but one thread, so that a stalled endpoint never holds them all."""
    return max(1, threads - 1)


def key_waiters_for_threads(threads: int) -> int:
    """The requests that may wait for a key fetch however long it runs, beside the one
    fetching: with it, all but one thread (the others wait its normal time only)."""
    return max(0, threads - 2)


class Progress:
    """When an endpoint last answered, and whether it now counts as stalled.

    Callers report each call's start (:meth:`started`) and end (:meth:`finished`,
    with the seconds it took when an answer came, ``None`` when none did).
    """

    def __init__(self, timeout: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        self._recent: collections.deque[float] = collections.deque(maxlen=RECENT_ANSWERS)
        self._outstanding = 0
        #: The last answer, or the start of the calls outstanding if later: nothing
        #: can be said of an endpoint before its calls have had time to answer.
        self._since = 0.0
        self._lock = threading.Lock()

    @property
    def patience(self) -> float:
        """Seconds without an answer after which the endpoint counts as stalled."""
        slowest = max(self._recent, default=0.0)
        return min(self.timeout, max(STALL_FRACTION * self.timeout, STALL_FACTOR * slowest))

    def started(self) -> None:
        with self._lock:
            if self._outstanding == 0:
                self._since = self.clock()
            self._outstanding += 1

    def finished(self, answered_after: float | None) -> None:
        """A call ended; ``answered_after``: the seconds its answer took, or ``None``
        when it ended without one (a timeout, a broken connection)."""
        with self._lock:
            self._outstanding -= 1
            if answered_after is not None:
                self._since = self.clock()
                self._recent.append(answered_after)

    def stalled_at(self) -> float:
        """The time (of :attr:`clock`) from which, with no answer meanwhile, the
        endpoint counts as stalled; ``inf`` while nothing is outstanding."""
        with self._lock:
            if self._outstanding == 0:
                return float("inf")
            return self._since + self.patience

    def stalled(self) -> bool:
        return self.clock() >= self.stalled_at()


class CallSlots:
    """The introspection calls a process may have in flight at once, in two classes.

    ``calls`` bounds them all (size it to the server's threads with
    :func:`calls_for_threads`). *Trusted* calls (the token is a JWT whose signature
    verified, or one the issuer called active before) may take any slot;
    *untrusted* ones (a token nobody has vouched for yet: an opaque token, an org
    server's token seen for the first time) at most ``untrusted`` of them, so a
    flood of made-up tokens cannot take the slots real callers need.

    A request that finds no slot waits while calls keep ending (any slot that frees
    may be its), and gives up when none has ended for the patience of the
    endpoints (:class:`Progress`) or at its deadline.
    """

    def __init__(
        self,
        calls: int,
        *,
        untrusted: int | None = None,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if calls < 1:
            raise ValueError("calls must be at least 1")
        self.calls = calls
        #: At most this many slots go to untrusted tokens (half, by default: the
        #: rest is kept for the trusted ones).
        self.untrusted = max(1, min(calls, calls // 2 if untrusted is None else untrusted))
        self.clock = clock
        #: The calls of every endpoint together: a slot frees when any of them ends.
        self.progress = Progress(timeout, clock=clock)
        self._busy = 0
        self._busy_untrusted = 0
        self._free = threading.Condition()

    @property
    def in_flight(self) -> int:
        return self._busy

    def _available(self, trusted: bool) -> bool:
        if self._busy >= self.calls:
            return False
        return trusted or self._busy_untrusted < self.untrusted

    def acquire(self, trusted: bool, deadline: float, endpoint: Progress | None = None) -> bool:
        """Take a slot, waiting as long as calls keep ending (and ``endpoint``, the
        endpoint to be called, is not stalled), but not past ``deadline``; False
        when none could be had."""
        clock = self.clock
        with self._free:
            while not self._available(trusted):
                now = clock()
                until = min(deadline, self.progress.stalled_at())
                if endpoint is not None:
                    until = min(until, endpoint.stalled_at())
                if now >= until:
                    return False
                self._free.wait(until - now)
            self._busy += 1
            if not trusted:
                self._busy_untrusted += 1
        return True

    def release(self, trusted: bool) -> None:
        """Give a slot back (the caller reported the call's outcome to
        :attr:`progress`, which every call through these slots reports to)."""
        with self._free:
            self._busy -= 1
            if not trusted:
                self._busy_untrusted -= 1
            self._free.notify_all()
