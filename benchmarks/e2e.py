"""End to end: the application under waitress, driven over loopback HTTP.

Three workloads run against one server process, interleaved round by round:

- ``/api/hello``, the public endpoint (no token is checked): the baseline;
- ``/api/whoami`` with one access token reused, as a client does for the token's
  lifetime;
- ``/api/whoami`` cycling through more distinct tokens than the server's token
  cache holds, so every request pays a full validation (the worst case).

Throughput and latency percentiles are reported, and the throughput of each
``/api/whoami`` workload as a ratio to ``/api/hello`` measured in the same run.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from contextlib import contextmanager

from .loadgen import PERCENTILES, LoadResult, run_load

HELLO = "/api/hello"
WHOAMI_REUSED = "/api/whoami, one token reused"
WHOAMI_DISTINCT = "/api/whoami, distinct tokens"

REPO = Path(__file__).resolve().parent.parent


@dataclass
class EndToEndResult:
    loadgen: str
    connections: int
    duration: float
    rounds: int
    threads: int
    cache_size: int
    distinct_tokens: int
    runs: dict[str, list[LoadResult]] = field(default_factory=dict)

    def rps(self, name: str) -> float:
        return statistics.median(r.rps for r in self.runs[name])

    def latency(self, name: str, percentile: int) -> float:
        return statistics.median(r.latency_ms[percentile] for r in self.runs[name])

    def ratio(self, name: str) -> float:
        return self.rps(name) / self.rps(HELLO)

    def targets(self) -> list[tuple[str, float, str, bool]]:
        reused, distinct = self.ratio(WHOAMI_REUSED), self.ratio(WHOAMI_DISTINCT)
        return [
            ("/api/whoami throughput / /api/hello, one token reused", reused, ">= 0.90",
             reused >= 0.90),
            ("/api/whoami throughput / /api/hello, distinct tokens", distinct, ">= 0.70",
             distinct >= 0.70),
        ]


@contextmanager
def app_server(issuer_url: str, *, cache_size: int, threads: int,
               env: dict[str, str]) -> Iterator[str]:
    """Run ``benchmarks.server`` in a child process; yield its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.server", "--issuer", issuer_url,
         "--token-cache-size", str(cache_size), "--threads", str(threads)],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    stderr: list[str] = []
    # Drain stderr so a chatty server can never block on a full pipe.
    drain = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)
    drain.start()
    try:
        line = process.stdout.readline()
        if not line.startswith("LISTENING "):
            process.wait(10)
            raise RuntimeError("the application server did not start: "
                               + "".join(stderr)[-2000:])
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def run(issuer_url: str, reused: str, distinct: list[str], *, cache_size: int,
        loadgen: str, connections: int = 8, duration: float = 5.0, rounds: int = 3,
        threads: int = 4, env: dict[str, str] | None = None,
        progress: Callable[[str], None] = lambda _: None) -> EndToEndResult:
    """Measure the three workloads; ``distinct`` must outnumber ``cache_size``."""
    if len(distinct) <= cache_size:
        raise ValueError("distinct tokens must outnumber the token cache, or they hit it")
    result = EndToEndResult(loadgen=loadgen, connections=connections, duration=duration,
                            rounds=rounds, threads=threads, cache_size=cache_size,
                            distinct_tokens=len(distinct))
    workloads = [(HELLO, "/api/hello", [reused]),
                 (WHOAMI_REUSED, "/api/whoami", [reused]),
                 (WHOAMI_DISTINCT, "/api/whoami", distinct)]
    with app_server(issuer_url, cache_size=cache_size, threads=threads,
                    env=env or {}) as base_url:
        progress(f"end to end: warming up {base_url} ({loadgen})")
        for _, path, tokens in workloads:
            # Loads the key set, imports lazily imported code, fills connection pools.
            run_load(loadgen, base_url, path, tokens, connections=connections,
                     duration=min(1.0, duration))
        for number in range(rounds):
            # Rotate the order so no workload always follows another.
            shift = number % len(workloads)
            for name, path, tokens in workloads[shift:] + workloads[:shift]:
                progress(f"end to end round {number + 1}/{rounds}: {name}")
                outcome = run_load(loadgen, base_url, path, tokens,
                                   connections=connections, duration=duration)
                result.runs.setdefault(name, []).append(outcome)
                time.sleep(0.2)
    return result


def table(result: EndToEndResult) -> str:
    """A Markdown table of the result."""
    head = " | ".join(f"p{p} ms" for p in PERCENTILES)
    lines = [f"| workload | requests/s | × /api/hello | {head} |",
             "| --- | ---: | ---: |" + " ---: |" * len(PERCENTILES)]
    for name in (HELLO, WHOAMI_REUSED, WHOAMI_DISTINCT):
        cells = " | ".join(f"{result.latency(name, p):.2f}" for p in PERCENTILES)
        lines.append(f"| {name} | {result.rps(name):,.0f} | {result.ratio(name):.2f} "
                     f"| {cells} |")
    return "\n".join(lines)
