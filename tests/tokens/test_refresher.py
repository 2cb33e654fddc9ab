"""Keys are fetched in the background after start and refreshed before they go stale."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from okta_pyramid.app import main
from okta_pyramid.tokens.discovery import IssuerClient
from okta_pyramid.tokens.jwks import KeySet
from okta_pyramid.tokens.refresher import KeyRefresher, wait_until_listening

from ..helpers import wait_for
from ..issuer import LoopbackIssuer

KEYS_PATH = "/oauth2/default/v1/keys"


@pytest.fixture
def refreshers() -> Iterator[list[KeyRefresher]]:
    started: list[KeyRefresher] = []
    yield started
    for refresher in started:
        refresher.stop(timeout=5)


def test_keys_are_fetched_after_start_before_any_request(settings, issuer, refreshers) -> None:
    app = main({}, **{**settings, "okta.jwks_refresh_interval": "300"})
    refreshers.append(app.registry.okta.key_refresher)
    keys = app.registry.okta.verifier.keys
    assert wait_for(lambda: keys.loaded_at is not None)
    assert keys.kids == {"key-1"}
    assert issuer.hits[KEYS_PATH] == 1


def test_start_does_not_wait_for_a_hanging_issuer(settings, issuer, refreshers) -> None:
    issuer.mode = "hang"
    started = time.monotonic()
    app = main({}, **{**settings, "okta.jwks_refresh_interval": "300"})
    refreshers.append(app.registry.okta.key_refresher)
    assert time.monotonic() - started < 2  # the issuer hangs for 30 s
    assert app.registry.okta.key_refresher.running
    issuer.release.set()


def test_no_thread_when_the_interval_is_zero(settings) -> None:
    app = main({}, **settings)
    assert app.registry.okta.key_refresher is None


def keyset(issuer: LoopbackIssuer, backoff: float = 0.05) -> KeySet:
    return KeySet(
        IssuerClient(issuer.issuer, http_timeout=2), refetch_cooldown=30, failure_backoff=backoff
    )


def test_refreshes_every_interval_and_picks_up_rotation(issuer, refreshers) -> None:
    keys = keyset(issuer)
    refresher = KeyRefresher(keys, interval=0.2)
    refreshers.append(refresher)
    refresher.start()
    assert wait_for(lambda: keys.kids == {"key-1"})
    issuer.rotate(2, keep_old=False)
    assert wait_for(lambda: keys.kids == {"key-2"})
    assert keys.generation == 2
    assert wait_for(lambda: issuer.hits[KEYS_PATH] >= 4)


def test_retries_with_backoff_until_the_issuer_is_back(issuer, refreshers) -> None:
    issuer.mode = "error"
    keys = keyset(issuer, backoff=0.05)
    refresher = KeyRefresher(keys, interval=60)
    refreshers.append(refresher)
    refresher.start()
    assert wait_for(lambda: sum(issuer.hits.values()) >= 2)  # tried, failed, tried again
    assert keys.loaded_at is None and keys.last_error
    issuer.mode = "ok"
    # Retried long before the 60 s interval: after 1, 2, 4 ... seconds.
    assert wait_for(lambda: keys.loaded_at is not None, timeout=5)
    assert keys.last_error is None


def test_backoff_doubles_up_to_the_interval(issuer) -> None:
    refresher = KeyRefresher(keyset(issuer, backoff=5), interval=300)
    assert [refresher.next_delay(n) for n in range(8)] == [300, 5, 10, 20, 40, 80, 160, 300]


def test_first_fetch_waits_for_a_loopback_issuer_to_listen(issuer, refreshers) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/oauth2/default"
    assert wait_until_listening(closed, timeout=0.2) is False
    assert wait_until_listening(issuer.issuer, timeout=1) is True

    keys = keyset(issuer)
    refresher = KeyRefresher(keys, interval=60, wait_for=closed)
    refreshers.append(refresher)
    refresher.start()
    time.sleep(0.3)
    assert issuer.hits == {}  # nothing fetched, nothing failed, while nothing listens
    refresher.stop(timeout=5)


def test_backoff_never_spins_and_never_overflows(issuer) -> None:
    # With a zero failure backoff (okta.jwks_refetch_cooldown = 0) a dead issuer must
    # not be retried in a tight loop, and a long outage must not overflow the delay.
    refresher = KeyRefresher(keyset(issuer, backoff=0), interval=300)
    assert refresher.next_delay(1) >= 1
    assert refresher.next_delay(100_000) == 300


def test_thread_is_a_daemon_and_stops(issuer) -> None:
    refresher = KeyRefresher(keyset(issuer), interval=60)
    refresher.start()
    assert refresher._thread is not None and refresher._thread.daemon
    refresher.stop(timeout=5)
    assert not refresher.running


def test_thread_survives_an_unexpected_error(issuer, refreshers, monkeypatch) -> None:
    keys = keyset(issuer, backoff=0.05)
    calls = []

    def broken() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("surprise")
        return KeySet.refresh(keys)

    monkeypatch.setattr(keys, "refresh", broken)
    refresher = KeyRefresher(keys, interval=60)
    refreshers.append(refresher)
    refresher.start()
    assert wait_for(lambda: keys.loaded_at is not None)
    assert refresher.running


def test_a_stalled_issuer_does_not_stop_the_refresher(issuer, refreshers) -> None:
    # Headers that never end: each attempt is cut at the deadline and tried again.
    issuer.mode = "drip_headers"
    keys = KeySet(
        IssuerClient(issuer.issuer, http_timeout=0.3), refetch_cooldown=30, failure_backoff=0.05
    )
    refresher = KeyRefresher(keys, interval=60)
    refreshers.append(refresher)
    refresher.start()
    assert wait_for(lambda: sum(issuer.hits.values()) >= 2, timeout=2.5)
    assert "took longer than 0.3s" in (keys.last_error or "")
    issuer.mode = "ok"
    assert wait_for(lambda: keys.kids == {"key-1"}, timeout=5)


def test_keys_fetched_meanwhile_are_not_fetched_again(issuer, refreshers) -> None:
    # A request that needed a key before the refresher ran fetched the set: the next
    # refresh is due an interval after that fetch, not at once.
    keys = keyset(issuer)
    keys.refresh()
    refresher = KeyRefresher(keys, interval=60)
    refreshers.append(refresher)
    refresher.start()
    time.sleep(0.3)
    assert issuer.hits[KEYS_PATH] == 1
