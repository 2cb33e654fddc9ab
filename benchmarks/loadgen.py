"""Load generators for the end-to-end benchmark: wrk when installed, else Python.

Both keep ``connections`` HTTP/1.1 connections busy for ``duration`` seconds,
send ``Authorization: Bearer <token>`` cycling through ``tokens`` in order, and
report requests per second and latency percentiles. Any answer other than 200
is counted and makes the run fail: a benchmark of error pages measures nothing.
"""
from __future__ import annotations

import http.client
import itertools
import json
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    #: latency percentile -> milliseconds
    latency_ms: dict[int, float]
    failures: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


class LoadError(RuntimeError):
    """The load generator could not run, or the server answered with errors."""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


_WRK_SCRIPT = """
local tokens = {%(tokens)s}
local path = %(path)s
local count = #tokens
local i = 0
request = function()
  i = i %% count + 1
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. tokens[i]})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "socket_errors": %%d,'
    .. ' "p50": %%d, "p90": %%d, "p99": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a valid Lua string literal


def run_wrk(base_url: str, path: str, tokens: list[str], *, connections: int,
            duration: float) -> LoadResult:
    """Drive the server with wrk (one thread: the other core is the server's)."""
    with tempfile.TemporaryDirectory(prefix="okta-pyramid-wrk-") as tmp:
        script = Path(tmp) / "tokens.lua"
        script.write_text(_WRK_SCRIPT % {
            "tokens": ",".join(_lua_string(t) for t in tokens),
            "path": _lua_string(path),
        })
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
                   "--timeout", "10s", "-s", str(script), base_url + path]
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise LoadError(f"wrk failed ({done.returncode}): {done.stderr.strip()[:500]}")
    data = json.loads(line.split(" ", 1)[1])
    failures = data["non_2xx"] + data["socket_errors"]
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        latency_ms={p: data[f"p{p}"] / 1000 for p in PERCENTILES},
        failures=failures,
    )


def run_python(base_url: str, path: str, tokens: list[str], *, connections: int,
               duration: float) -> LoadResult:
    """Drive the server from threads of this process, one connection each."""
    host, port = base_url.split("//", 1)[1].rsplit(":", 1)
    next_index = itertools.count()  # shared: tokens are used in order across threads
    count = len(tokens)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    start_line = threading.Barrier(connections + 1)
    deadline = 0.0

    def worker(slot: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        mine = latencies[slot]
        start_line.wait()
        try:
            while time.perf_counter() < deadline:
                token = tokens[next(next_index) % count]
                began = time.perf_counter()
                connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                response = connection.getresponse()
                response.read()
                mine.append(time.perf_counter() - began)
                if response.status != 200:
                    failures[slot] += 1
        except (OSError, http.client.HTTPException):
            failures[slot] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True)
               for n in range(connections)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline = began + duration
    start_line.wait()
    for thread in threads:
        thread.join(duration + 30)
    seconds = time.perf_counter() - began
    samples = sorted(itertools.chain.from_iterable(latencies))
    if not samples:
        raise LoadError("the Python load generator completed no request")
    return LoadResult(
        requests=len(samples),
        seconds=seconds,
        latency_ms={p: samples[min(len(samples) - 1, int(len(samples) * p / 100))] * 1000
                    for p in PERCENTILES},
        failures=sum(failures),
    )


def run_load(kind: str, base_url: str, path: str, tokens: list[str], *, connections: int,
             duration: float) -> LoadResult:
    runner = run_wrk if kind == "wrk" else run_python
    result = runner(base_url, path, tokens, connections=connections, duration=duration)
    if result.failures:
        raise LoadError(f"{path}: {result.failures} request(s) failed or were not answered "
                        f"200 out of {result.requests}")
    return result
