"""Load generators for the end-to-end benchmark: wrk when installed, else Python.

Both keep ``connections`` HTTP/1.1 connections busy for ``duration`` seconds,
send the header sets of ``headers`` in order, one set per request (cycling when
they run out), and report requests per second and latency percentiles. A set is
``Authorization: Bearer <token>`` (:func:`bearer`), or for DPoP the token and a
proof, which the server accepts only once. Any answer other than 200 is counted
and makes the run fail: a benchmark of error pages measures nothing.
"""

from __future__ import annotations

import http.client
import itertools
import json
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PERCENTILES = (50, 90, 99)
#: One request's headers; a workload cycles through a list of them.
Headers = Mapping[str, str]


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


def bearer(tokens: Sequence[str]) -> list[dict[str, str]]:
    """One ``Authorization: Bearer`` header set per token."""
    return [{"Authorization": f"Bearer {token}"} for token in tokens]


# The header sets are read from a file, one request per line ("Name: value" pairs
# separated by tabs), and formatted once before the run: tens of thousands of DPoP
# proofs are too many for a Lua table literal, and formatting per request would be
# measured along with the server.
_WRK_SCRIPT = """
local path = %(path)s
local requests = {}
local count = 0
local i = 0
-- In init, not when the script loads: wrk knows the Host header only from then on.
init = function(args)
  for line in io.lines(%(file)s) do
    local headers = {}
    for name, value in string.gmatch(line, "([^\\t:]+): ([^\\t]*)") do
      headers[name] = value
    end
    requests[#requests + 1] = wrk.format("GET", path, headers)
  end
  count = #requests
end
request = function()
  i = i %% count + 1
  return requests[i]
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


def wrk_seconds(duration: float) -> int:
    """How long wrk runs when asked for ``duration``: it takes whole seconds."""
    return max(1, round(duration))


def run_wrk(
    base_url: str, path: str, headers: Sequence[Headers], *, connections: int, duration: float
) -> LoadResult:
    """Drive the server with wrk (one thread: the other core is the server's)."""
    with tempfile.TemporaryDirectory(prefix="okta-pyramid-wrk-") as tmp:
        requests = Path(tmp) / "requests.txt"
        requests.write_text(
            "".join(
                "\t".join(f"{name}: {value}" for name, value in one.items()) + "\n"
                for one in headers
            )
        )
        script = Path(tmp) / "requests.lua"
        script.write_text(
            _WRK_SCRIPT % {"path": _lua_string(path), "file": _lua_string(str(requests))}
        )
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{wrk_seconds(duration)}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base_url + path,
        ]
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


def run_python(
    base_url: str,
    path: str,
    headers: Sequence[Headers],
    *,
    connections: int,
    duration: float,
    tls: ssl.SSLContext | None = None,
) -> LoadResult:
    """Drive the server from threads of this process, one connection each (https
    with ``tls`` when ``base_url`` is https)."""
    host, port = base_url.split("//", 1)[1].rsplit(":", 1)
    secure = base_url.startswith("https:")
    next_index = itertools.count()  # shared: header sets are used in order across threads
    count = len(headers)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    start_line = threading.Barrier(connections + 1)
    deadline = 0.0

    def worker(slot: int) -> None:
        connection = (
            http.client.HTTPSConnection(host, int(port), timeout=10, context=tls)
            if secure
            else http.client.HTTPConnection(host, int(port), timeout=10)
        )
        mine = latencies[slot]
        start_line.wait()
        try:
            while time.perf_counter() < deadline:
                one = headers[next(next_index) % count]
                began = time.perf_counter()
                connection.request("GET", path, headers=one)
                response = connection.getresponse()
                response.read()
                mine.append(time.perf_counter() - began)
                if response.status != 200:
                    failures[slot] += 1
        except (OSError, http.client.HTTPException):
            failures[slot] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(connections)]
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
        latency_ms={
            p: samples[min(len(samples) - 1, int(len(samples) * p / 100))] * 1000
            for p in PERCENTILES
        },
        failures=sum(failures),
    )


def run_load(
    kind: str,
    base_url: str,
    path: str,
    headers: Sequence[Headers],
    *,
    connections: int,
    duration: float,
    tls: ssl.SSLContext | None = None,
) -> LoadResult:
    if kind == "wrk":
        # wrk checks no certificate: the loopback authority is the run's own.
        result = run_wrk(base_url, path, headers, connections=connections, duration=duration)
    else:
        result = run_python(
            base_url, path, headers, connections=connections, duration=duration, tls=tls
        )
    if result.failures:
        raise LoadError(
            f"{path}: {result.failures} request(s) failed or were not answered "
            f"200 out of {result.requests}"
        )
    return result
