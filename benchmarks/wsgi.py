"""The application alone: microseconds per request through its WSGI callable.

No server and no sockets: the same three workloads as the end-to-end run, called
directly, so what okta_pyramid adds to a request can be told apart from what the
HTTP server costs around it.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webob import Request

from okta_pyramid.app import main as make_app

from .e2e import HELLO, WHOAMI_DISTINCT, WHOAMI_REUSED


@dataclass
class WSGIResult:
    micros: dict[str, float] = field(default_factory=dict)
    rounds: int = 0

    def ratio(self, name: str) -> float:
        """Requests per second relative to /api/hello (the inverse time ratio)."""
        return self.micros[HELLO] / self.micros[name]


def run(
    issuer_url: str,
    reused: str,
    distinct: list[str],
    *,
    cache_size: int,
    rounds: int = 5,
    progress: Callable[[str], None] = lambda _: None,
) -> WSGIResult:
    """Time each workload; ``distinct`` must outnumber ``cache_size``."""
    if len(distinct) <= cache_size:
        raise ValueError("distinct tokens must outnumber the token cache, or they hit it")
    app = make_app({}, **{"okta.issuer": issuer_url, "okta.token_cache_size": str(cache_size)})

    def environ(path: str, token: str) -> dict[str, Any]:
        return Request.blank(
            path,
            headers={"Authorization": f"Bearer {token}", "Host": "127.0.0.1"},
            remote_addr="127.0.0.1",
        ).environ

    workloads = {
        HELLO: [environ("/api/hello", reused)] * len(distinct),
        WHOAMI_REUSED: [environ("/api/whoami", reused)] * len(distinct),
        WHOAMI_DISTINCT: [environ("/api/whoami", t) for t in distinct],
    }
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    def one_pass(environs: list[dict[str, Any]]) -> float:
        statuses.clear()
        began = time.perf_counter_ns()
        for env in environs:
            # WSGI servers hand each request a fresh environ dict.
            for _ in app(dict(env), start_response):
                pass
        elapsed = time.perf_counter_ns() - began
        if any(not s.startswith("200") for s in statuses):
            raise AssertionError(f"unexpected answers: {sorted(set(statuses))}")
        return elapsed / len(environs) / 1000

    for environs in workloads.values():
        one_pass(environs[:100])  # warm up: keys fetched, code paths loaded
    samples: dict[str, list[float]] = {name: [] for name in workloads}
    for number in range(rounds):
        progress(f"WSGI round {number + 1}/{rounds}")
        for name, environs in workloads.items():
            gc.collect()
            samples[name].append(one_pass(environs))
    return WSGIResult({n: statistics.median(v) for n, v in samples.items()}, rounds)


def table(result: WSGIResult) -> str:
    lines = [
        "| workload | µs/request | added to /api/hello: µs | requests/s × /api/hello |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, micros in result.micros.items():
        lines.append(
            f"| {name} | {micros:.1f} | {micros - result.micros[HELLO]:.1f} "
            f"| {result.ratio(name):.2f} |"
        )
    return "\n".join(lines)
