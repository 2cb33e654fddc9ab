"""Requests that arrive while the key set is being fetched wait for that fetch.

Without this, the first requests after start-up (and those carrying a freshly
rotated key) were refused as "unknown key" while another thread fetched it.
"""
from __future__ import annotations

import threading
import time

from okta_pyramid.verifier import AccessTokenVerifier

from .issuer import LoopbackIssuer


def verify_concurrently(verifier: AccessTokenVerifier, token: str, count: int) -> list[str]:
    outcomes: list[str] = []
    start = threading.Barrier(count)

    def work() -> None:
        start.wait()
        try:
            verifier.verify(token)
            outcomes.append("ok")
        except Exception as exc:  # reported in the assertion
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_first_requests_share_the_first_fetch(issuer: LoopbackIssuer) -> None:
    issuer.jwks_delay = 0.3
    verifier = AccessTokenVerifier(issuer.issuer, issuer.audience, http_timeout=2)
    assert verify_concurrently(verifier, issuer.mint(), 5) == ["ok"] * 5
    assert issuer.hits["/oauth2/default/v1/keys"] == 1


def test_requests_with_a_rotated_key_share_its_fetch(issuer: LoopbackIssuer) -> None:
    verifier = AccessTokenVerifier(issuer.issuer, issuer.audience, http_timeout=2,
                                   jwks_refetch_cooldown=0.2)
    verifier.verify(issuer.mint())
    time.sleep(0.3)  # a refetch is due again
    new_key = issuer.rotate(2)
    issuer.jwks_delay = 0.3
    assert verify_concurrently(verifier, issuer.mint(key=new_key), 5) == ["ok"] * 5
    assert issuer.hits["/oauth2/default/v1/keys"] == 2
