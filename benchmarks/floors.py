"""Floors: what a served /api/whoami would cost if okta_pyramid's check cost only its
signature, or nothing at all.

``python -m benchmarks --only floors``. Four servers of the same application under
the same waitress settings, their runs taking turns (the same rounds, medians):

- the application as it is: /api/hello, /api/whoami with a reused token, with
  distinct tokens (cache misses) and with DPoP (a new proof each request);
- ``--floor none``: the policy's identity and permission check replaced by a
  fixed identity that is always allowed (what Pyramid, the view and waitress cost
  without any token check): /api/whoami with a reused token;
- ``--floor rs256``: the application as it is, plus one RS256 signature check per
  request as the verifier makes it: /api/whoami with a reused token. What a cache
  miss would cost if parsing, claim checks, caching and principals were free;
- ``--floor es256``: likewise plus one ES256 signature check: what a DPoP request
  would cost if everything of the proof but its signature were free.

A floor's ratio is the best its workload's target ratio could be. These servers
exist only here: the floors take checks away (``none``) or add work, and are never
an application to serve.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from .e2e import DPoPClient, app_server, process_cpu_seconds
from .loadgen import Headers, bearer, run_load, wrk_seconds

FLOORS = ("none", "rs256", "es256")

HELLO = "/api/hello"
REUSED = "/api/whoami, one token reused"
DISTINCT = "/api/whoami, distinct tokens"
DPOP = "/api/whoami, DPoP, a new proof each request"
NO_CHECK = "floor: /api/whoami, no token check at all"
RS256 = "floor: /api/whoami, one token reused + one RS256 check"
ES256 = "floor: /api/whoami, one token reused + one ES256 check"


def install(app: Any, floor: str, token: str) -> None:
    """Make ``app`` (okta_pyramid's application) serve ``floor`` (see the module)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    from okta_pyramid.security import TokenIdentity

    policy = app.registry.okta.security_policy
    judge = policy.request_verifier.tokens
    verify_token = judge.verify_token
    if floor == "none":
        identity = TokenIdentity(verify_token(token), policy.principals)
        policy.identity = lambda request: identity
        policy.permits = lambda request, context, permission: True
        return
    data = b"x" * 800  # about a token's signing input
    if floor == "rs256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        public = key.public_key()

        def check() -> None:
            # As okta_pyramid.tokens._jws.check_rs256 checks a token's signature.
            public.recover_data_from_signature(signature, padding.PKCS1v15(), None)

    else:
        ec_key = ec.generate_private_key(ec.SECP256R1())
        ecdsa = ec.ECDSA(hashes.SHA256())
        ec_signature = ec_key.sign(data, ecdsa)
        ec_public = ec_key.public_key()

        def check() -> None:
            ec_public.verify(ec_signature, data, ecdsa)

    def verify_and_check(text: str) -> Any:
        check()
        return verify_token(text)

    judge.verify_token = verify_and_check


@dataclass
class FloorsResult:
    rounds: int
    duration: float
    runs: dict[str, list[float]] = field(default_factory=dict)
    cpu_micros: dict[str, list[float]] = field(default_factory=dict)
    #: per round: workload rps / its baseline's rps in the same round
    round_ratios: dict[str, list[float]] = field(default_factory=dict)

    def rps(self, name: str) -> float:
        return statistics.median(self.runs[name])

    def cpu(self, name: str) -> float | None:
        values = self.cpu_micros.get(name)
        return statistics.median(values) if values else None

    def ratio(self, name: str) -> float:
        return statistics.median(self.round_ratios[name])


#: workload -> the workload its ratio is taken to, and its target
BASELINES = {
    REUSED: (HELLO, 0.90),
    NO_CHECK: (HELLO, 0.90),
    DISTINCT: (HELLO, 0.70),
    RS256: (HELLO, 0.70),
    DPOP: (REUSED, 0.80),
    ES256: (REUSED, 0.80),
}


def run(
    issuer_url: str,
    reused: str,
    distinct: list[str],
    dpop: DPoPClient,
    *,
    cache_size: int,
    loadgen: str,
    connections: int = 8,
    duration: float = 5.0,
    rounds: int = 5,
    threads: int = 4,
    env: dict[str, str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> FloorsResult:
    result = FloorsResult(rounds=rounds, duration=duration)
    # (name, server, path, headers or None for DPoP proofs signed per run)
    workloads: list[tuple[str, str, str, Sequence[Headers] | None]] = [
        (HELLO, "app", "/api/hello", bearer([reused])),
        (REUSED, "app", "/api/whoami", bearer([reused])),
        (DISTINCT, "app", "/api/whoami", bearer(distinct)),
        (DPOP, "app", "/api/whoami", None),
        (NO_CHECK, "none", "/api/whoami", bearer([reused])),
        (RS256, "rs256", "/api/whoami", bearer([reused])),
        (ES256, "es256", "/api/whoami", bearer([reused])),
    ]
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                app_server(
                    issuer_url,
                    cache_size=cache_size,
                    threads=threads,
                    env={**(env or {}), "OKTA_PYRAMID_BENCH_TOKEN": reused},
                    floor=None if name == "app" else name,
                )
            )
            for name in ("app", *FLOORS)
        }

        def headers(server: str, path: str, sent: Sequence[Headers] | None, seconds: float) -> Any:
            if sent is not None:
                return sent
            length = wrk_seconds(seconds) if loadgen == "wrk" else seconds
            return dpop.headers(servers[server].base_url + path, int(4000 * length) + 100)

        progress("floors: warming up")
        for _, server, path, sent in workloads:
            run_load(
                loadgen,
                servers[server].base_url,
                path,
                headers(server, path, sent, 1),
                connections=connections,
                duration=1,
            )
        for number in range(rounds):
            shift = number % len(workloads)
            this_round: dict[str, float] = {}
            for name, server, path, sent in workloads[shift:] + workloads[:shift]:
                progress(f"floors round {number + 1}/{rounds}: {name}")
                pid = servers[server].pid
                load = headers(server, path, sent, duration)
                before = process_cpu_seconds(pid)
                outcome = run_load(
                    loadgen,
                    servers[server].base_url,
                    path,
                    load,
                    connections=connections,
                    duration=duration,
                )
                after = process_cpu_seconds(pid)
                this_round[name] = outcome.rps
                result.runs.setdefault(name, []).append(outcome.rps)
                if before is not None and after is not None:
                    result.cpu_micros.setdefault(name, []).append(
                        (after - before) / outcome.requests * 1e6
                    )
                time.sleep(0.2)
            for name, (baseline, _) in BASELINES.items():
                result.round_ratios.setdefault(name, []).append(
                    this_round[name] / this_round[baseline]
                )
    return result


def table(result: FloorsResult) -> str:
    lines = [
        "| workload | requests/s | server CPU µs/request | ratio to | ratio (median of rounds) "
        "| target |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for name in result.runs:
        cpu = result.cpu(name)
        baseline, target = BASELINES.get(name, (None, None))
        ratio = "" if baseline is None else f"{result.ratio(name):.3f}"
        lines.append(
            f"| {name} | {result.rps(name):,.0f} | {'n/a' if cpu is None else f'{cpu:.0f}'} "
            f"| {baseline or ''} | {ratio} | {'' if target is None else f'>= {target:.2f}'} |"
        )
    return "\n".join(lines)


def bench_token() -> str:
    """The reused token, handed to a floor server through its environment."""
    return os.environ["OKTA_PYRAMID_BENCH_TOKEN"]
