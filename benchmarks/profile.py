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

``--perf`` samples with Linux ``perf`` instead (``apt-get install linux-perf``),
which sees what py-spy cannot: native code (the interpreter itself, OpenSSL,
libc) and the kernel, across every thread. For each workload it prints the
server's CPU and context switches per request, and the CPU per request in each
shared object (``perf report --sort dso``), then what each workload adds to
``/api/hello`` there.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
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


def record_perf(
    perf: str,
    pid: int,
    rate: int,
    output: Path,
    load: Callable[[], LoadResult],
) -> tuple[LoadResult, float]:
    """Sample ``pid``'s CPU clock with ``perf record`` and count its context switches
    with ``perf stat`` while ``load`` runs; its result and the switches."""
    sampler = subprocess.Popen(
        [perf, "record", "-e", "cpu-clock", "-F", str(rate), "-p", str(pid), "-o", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    counter = subprocess.Popen(
        [perf, "stat", "-x", ",", "-e", "context-switches", "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)  # both attach
    try:
        outcome = load()
    finally:
        for process in (sampler, counter):
            process.send_signal(signal.SIGINT)  # how perf is told to stop and write
    _, sampled = sampler.communicate(timeout=60)
    _, counted = counter.communicate(timeout=60)
    if sampler.returncode not in (0, -signal.SIGINT) or not output.exists():
        raise RuntimeError(f"perf record failed: {sampled[-2000:]}")
    switches = next(
        (float(line.split(",")[0]) for line in counted.splitlines() if "context-switches" in line),
        float("nan"),
    )
    return outcome, switches


def perf_dsos(perf: str, data: Path) -> dict[str, float]:
    """Each shared object's share of the samples in ``data`` (``perf report --sort dso``)."""
    done = subprocess.run(
        [perf, "report", "-i", str(data), "--sort", "dso", "-g", "none", "--stdio"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    shares: dict[str, float] = {}
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].endswith("%") and not line.startswith("#"):
            shares[fields[1]] = float(fields[0][:-1]) / 100
    return shares


def perf_report(name: str, dsos: dict[str, float], cpu_us: float, switches: float, top: int) -> str:
    lines = [
        f"### {name}\n",
        f"server CPU {cpu_us:.0f} µs/request under perf; "
        f"{switches:.2f} context switches a request\n",
        "| shared object | share | ≈ µs/request |",
        "| --- | ---: | ---: |",
    ]
    for dso, share in sorted(dsos.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"| `{dso}` | {share:.1%} | {_micros(share, cpu_us)} |")
    return "\n".join(lines) + "\n"


def perf_differences(found: dict[str, tuple[dict[str, float], float]], top: int) -> str:
    """What each workload adds to /api/hello's CPU per request, object by object."""
    if "hello" not in found or len(found) < 2:
        return ""
    names = [name for name in found if name != "hello"]
    base, base_cpu = found["hello"]

    def micros(name: str, dso: str) -> float:
        shares, cpu = found[name]
        return shares.get(dso, 0.0) * cpu

    every = {dso for shares, _ in found.values() for dso in shares}

    def largest_change(dso: str) -> float:
        here = base.get(dso, 0.0) * base_cpu
        return max(abs(micros(name, dso) - here) for name in names)

    ranked = sorted(every, key=largest_change, reverse=True)
    lines = [
        "### What each workload adds to /api/hello, µs/request under perf\n",
        "| shared object | /api/hello | " + " | ".join(f"+ {n}" for n in names) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in names) + " |",
        "| all | "
        + f"{base_cpu:.0f} | "
        + " | ".join(f"{found[n][1] - base_cpu:+.1f}" for n in names)
        + " |",
    ]
    for dso in ranked[:top]:
        here = base.get(dso, 0.0) * base_cpu
        lines.append(
            f"| `{dso}` | {here:.1f} | "
            + " | ".join(f"{micros(n, dso) - here:+.1f}" for n in names)
            + " |"
        )
    return "\n".join(lines) + "\n"


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
    parser.add_argument(
        "--perf",
        action="store_true",
        help="sample with Linux perf (native code and kernel included) instead of py-spy",
    )
    args = parser.parse_args(argv)
    if args.perf:
        py_spy = ""
        perf = shutil.which("perf") or ""
        if not perf:
            parser.error("perf is not installed (apt-get install linux-perf)")
    else:
        perf = ""
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
            sampler = "perf" if perf else "py-spy"
            print(f"# Profiles of the served request ({loadgen}, {sampler} at {args.rate}/s)\n")
            found: dict[str, tuple[dict[str, float], float]] = {}
            for name in chosen:
                path, headers = workloads[name]
                sent = headers(args.duration)
                load = functools.partial(
                    run_load,
                    loadgen,
                    server.base_url,
                    path,
                    sent,
                    connections=args.connections,
                    duration=args.duration - 1,
                )
                cpu_before = e2e.process_cpu_seconds(server.pid)
                if perf:
                    data = out / f"{name}.perf.data"
                    outcome, switches = record_perf(perf, server.pid, args.rate, data, load)
                    cpu_after = e2e.process_cpu_seconds(server.pid)
                    if cpu_before is None or cpu_after is None:
                        raise RuntimeError("the server's CPU time cannot be read (/proc)")
                    cpu_us = (cpu_after - cpu_before) / outcome.requests * 1e6
                    found[name] = (perf_dsos(perf, data), cpu_us)
                    print(
                        perf_report(
                            name, found[name][0], cpu_us, switches / outcome.requests, args.top
                        )
                    )
                    print(f"({outcome.rps:,.0f} requests/s; samples: {data})\n", flush=True)
                    continue
                raw = out / f"{name}.txt"
                outcome = record(py_spy, server.pid, args.duration, args.rate, raw, load)
                cpu_after = e2e.process_cpu_seconds(server.pid)
                profile = Profile(name, read_raw(raw), requests=outcome.requests, rate=args.rate)
                if cpu_before is not None and cpu_after is not None:
                    # py-spy reads the server's memory without stopping it
                    # (--nonblocking): this CPU time is the server's own.
                    profile.cpu_us = (cpu_after - cpu_before) / outcome.requests * 1e6
                print(report(profile, args.top))
                print(f"({outcome.rps:,.0f} requests/s; raw stacks: {raw})\n", flush=True)
            if found:
                print(perf_differences(found, args.top))
    finally:
        issuer.close()
    return 0


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="okta-pyramid-profile-")


if __name__ == "__main__":
    sys.exit(main())
