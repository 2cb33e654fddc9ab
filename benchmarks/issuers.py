"""A cached token with one issuer configured and with three, side by side.

With several issuers a token is first looked up by its digest, so one that was
verified before never has its ``iss`` decoded again: it should cost what it costs
with one issuer. Three https issuers on 127.0.0.1 serve their keys; each verifier
verifies its token once (so it is cached), then passes of ``calls`` calls take
turns, in random order, round after round; the median pass is reported, with the
ratio to the one-issuer pass of the same round.

    python -m benchmarks.issuers        # alone
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from okta_pyramid.tokens import AccessTokenVerifier, MultiIssuerVerifier
from tests.issuer import LoopbackIssuer, SigningKey, rsa_key

from .tls import LoopbackTLS, make_loopback_tls

ONE = "1 issuer: AccessTokenVerifier"
THREE_FIRST = "3 issuers: MultiIssuerVerifier, the first issuer's token"
THREE_LAST = "3 issuers: MultiIssuerVerifier, the third issuer's token"
#: Within this ratio the two count as equal (run-to-run noise is a few per cent).
TARGET = 1.10


@dataclass
class IssuersResult:
    micros: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)
    calls: int = 0
    rounds: int = 0

    def targets(self) -> list[tuple[str, float, str, bool]]:
        worst = max(self.ratios[THREE_FIRST], self.ratios[THREE_LAST])
        return [
            (
                "cached token: 3 issuers configured / 1 issuer",
                worst,
                f"<= {TARGET:.2f}",
                worst <= TARGET,
            )
        ]


def _pass(verify: Callable[[str], Any], token: str, calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        verify(token)
    return (time.perf_counter_ns() - start) / calls / 1000


def measure(
    issuers: list[LoopbackIssuer],
    session: requests.Session,
    *,
    calls: int = 2000,
    rounds: int = 21,
    progress: Callable[[str], None] = lambda _: None,
) -> IssuersResult:
    """Time ``verify_token`` of a cached token: one issuer against three."""
    first, _, third = issuers
    one = AccessTokenVerifier(first.issuer, first.audience, session=session)
    three = MultiIssuerVerifier(
        [AccessTokenVerifier(server.issuer, server.audience, session=session) for server in issuers]
    )
    token, last_token = first.mint(), third.mint()
    passes = {
        ONE: (one.verify_token, token),
        THREE_FIRST: (three.verify_token, token),
        THREE_LAST: (three.verify_token, last_token),
    }
    for verify, each in passes.values():
        verify(each)  # fetch the keys, verify in full once: the token is now cached
        assert verify(each) is verify(each)
    for verify, each in passes.values():
        _pass(verify, each, calls)  # warm
    samples: dict[str, list[float]] = {name: [] for name in passes}
    ratios: dict[str, list[float]] = {name: [] for name in passes}
    rng = random.Random(16)
    for number in range(rounds):
        if number % 10 == 0:
            progress(f"issuers round {number + 1}/{rounds}")
        order = list(passes)
        rng.shuffle(order)
        measured = {}
        gc.collect()
        gc.disable()  # as timeit does: a collection mid-pass is noise
        try:
            for name in order:
                measured[name] = _pass(*passes[name], calls)
        finally:
            gc.enable()
        for name, value in measured.items():
            samples[name].append(value)
            ratios[name].append(value / measured[ONE])
    result = IssuersResult(calls=calls, rounds=rounds)
    for name in passes:
        result.micros[name] = statistics.median(samples[name])
        result.ratios[name] = statistics.median(ratios[name])
        ordered = sorted(ratios[name])
        # The middle 80 % of the rounds: what "within noise" means here.
        cut = len(ordered) // 10
        result.spread[name] = (ordered[cut], ordered[-1 - cut])
    return result


def table(result: IssuersResult) -> str:
    lines = [
        "| verifier, cached token | µs | × 1 issuer | middle 80 % of rounds |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, micros in result.micros.items():
        low, high = result.spread[name]
        lines.append(
            f"| {name} | {micros:.2f} | {result.ratios[name]:.3f} | {low:.3f} to {high:.3f} |"
        )
    return "\n".join(lines)


def start_issuers(tls: LoopbackTLS, first: LoopbackIssuer | None = None) -> list[LoopbackIssuer]:
    """Three https issuers (``first`` among them if given), each with its own key."""
    servers = [first or LoopbackIssuer(ssl_context=tls.server_context())]
    for index in (2, 3):
        server = LoopbackIssuer(ssl_context=tls.server_context())
        server.audience = f"api://audience-{index}"
        server.keys = [SigningKey(f"issuer-{index}", rsa_key(10 + index))]
        servers.append(server)
    return servers


def main() -> None:
    tls = make_loopback_tls()
    servers = start_issuers(tls)
    session = requests.Session()
    session.verify = str(tls.ca_file)
    try:
        print(table(measure(servers, session)))
    finally:
        for server in servers:
            server.close()


if __name__ == "__main__":
    main()
