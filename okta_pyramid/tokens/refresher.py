"""Fetch the issuer's keys in the background: before the first request, and again
before they go stale.

Start-up never waits for the issuer: the application serves at once (``/api/hello``
works while the issuer is down) and a daemon thread fetches the key set, then
refreshes it every ``okta.jwks_refresh_interval`` seconds. After a failure it
retries sooner, backing off from the key set's failure backoff up to the interval,
and the keys already held keep working meanwhile (stale rather than failing).
Each fetch ends by its deadline (``okta.http_timeout``), so a stalled issuer delays
the next attempt, never stops the thread.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from urllib.parse import urlsplit

from .jwks import KeySet

log = logging.getLogger(__name__)

#: ``/readyz`` reports the keys stale when the last successful fetch is older
#: than this many refresh intervals (two refreshes in a row have failed).
STALE_AFTER_INTERVALS = 3
#: Retries after a failure wait at least this long, even with no failure backoff.
MIN_RETRY_DELAY = 1.0
#: How long the first fetch waits for a loopback issuer to start listening.
LISTEN_TIMEOUT = 30.0


def wait_until_listening(url: str, timeout: float, stop: threading.Event | None = None) -> bool:
    """Wait until the host and port of ``url`` accept TCP connections."""
    parts = urlsplit(url)
    address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        try:
            with socket.create_connection(address, timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class KeyRefresher:
    """A daemon thread that keeps a :class:`KeySet` loaded and fresh."""

    def __init__(self, keys: KeySet, interval: float, *, wait_for: str | None = None) -> None:
        if interval <= 0:
            raise ValueError("the refresh interval must be positive")
        self.keys = keys
        self.interval = interval
        #: A URL whose port must accept connections before the first fetch.
        self.wait_for = wait_for
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stale_after(self) -> float:
        """Age, in seconds, past which the held keys count as stale."""
        return STALE_AFTER_INTERVALS * self.interval

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (once); returns at once, without waiting for the issuer."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="okta-key-refresher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to end and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def next_delay(self, failures: int) -> float:
        """Seconds to wait before the next fetch, after ``failures`` failures in a row."""
        if failures == 0:
            return self.interval
        base = max(MIN_RETRY_DELAY, self.keys.failure_backoff)
        delay: float = min(self.interval, base * 2 ** min(failures - 1, 16))
        return delay

    def _run(self) -> None:
        if self.wait_for is not None:
            wait_until_listening(self.wait_for, LISTEN_TIMEOUT, self._stop)
        failures = 0
        delay = 0.0
        while not self._stop.wait(delay):
            age = self.keys.age
            if not failures and age is not None and age < self.interval:
                # Fetched meanwhile (by a request that needed a key first): the next
                # refresh is due an interval after that fetch, not now.
                delay = self.interval - age
                continue
            try:
                # False also when a fetch under way (a request's) could not be waited
                # for: the thread then tries again after the backoff.
                fetched = self.keys.refresh() and self.keys.last_error is None
            except Exception:
                # The thread must outlive any surprise; requests still fetch on demand.
                log.exception("background refresh of the issuer's keys failed")
                fetched = False
            if fetched:
                if failures:
                    log.info("issuer's keys fetched again after %d failed attempt(s)", failures)
                failures = 0
            else:
                failures += 1
            delay = self.next_delay(failures)
            log.debug("next background key refresh in %.0fs", delay)
