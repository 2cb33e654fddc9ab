"""Concurrent requests while the key set is being fetched wait for that fetch."""
from __future__ import annotations

import threading
from typing import Any

from okta_pyramid.jwks import IssuerClient, KeySet

from .issuer import LoopbackIssuer


def test_misses_during_an_in_flight_fetch_share_it_with_a_real_cooldown(
        issuer: LoopbackIssuer) -> None:
    # With the default cooldown, the first fetch after start-up is "recent" for every
    # request that arrives while it is in flight: they must wait for it, not answer
    # "unknown kid" (a burst of 401s for valid tokens at every cold start).
    issuer.jwks_delay = 0.3
    keys = KeySet(IssuerClient(issuer.issuer, http_timeout=5), refetch_cooldown=30)
    results: list[Any] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        try:
            results.append(keys.get("key-1"))
        except Exception as exc:  # noqa: BLE001 - the assertion below shows which
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert not [r for r in results if isinstance(r, Exception)], results
    assert issuer.hits["/oauth2/default/v1/keys"] == 1


def test_a_made_up_kid_during_an_in_flight_fetch_does_not_fetch_again(
        issuer: LoopbackIssuer) -> None:
    issuer.jwks_delay = 0.3
    keys = KeySet(IssuerClient(issuer.issuer, http_timeout=5), refetch_cooldown=30)
    errors: list[str] = []
    barrier = threading.Barrier(6)

    def worker(kid: str) -> None:
        barrier.wait()
        try:
            keys.get(kid)
        except Exception as exc:  # noqa: BLE001
            errors.append(type(exc).__name__)

    threads = [threading.Thread(target=worker, args=(f"made-up-{i}",)) for i in range(5)]
    threads.append(threading.Thread(target=worker, args=("key-1",)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(errors) == ["UnknownKey"] * 5
    assert issuer.hits["/oauth2/default/v1/keys"] == 1
