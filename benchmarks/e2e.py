"""End to end: the application under waitress, driven over loopback HTTP.

Four workloads run against one server process, interleaved round by round:

- ``/api/hello``, the public endpoint (no token is checked): the baseline;
- ``/api/whoami`` with one access token reused, as a client does for the token's
  lifetime;
- ``/api/whoami`` cycling through more distinct tokens than the server's token
  cache holds, so every request pays a full validation (the worst case);
- ``/api/whoami`` with one DPoP-bound token and a new DPoP proof on every request
  (RFC 9449: a proof is accepted once). The proofs are signed before each run,
  1.5 times as many as the fastest workload so far was served in that time;
- optionally, for calibration, ``/api/hello`` plus a fixed amount of busy work:
  what the server makes of that much extra work per request, whoever does it.

Throughput and latency percentiles are reported, and the throughput of each
``/api/whoami`` workload as a ratio to ``/api/hello`` measured in the same run.
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from okta_pyramid.tokens.dpop import make_proof

from .loadgen import PERCENTILES, Headers, LoadResult, bearer, run_load, wrk_seconds
from .server import SPIN_PATH

HELLO = "/api/hello"
WHOAMI_REUSED = "/api/whoami, one token reused"
WHOAMI_DISTINCT = "/api/whoami, distinct tokens"
WHOAMI_DPOP = "/api/whoami, DPoP, one token, a new proof each request"
SPIN = "/api/hello + busy work (calibration)"
#: The peer's workloads (benchmarks.peer: pyramid_jwt's own policy), by our workload.
PEER = {HELLO: HELLO, WHOAMI_REUSED: WHOAMI_REUSED, WHOAMI_DISTINCT: WHOAMI_DISTINCT}

REPO = Path(__file__).resolve().parent.parent


@dataclass
class DPoPClient:
    """A DPoP-bound access token (``cnf.jkt``) and the private key that signs its proofs."""

    token: str
    key: Any

    def headers(self, url: str, count: int) -> list[dict[str, str]]:
        """``count`` requests' headers for ``GET url``, each with a proof of its own."""
        authorization = f"DPoP {self.token}"
        return [
            {
                "Authorization": authorization,
                "DPoP": make_proof(self.key, "GET", url, access_token=self.token),
            }
            for _ in range(count)
        ]


@dataclass
class EndToEndResult:
    loadgen: str
    connections: int
    duration: float
    rounds: int
    threads: int
    cache_size: int
    distinct_tokens: int
    spin_us: float = 0.0
    runs: dict[str, list[LoadResult]] = field(default_factory=dict)
    #: the server process's CPU microseconds per request, by run (Linux only)
    cpu_micros: dict[str, list[float]] = field(default_factory=dict)
    #: the same for the peer application (pyramid_jwt), when it was measured
    peer_runs: dict[str, list[LoadResult]] = field(default_factory=dict)
    peer_cpu_micros: dict[str, list[float]] = field(default_factory=dict)

    def rps(self, name: str) -> float:
        return statistics.median(r.rps for r in self.runs[name])

    def latency(self, name: str, percentile: int) -> float:
        return statistics.median(r.latency_ms[percentile] for r in self.runs[name])

    def cpu_per_request(self, name: str) -> float | None:
        values = self.cpu_micros.get(name)
        return statistics.median(values) if values else None

    def ratio(self, name: str, baseline: str = HELLO) -> float:
        """The median over the rounds of ``name``'s requests/s over ``baseline``'s in
        the same round: a round that other work on the machine disturbed moves one
        ratio, not the baseline of every ratio."""
        return statistics.median(
            ours.rps / base.rps
            for ours, base in zip(self.runs[name], self.runs[baseline], strict=True)
        )

    def peer_rps(self, name: str) -> float:
        return statistics.median(r.rps for r in self.peer_runs[name])

    def peer_cpu_per_request(self, name: str) -> float | None:
        values = self.peer_cpu_micros.get(name)
        return statistics.median(values) if values else None

    def over_peer(self, name: str) -> float:
        """Our requests/s over the peer's for one workload, per round (as :meth:`ratio`)."""
        return statistics.median(
            ours.rps / peer.rps
            for ours, peer in zip(self.runs[name], self.peer_runs[name], strict=True)
        )

    def targets(self) -> list[tuple[str, float, str, bool]]:
        reused, distinct = self.ratio(WHOAMI_REUSED), self.ratio(WHOAMI_DISTINCT)
        found = [
            (
                "/api/whoami throughput / /api/hello, one token reused",
                reused,
                ">= 0.90",
                reused >= 0.90,
            ),
            (
                "/api/whoami throughput / /api/hello, distinct tokens",
                distinct,
                ">= 0.70",
                distinct >= 0.70,
            ),
        ]
        if WHOAMI_DPOP in self.runs:
            dpop = self.ratio(WHOAMI_DPOP, WHOAMI_REUSED)
            found.append(
                (
                    "/api/whoami throughput, DPoP (a new proof each request) / reused Bearer",
                    dpop,
                    ">= 0.80",
                    dpop >= 0.80,
                )
            )
        for name in (WHOAMI_REUSED, WHOAMI_DISTINCT):
            if name in self.peer_runs:
                over = self.over_peer(name)
                found.append(
                    (f"{name}: okta_pyramid / pyramid_jwt requests/s", over, ">= 1.30", over >= 1.3)
                )
        return found


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux ``/proc``); ``None`` elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class AppServer:
    base_url: str
    pid: int


@contextmanager
def app_server(
    issuer_url: str,
    *,
    cache_size: int,
    threads: int,
    env: dict[str, str],
    spin_us: float = 0.0,
    shared_store: str = "",
    app: str = "okta_pyramid",
    public_key_file: str | None = None,
    floor: str | None = None,
) -> Iterator[AppServer]:
    """Run ``benchmarks.server`` in a child process; yield its URL and pid.

    ``app="peer"`` serves :mod:`benchmarks.peer` (pyramid_jwt) with the issuer's key
    read from ``public_key_file``.
    """
    peer = ["--app", "peer", "--public-key-file", str(public_key_file)] if app == "peer" else []
    if floor is not None:
        peer += ["--floor", floor]  # benchmarks.floors
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.server",
            "--issuer",
            issuer_url,
            "--token-cache-size",
            str(cache_size),
            "--threads",
            str(threads),
            "--spin-us",
            str(spin_us),
            "--shared-store",
            shared_store,
            *peer,
        ],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr: list[str] = []
    # Drain stderr so a chatty server can never block on a full pipe.
    assert process.stdout is not None  # a pipe
    assert process.stderr is not None  # a pipe
    errors = process.stderr
    drain = threading.Thread(target=lambda: stderr.extend(errors), daemon=True)
    drain.start()
    try:
        line = process.stdout.readline()
        if not line.startswith("LISTENING "):
            process.wait(10)
            drain.join(5)
            raise RuntimeError("the application server did not start: " + "".join(stderr)[-2000:])
        yield AppServer(f"http://127.0.0.1:{int(line.split()[1])}", process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def run(
    issuer_url: str,
    reused: str,
    distinct: list[str],
    *,
    cache_size: int,
    loadgen: str,
    connections: int = 8,
    duration: float = 5.0,
    rounds: int = 3,
    threads: int = 4,
    env: dict[str, str] | None = None,
    spin_us: float = 0.0,
    dpop: DPoPClient | None = None,
    peer_public_key: str | None = None,
    wrong_audience: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> EndToEndResult:
    """Measure the workloads; ``distinct`` must outnumber ``cache_size``.

    With ``spin_us``, a calibration workload adds that much busy work to /api/hello.
    With ``dpop``, /api/whoami is also measured with its token and a new proof per
    request. With ``peer_public_key`` (the issuer's key, PEM), the peer application
    (:mod:`benchmarks.peer`, pyramid_jwt) serves /api/hello and /api/whoami with the
    same tokens from its own server process, its runs taking turns with ours. Each
    server is first shown to refuse ``wrong_audience`` (a token for another API), so
    both do the same job.
    """
    if len(distinct) <= cache_size:
        raise ValueError("distinct tokens must outnumber the token cache, or they hit it")
    result = EndToEndResult(
        loadgen=loadgen,
        connections=connections,
        duration=duration,
        rounds=rounds,
        threads=threads,
        cache_size=cache_size,
        distinct_tokens=len(distinct),
        spin_us=spin_us,
    )
    # (name, server, path, headers): "ours" or "peer"
    workloads: list[tuple[str, str, str, Sequence[Headers] | None]] = [
        (HELLO, "ours", "/api/hello", bearer([reused])),
        (WHOAMI_REUSED, "ours", "/api/whoami", bearer([reused])),
        (WHOAMI_DISTINCT, "ours", "/api/whoami", bearer(distinct)),
    ]
    if dpop is not None:
        # None: the proofs are signed anew for every run (each is accepted once).
        workloads.append((WHOAMI_DPOP, "ours", "/api/whoami", None))
    if spin_us > 0:
        workloads.append((SPIN, "ours", SPIN_PATH, bearer([reused])))
    if peer_public_key is not None:
        workloads += [
            (name, "peer", path, headers)
            for name, server, path, headers in workloads
            if name in PEER and server == "ours"
        ]
    fastest = 0.0  # requests/s: the most any workload was served, to size the proofs
    base_urls: dict[str, str] = {}

    def prepare(
        server: str, path: str, headers: Sequence[Headers] | None, seconds: float
    ) -> Sequence[Headers]:
        if headers is not None:
            return headers
        assert dpop is not None
        # More proofs than the run can use: a proof sent twice is refused, which
        # run_load reports as a failure.
        length = wrk_seconds(seconds) if loadgen == "wrk" else seconds
        count = int(max(fastest, 1000.0) * length * 1.5) + 100
        progress(f"end to end: signing {count} DPoP proofs")
        return dpop.headers(base_urls[server] + path, count)

    def load(server: str, path: str, headers: Sequence[Headers], seconds: float) -> LoadResult:
        nonlocal fastest
        outcome = run_load(
            loadgen, base_urls[server], path, headers, connections=connections, duration=seconds
        )
        fastest = max(fastest, outcome.rps)
        return outcome

    with ExitStack() as stack:
        pids: dict[str, int] = {}
        ours = stack.enter_context(
            app_server(
                issuer_url, cache_size=cache_size, threads=threads, env=env or {}, spin_us=spin_us
            )
        )
        base_urls["ours"], pids["ours"] = ours.base_url, ours.pid
        if peer_public_key is not None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="okta-pyramid-peer-"))
            key_file = Path(folder) / "issuer-key.pem"
            key_file.write_text(peer_public_key)
            peer = stack.enter_context(
                app_server(
                    issuer_url,
                    cache_size=cache_size,
                    threads=threads,
                    env=env or {},
                    app="peer",
                    public_key_file=str(key_file),
                )
            )
            base_urls["peer"], pids["peer"] = peer.base_url, peer.pid
        if wrong_audience is not None:
            for url in base_urls.values():
                status = _status(url, "/api/whoami", wrong_audience)
                if status not in (401, 403):
                    raise RuntimeError(f"{url} answered {status} to a token for another API")
        progress(f"end to end: warming up {', '.join(base_urls.values())} ({loadgen})")
        for _, server, path, headers in workloads:
            # Loads the key set, imports lazily imported code, fills connection pools.
            seconds = min(1.0, duration)
            load(server, path, prepare(server, path, headers, seconds), seconds)
        for number in range(rounds):
            # Rotate the order so no workload always follows another.
            shift = number % len(workloads)
            for name, server, path, headers in workloads[shift:] + workloads[:shift]:
                label = name if server == "ours" else f"{name} (peer: pyramid_jwt)"
                progress(f"end to end round {number + 1}/{rounds}: {label}")
                sent = prepare(server, path, headers, duration)
                cpu_before = process_cpu_seconds(pids[server])
                outcome = load(server, path, sent, duration)
                cpu_after = process_cpu_seconds(pids[server])
                runs, cpu = (
                    (result.runs, result.cpu_micros)
                    if server == "ours"
                    else (result.peer_runs, result.peer_cpu_micros)
                )
                runs.setdefault(name, []).append(outcome)
                if cpu_before is not None and cpu_after is not None:
                    cpu.setdefault(name, []).append(
                        (cpu_after - cpu_before) / outcome.requests * 1e6
                    )
                time.sleep(0.2)
    return result


def _status(base_url: str, path: str, token: str) -> int:
    """The status of ``GET path`` with ``token`` as a Bearer token."""
    host, port = base_url.split("//", 1)[1].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        return connection.getresponse().status
    finally:
        connection.close()


def peer_table(result: EndToEndResult) -> str:
    """A Markdown table of okta_pyramid against the peer (pyramid_jwt), per workload."""
    lines = [
        "| workload | okta_pyramid requests/s | pyramid_jwt requests/s | okta_pyramid / "
        "pyramid_jwt | okta_pyramid CPU µs/request | pyramid_jwt CPU µs/request |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in result.peer_runs:
        ours, theirs = result.cpu_per_request(name), result.peer_cpu_per_request(name)
        lines.append(
            f"| {name} | {result.rps(name):,.0f} | {result.peer_rps(name):,.0f} "
            f"| {result.over_peer(name):.2f} | {'n/a' if ours is None else f'{ours:.0f}'} "
            f"| {'n/a' if theirs is None else f'{theirs:.0f}'} |"
        )
    return "\n".join(lines)


def table(result: EndToEndResult) -> str:
    """A Markdown table of the result."""
    head = " | ".join(f"p{p} ms" for p in PERCENTILES)
    lines = [
        f"| workload | requests/s | × /api/hello | {head} | server CPU µs/request |",
        "| --- | ---: | ---: |" + " ---: |" * (len(PERCENTILES) + 1),
    ]
    for name in result.runs:
        cells = " | ".join(f"{result.latency(name, p):.2f}" for p in PERCENTILES)
        cpu = result.cpu_per_request(name)
        label = f"/api/hello + {result.spin_us:.0f} µs busy work" if name == SPIN else name
        lines.append(
            f"| {label} | {result.rps(name):,.0f} | {result.ratio(name):.2f} "
            f"| {cells} | {'n/a' if cpu is None else f'{cpu:.0f}'} |"
        )
    return "\n".join(lines)
