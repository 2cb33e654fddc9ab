"""Stateless DPoP nonces (RFC 9449 §8, §9): an HMAC over a time step."""

from __future__ import annotations

import pytest

from okta_pyramid.tokens.nonces import DEFAULT_STEP, DPoPNonces

from ..helpers import Clock

SECRET = b"a shared secret of 32 bytes!!!!!"


def test_a_nonce_lives_its_step_and_the_next() -> None:
    clock = Clock(1200.0)
    nonces = DPoPNonces(SECRET, step=60, clock=clock)
    first = nonces.issue()
    assert nonces.check(first) and nonces.is_current(first)
    clock.now = 1259.9
    assert nonces.issue() == first
    clock.now = 1260.0
    assert nonces.issue() != first
    assert nonces.check(first) and not nonces.is_current(first)
    clock.now = 1319.9
    assert nonces.check(first)
    clock.now = 1320.0
    assert not nonces.check(first)
    assert nonces.lifetime == (60, 120)


def test_expires_in_counts_to_the_end_of_the_next_step() -> None:
    nonces = DPoPNonces(SECRET, step=60, clock=lambda: 1210.0)
    assert nonces.expires_in() == 110.0


def test_processes_sharing_the_secret_accept_each_others_nonces() -> None:
    clock = Clock(5000.0)
    one, other = DPoPNonces(SECRET, clock=clock), DPoPNonces(SECRET.decode(), clock=clock)
    assert other.check(one.issue())
    assert not DPoPNonces(b"another secret of 32 bytes!!!!!!", clock=clock).check(one.issue())
    # Without a secret, each process has its own.
    assert not DPoPNonces(clock=clock).check(DPoPNonces(clock=clock).issue())


@pytest.mark.parametrize("value", ["", "x", None, 17, "é" * 43])
def test_anything_else_is_not_a_nonce(value: object) -> None:
    nonces = DPoPNonces(SECRET)
    assert not nonces.check(value)  # type: ignore[arg-type]
    assert not nonces.is_current(value)  # type: ignore[arg-type]


def test_a_nonce_is_header_safe_text() -> None:
    # RFC 9449 §8.1: NQCHAR only; base64url is.
    nonce = DPoPNonces(SECRET).issue()
    assert len(nonce) == 43 and all(c.isalnum() or c in "-_" for c in nonce)


@pytest.mark.parametrize(
    ("secret", "step"), [(b"short", DEFAULT_STEP), (SECRET, 0), (SECRET, 1.5), (SECRET, True)]
)
def test_weak_settings_are_refused(secret: bytes, step: object) -> None:
    with pytest.raises(ValueError):
        DPoPNonces(secret, step=step)  # type: ignore[arg-type]
