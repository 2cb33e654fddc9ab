"""The development issuer's revocation list: each revoked token's jti is kept until
the token expires and no longer, the list is capped and never makes room by
forgetting, and threads share it safely."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from okta_pyramid.devissuer.revocation import RevocationListFull, RevokedTokens

from ..helpers import Clock


def test_the_list_keeps_each_jti_until_its_expiry_only():
    clock = Clock(1000.0)
    revoked = RevokedTokens(max_entries=3, clock=clock)
    assert revoked.revoke("a", 1010) and revoked.revoke("b", 1020) and revoked.revoke("c", 1030)
    assert not revoked.revoke("a", 1010)  # already there
    assert not revoked.revoke("expired", 1000)  # nothing to remember
    with pytest.raises(RevocationListFull) as full:
        revoked.revoke("d", 1040)
    assert full.value.retry_after == 10  # when "a" goes
    assert "d" not in revoked and "a" in revoked
    clock.now = 1010
    assert "a" not in revoked and len(revoked) == 2
    assert revoked.revoke("d", 1040)
    clock.now = 1030
    assert sorted(j for j in "abcd" if j in revoked) == ["d"]


def test_the_list_refuses_to_make_room_by_forgetting(caplog):
    caplog.set_level("WARNING")
    revoked = RevokedTokens(max_entries=2, clock=Clock(0.0))
    revoked.revoke("a", 100)
    revoked.revoke("b", 200)
    for _ in range(5):
        with pytest.raises(RevocationListFull):
            revoked.revoke("c", 300)
    assert "a" in revoked and "b" in revoked
    # One warning per episode, not one per refusal.
    assert len([r for r in caplog.records if "revocation list full" in r.message]) == 1


def test_one_revocation_wins_when_threads_race():
    revoked = RevokedTokens(max_entries=100_000)
    exp = time.time() + 60
    rounds = 200
    barrier = threading.Barrier(8)

    def work(n: int) -> int:
        won = 0
        for r in range(rounds):
            barrier.wait()
            # Every thread revokes each round's shared jti, and one of its own.
            won += revoked.revoke(f"shared-{r}", exp)
            revoked.revoke(f"{n}-{r}", exp)
        return won

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(work, range(8))) == rounds  # exactly one winner per jti
    assert len(revoked) == rounds * 9
