"""The replay store of DPoP proofs (RFC 9449 §11.1): atomic, bounded, fail-closed."""

from __future__ import annotations

import threading
import time

import pytest

from okta_pyramid.tokens.exceptions import VerificationError
from okta_pyramid.tokens.replay import (
    InMemoryReplayStore,
    ReplayQuotaExceeded,
    ReplayStore,
    ReplayStoreFull,
)

from ..helpers import Clock


def test_the_in_memory_store_is_a_replay_store() -> None:
    assert isinstance(InMemoryReplayStore(), ReplayStore)


def test_a_key_is_added_once_until_it_expires() -> None:
    clock = Clock(1000.0)
    store = InMemoryReplayStore(clock=clock)
    assert store.add_if_absent(b"k", 1010.0) is True
    assert store.add_if_absent(b"k", 1010.0) is False
    clock.now = 1010.0  # expires_at is the last moment it is remembered
    assert store.add_if_absent(b"k", 1020.0) is False
    clock.now = 1010.5
    assert store.add_if_absent(b"k", 1020.0) is True
    assert len(store) == 1


def test_expired_keys_are_dropped_as_new_ones_arrive() -> None:
    clock = Clock(0.0)
    store = InMemoryReplayStore(clock=clock)
    for index in range(100):
        store.add_if_absent(bytes([index]), 10.0 + index % 3)
    clock.now = 11.5
    store.add_if_absent(b"new", 20.0)
    # Only the keys expiring at 12 and the new one remain.
    assert len(store) == 33 + 1


def test_a_full_store_refuses_rather_than_forgets() -> None:
    clock = Clock(0.0)
    store = InMemoryReplayStore(3, clock=clock)
    for key in (b"a", b"b", b"c"):
        assert store.add_if_absent(key, 30.0 if key != b"b" else 12.4)
    with pytest.raises(ReplayStoreFull) as caught:
        store.add_if_absent(b"d", 30.0)
    # The server's limit, not a bad proof: a 503 with Retry-After, and the store
    # still refuses every remembered key.
    assert isinstance(caught.value, VerificationError)
    assert caught.value.retry_after == 13
    assert caught.value.reason == "dpop_replay_store_full"
    assert [store.add_if_absent(key, 30.0) for key in (b"a", b"b", b"c")] == [False] * 3
    clock.now = 12.5  # b's window closed: room for one
    assert store.add_if_absent(b"d", 30.0) is True
    with pytest.raises(ReplayStoreFull):
        store.add_if_absent(b"e", 30.0)


def test_a_full_store_warns_once_per_episode(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(0.0)
    store = InMemoryReplayStore(1, clock=clock)
    store.add_if_absent(b"a", 5.0)
    for _ in range(3):
        with pytest.raises(ReplayStoreFull):
            store.add_if_absent(b"b", 5.0)
    assert len([r for r in caplog.records if "replay store full" in r.getMessage()]) == 1


def test_the_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        InMemoryReplayStore(0)


class SlowKey(bytes):
    """A key whose hashing lets other threads run: between the store's test and its
    insertion, every other thread gets its chance."""

    def __hash__(self) -> int:
        time.sleep(0.001)
        return bytes.__hash__(self)


def test_concurrent_adds_of_one_key_succeed_once() -> None:
    store = InMemoryReplayStore()
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def add() -> None:
        barrier.wait()
        results.append(store.add_if_absent(SlowKey(b"one key"), 2e9))

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert len(store) == 1


def test_one_owner_holds_at_most_its_quota_until_its_oldest_expire() -> None:
    clock = Clock(1000.0)
    store = InMemoryReplayStore(100, owner_quota=3, clock=clock)
    for number, expiry in enumerate((1010.0, 1020.0, 1030.0)):
        assert store.add_if_absent(b"a%d" % number, expiry, "key-a")
    with pytest.raises(ReplayQuotaExceeded) as raised:
        store.add_if_absent(b"a3", 1040.0, "key-a")
    assert raised.value.retry_after == 10  # when key-a's oldest is forgotten
    assert raised.value.reason == "dpop_key_quota"
    # Another owner, and keys without one, are not affected.
    assert store.add_if_absent(b"b0", 1040.0, "key-b")
    assert store.add_if_absent(b"n0", 1040.0)
    # A replay is still a replay, quota or not.
    assert store.add_if_absent(b"a0", 1040.0, "key-a") is False
    clock.now = 1010.5
    assert store.add_if_absent(b"a3", 1040.0, "key-a")
    assert store.held_by("key-a") == 3 and store.held_by("key-b") == 1


def test_the_quota_follows_expiry_whatever_the_order_of_arrival() -> None:
    clock = Clock(1000.0)
    store = InMemoryReplayStore(100, owner_quota=2, clock=clock)
    store.add_if_absent(b"late", 1050.0, "k")
    store.add_if_absent(b"soon", 1005.0, "k")
    with pytest.raises(ReplayQuotaExceeded) as raised:
        store.add_if_absent(b"x", 1060.0, "k")
    assert raised.value.retry_after == 5
    clock.now = 1006.0
    assert store.held_by("k") == 1
    assert store.add_if_absent(b"x", 1060.0, "k")
