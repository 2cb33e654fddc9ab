"""Where a served request's time goes: py-spy against the benchmark's waitress server.

``python -m benchmarks.profile`` (py-spy must be installed: ``pip install py-spy``)
starts the end-to-end server (:mod:`benchmarks.server`: the application under
waitress, 4 threads), drives each workload of the end-to-end run with the same load
generator, and samples the server with ``py-spy record --nonblocking`` while it does.
For each workload it prints the server's CPU per request, what share of the
samples each layer's own code took (the innermost frame: waitress, WebOb, Pyramid,
okta_pyramid, cryptography, the standard library), and the functions with the
most samples of their own and, for okta_pyramid, including what they call.

The raw stacks (``--out DIR``) can be read with any flame graph tool.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .loadgen import LoadResult, bearer, run_load, wrk_available

#: The innermost frame's file decides the layer a sample is charged to.
LAYERS = (
    ("okta_pyramid", "/okta_pyramid/"),
    ("benchmarks", "/benchmarks/"),
    ("waitress", "/waitress/"),
    ("webob", "/webob/"),
    ("pyramid", "/pyramid/"),
    ("zope", "/zope/"),
    ("pyramid_jwt", "/pyramid_jwt/"),
    ("jwt (PyJWT)", "/jwt/"),
    ("cryptography", "/cryptography/"),
    ("standard library", "/lib/python3."),
)


@dataclass
class Profile:
    """The samples of one workload: each stack (outermost first) and its count."""

    name: str
    stacks: Counter[tuple[str, ...]] = field(default_factory=Counter)
    cpu_us: float | None = None
    requests: int = 1
    rate: int = 1

    @property
    def held_us(self) -> float:
        """Microseconds per request that a thread held the GIL (each sample is 1/rate s)."""
        return self.samples / self.rate / self.requests * 1e6

    @property
    def samples(self) -> int:
        return sum(self.stacks.values())

    def layers(self) -> list[tuple[str, float]]:
        """Each layer's share of the samples, by the file of the innermost frame."""
        counts: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            counts[layer(stack[-1]) if stack else "?"] += count
        total = self.samples or 1
        return [(name, count / total) for name, count in counts.most_common()]

    def own(self, top: int) -> list[tuple[str, float]]:
        """The functions with the most samples of their own (innermost frame)."""
        counts: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            if stack:
                counts[function(stack[-1])] += count
        total = self.samples or 1
        return [(name, count / total) for name, count in counts.most_common(top)]

    def inclusive(self, top: int, where: str = "/okta_pyramid/") -> list[tuple[str, float]]:
        """The functions of ``where`` with the most samples including their callees."""
        counts: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            for name in {function(frame) for frame in stack if where in frame}:
                counts[name] += count
        total = self.samples or 1
        return [(name, count / total) for name, count in counts.most_common(top)]


def layer(frame: str) -> str:
    for name, marker in LAYERS:
        if marker in frame:
            return name
    return "other"


def function(frame: str) -> str:
    """``name (file:line)`` without the line, the file shortened to its package."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/lib/python3.", "/wt-", "/work/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker in ("/lib/python3.", "/wt-"):
                path = path.split("/", 1)[-1]
            break
    return f"{name} ({path})"


def read_raw(path: Path) -> Counter[tuple[str, ...]]:
    """py-spy's ``--format raw``: ``frame;frame;... count`` per line, outermost first."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames:
            stacks[tuple(frames.split(";"))] += int(count)
    return stacks


def record(
    py_spy: str,
    pid: int,
    seconds: float,
    rate: int,
    output: Path,
    load: Callable[[], LoadResult],
) -> LoadResult:
    """Sample ``pid`` for ``seconds`` while ``load`` runs; its result."""
    process = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(rate),
            "--nonblocking",
            # Only the thread holding the GIL: with 4 threads and 2 cores, the GIL is
            # what a request waits for, and waiting threads are not work.
            "--gil",
            "--full-filenames",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)  # py-spy attaches
    outcome = load()
    _, errors = process.communicate(timeout=seconds + 30)
    if process.returncode != 0:
        raise RuntimeError(f"py-spy failed: {errors[-2000:]}")
    return outcome


def report(profile: Profile, top: int) -> str:
    cpu = profile.held_us
    lines = [
        f"### {profile.name}\n",
        f"{profile.samples} samples of the thread holding the GIL: {cpu:.0f} µs/request"
        + ("" if profile.cpu_us is None else f"; server CPU {profile.cpu_us:.0f} µs/request")
        + "\n",
        "| layer (innermost frame) | share | ≈ µs/request |",
        "| --- | ---: | ---: |",
    ]
    for name, share in profile.layers():
        lines.append(f"| {name} | {share:.1%} | {_micros(share, cpu)} |")
    lines += ["", "| function (own samples) | share | ≈ µs/request |", "| --- | ---: | ---: |"]
    for name, share in profile.own(top):
        lines.append(f"| `{name}` | {share:.1%} | {_micros(share, cpu)} |")
    lines += [
        "",
        "| okta_pyramid function (with what it calls) | share | ≈ µs/request |",
        "| --- | ---: | ---: |",
    ]
    for name, share in profile.inclusive(top):
        lines.append(f"| `{name}` | {share:.1%} | {_micros(share, cpu)} |")
    return "\n".join(lines) + "\n"


def _micros(share: float, micros: float) -> str:
    return f"{share * micros:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per workload")
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=15, help="functions listed per table")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4, help="waitress threads")
    parser.add_argument("--cache-size", type=int, default=1000)
    parser.add_argument(
        "--workload",
        action="append",
        choices=("hello", "reused", "distinct", "dpop"),
        help="profile only these (repeatable; default all)",
    )
    parser.add_argument("--out", type=Path, help="keep the raw stacks in this folder")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(py_spy, os.X_OK):
        parser.error("py-spy is not installed (pip install py-spy)")
    loadgen = "wrk" if wrk_available() else "python"

    from tests.issuer import LoopbackIssuer

    from . import e2e
    from .__main__ import dpop_client
    from .tls import make_loopback_tls

    tls = make_loopback_tls()
    env = {"REQUESTS_CA_BUNDLE": str(tls.ca_file)}
    os.environ.update(env)
    issuer = LoopbackIssuer(ssl_context=tls.server_context())
    out = args.out or Path(tempfile_dir())
    out.mkdir(parents=True, exist_ok=True)
    try:
        reused = issuer.mint()
        distinct = [issuer.mint() for _ in range(args.cache_size * 3 // 2 + 1)]
        dpop = dpop_client(issuer)
        chosen = args.workload or ["hello", "reused", "distinct", "dpop"]
        with e2e.app_server(
            issuer.issuer, cache_size=args.cache_size, threads=args.threads, env=env
        ) as server:
            workloads = {
                "hello": ("/api/hello", lambda _s: bearer([reused])),
                "reused": ("/api/whoami", lambda _s: bearer([reused])),
                "distinct": ("/api/whoami", lambda _s: bearer(distinct)),
                "dpop": (
                    "/api/whoami",
                    lambda s: dpop.headers(server.base_url + "/api/whoami", int(4000 * s) + 100),
                ),
            }
            for name in chosen:
                path, headers = workloads[name]
                run_load(loadgen, server.base_url, path, headers(1.0), connections=2, duration=1)
            print(f"# Profiles of the served request ({loadgen}, py-spy at {args.rate}/s)\n")
            for name in chosen:
                path, headers = workloads[name]
                sent = headers(args.duration)
                raw = out / f"{name}.txt"
                cpu_before = e2e.process_cpu_seconds(server.pid)
                outcome = record(
                    py_spy,
                    server.pid,
                    args.duration,
                    args.rate,
                    raw,
                    functools.partial(
                        run_load,
                        loadgen,
                        server.base_url,
                        path,
                        sent,
                        connections=args.connections,
                        duration=args.duration - 1,
                    ),
                )
                cpu_after = e2e.process_cpu_seconds(server.pid)
                profile = Profile(name, read_raw(raw), requests=outcome.requests, rate=args.rate)
                if cpu_before is not None and cpu_after is not None:
                    # py-spy reads the server's memory without stopping it
                    # (--nonblocking): this CPU time is the server's own.
                    profile.cpu_us = (cpu_after - cpu_before) / outcome.requests * 1e6
                print(report(profile, args.top))
                print(f"({outcome.rps:,.0f} requests/s; raw stacks: {raw})\n", flush=True)
    finally:
        issuer.close()
    return 0


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="okta-pyramid-profile-")


if __name__ == "__main__":
    sys.exit(main())
