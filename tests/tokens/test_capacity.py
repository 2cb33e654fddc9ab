"""The limits on waiting for an authorization server: patience follows the endpoint's
progress, and the call slots keep room for tokens that are probably genuine."""

from __future__ import annotations

import threading
import time

import pytest

from okta_pyramid.tokens.capacity import (
    CallSlots,
    Progress,
    calls_for_threads,
    key_waiters_for_threads,
)

from ..helpers import Clock


def test_sizes_keep_one_thread_free() -> None:
    assert [calls_for_threads(n) for n in (1, 2, 4, 8)] == [1, 1, 3, 7]
    # Beside the fetch itself: all but one thread in all.
    assert [key_waiters_for_threads(n) for n in (1, 2, 4, 8)] == [0, 0, 2, 6]


def test_patience_is_a_quarter_of_the_timeout_or_three_slowest_answers() -> None:
    progress = Progress(4.0, clock=Clock(1000.0))
    assert progress.patience == 1.0
    for seconds in (0.1, 0.5, 0.2):
        progress.started()
        progress.finished(seconds)
    assert progress.patience == pytest.approx(1.5)
    progress.started()
    progress.finished(3.9)
    assert progress.patience == 4.0  # never more than the timeout


def test_stalled_only_while_calls_are_outstanding_and_unanswered() -> None:
    clock = Clock(1000.0)
    progress = Progress(4.0, clock=clock)
    assert not progress.stalled() and progress.stalled_at() == float("inf")
    progress.started()
    clock.now += 0.9
    assert not progress.stalled()
    clock.now += 0.2
    assert progress.stalled()
    progress.started()  # a new call while others hang: no fresh start
    assert progress.stalled()
    progress.finished(None)  # one ends without an answer (a timeout)
    assert progress.stalled()
    progress.finished(1.1)  # an answer: progress
    assert not progress.stalled() and progress.stalled_at() == float("inf")


def test_untrusted_calls_take_at_most_their_share() -> None:
    slots = CallSlots(4, untrusted=2)
    deadline = time.monotonic() + 0.05
    assert slots.acquire(False, deadline) and slots.acquire(False, deadline)
    assert not slots.acquire(False, deadline)  # its share is taken
    assert slots.acquire(True, deadline) and slots.acquire(True, deadline)
    assert not slots.acquire(True, deadline)  # all taken
    slots.release(False)
    assert slots.acquire(True, deadline)  # the slot an untrusted call gave back
    assert slots.in_flight == 4


def test_a_waiter_gets_the_slot_a_call_gives_back() -> None:
    slots = CallSlots(1)
    assert slots.acquire(True, time.monotonic() + 1)
    slots.progress.started()
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(slots.acquire(True, time.monotonic() + 2)))
    waiter.start()
    time.sleep(0.1)
    slots.progress.finished(0.1)
    slots.release(True)
    waiter.join(2)
    assert got == [True]


def test_a_waiter_leaves_when_nothing_has_answered_for_the_patience() -> None:
    slots = CallSlots(1, timeout=0.4)  # patience 0.1 s
    assert slots.acquire(True, time.monotonic() + 1)
    slots.progress.started()  # the call that hangs
    began = time.monotonic()
    assert not slots.acquire(True, time.monotonic() + 5)
    assert 0.05 < time.monotonic() - began < 0.5
