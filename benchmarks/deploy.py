"""Behind nginx: several processes, and what the shared store costs.

1. ``/api/whoami`` with one reused token, through nginx over https
   (deploy/nginx/okta_pyramid.conf, as the deployment tests run it), with one
   waitress process upstream and then with two; the processes share one Redis.
2. In process, the same run: a DPoP request's check (cached token, new ES256
   proof) with the in-process replay store, with the Redis one, and with the Redis
   one waiting for a replica (``okta.shared_store_min_replicas = 1``: ``WAIT 1``
   after the ``SET NX``, on a replica of the same Redis), in passes that take
   turns; the differences are the Redis round trip, and the replica's
   acknowledgement, per DPoP request.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from okta_pyramid.tokens import (
    AccessTokenVerifier,
    Credentials,
    DPoPVerifier,
    RedisStore,
    RequestVerifier,
    make_proof,
)
from okta_pyramid.tokens.schemes import DPOP

from .e2e import app_server
from .loadgen import bearer, run_load

ONE = "one process"
TWO = "two processes"
IN_PROCESS = "DPoP check, in-process replay store"
REDIS = "DPoP check, Redis replay store"
REDIS_WAIT = "DPoP check, Redis replay store, okta.shared_store_min_replicas = 1"
URL = "https://api.example.com/api/whoami"


@dataclass
class DeployResult:
    loadgen: str
    connections: int
    duration: float
    rps: dict[str, float] = field(default_factory=dict)
    p50_ms: dict[str, float] = field(default_factory=dict)
    micros: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def redis_micros(self) -> float:
        return self.micros[REDIS] - self.micros[IN_PROCESS]

    @property
    def wait_micros(self) -> float:
        """What waiting for one replica adds to a DPoP request."""
        return self.micros[REDIS_WAIT] - self.micros[REDIS]

    @property
    def wait_ratio(self) -> float:
        """The check with ``min_replicas = 1`` against the one with 0."""
        return self.micros[REDIS_WAIT] / self.micros[REDIS]


def missing() -> str | None:
    """What this part needs and the machine lacks, or ``None``."""
    absent = [
        name
        for name in ("redis-server", "nginx")
        if shutil.which(name) is None and shutil.which(name, path="/usr/sbin") is None
    ]
    return " and ".join(absent) + " not installed" if absent else None


def run(
    issuer: Any,
    tls: Any,
    token: str,
    *,
    loadgen: str,
    connections: int,
    duration: float,
    proofs: int,
    rounds: int,
    threads: int,
    env: dict[str, str],
    progress: Callable[[str], None],
) -> DeployResult:
    from tests.services import RedisSentinels, RedisServer, free_port, wait_for_port
    from tests.test_deploy import Nginx, site_config

    result = DeployResult(loadgen, connections, duration)
    why = missing()
    if why is not None:
        result.skipped = why
        return result
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="okta-bench-")))
        redis = RedisServer(work)
        stack.callback(redis.stop)
        (work / "replica").mkdir()
        replica = RedisServer(work / "replica", "--replicaof", "127.0.0.1", str(redis.port))
        stack.callback(replica.stop)
        servers = [
            stack.enter_context(
                app_server(
                    issuer.issuer, cache_size=1000, threads=threads, env=env, shared_store=redis.url
                )
            )
            for _ in range(2)
        ]
        for name, upstream in ((ONE, servers[:1]), (TWO, servers)):
            directory = work / name.replace(" ", "-")
            directory.mkdir()
            port = free_port()
            nginx = Nginx(
                directory,
                site_config(
                    [server.base_url.removeprefix("http://") for server in upstream],
                    port,
                    free_port(),
                    tls,
                ),
            )
            try:
                wait_for_port(port)
                url = f"https://127.0.0.1:{port}"
                progress(f"/api/whoami through nginx, {name}")
                load = run_load(
                    loadgen,
                    url,
                    "/api/whoami",
                    bearer([token]),
                    connections=connections,
                    duration=duration,
                    tls=tls.client_context(),
                )
            finally:
                nginx.stop()
            result.rps[name] = load.rps
            result.p50_ms[name] = load.latency_ms[50]
        progress("DPoP checks: in-process replay store against Redis, and a replica's wait")
        RedisSentinels.wait_replicated(redis, 1)
        result.micros = _dpop_micros(
            issuer,
            tls,
            RedisStore(redis.url),
            # What the wait costs is measured, not how long it may take: a busy
            # machine (the smoke run beside the test suite) can hold a replica's
            # acknowledgement past the default's 250 ms, which would end the run.
            RedisStore(redis.url, min_replicas=1, timeout=10),
            proofs,
            rounds,
        )
    return result


def _dpop_micros(
    issuer: Any, tls: Any, store: RedisStore, waiting: RedisStore, proofs: int, rounds: int
) -> dict[str, float]:
    import requests

    key = ec.generate_private_key(ec.SECP256R1())
    jkt = DPoPVerifier().verify(make_proof(key, "GET", URL), "GET", URL).jkt
    token = issuer.mint(cnf={"jkt": jkt})
    session = requests.Session()
    session.verify = str(tls.ca_file)
    tokens = AccessTokenVerifier(issuer.issuer, issuer.audience, session=session)
    tokens.verify_token(token)
    checks = {
        IN_PROCESS: RequestVerifier(tokens, DPoPVerifier()),
        REDIS: RequestVerifier(tokens, DPoPVerifier(replay_store=store.replays)),
        REDIS_WAIT: RequestVerifier(tokens, DPoPVerifier(replay_store=waiting.replays)),
    }
    credentials = Credentials(DPOP, token)
    timings: dict[str, list[float]] = {name: [] for name in checks}
    for _ in range(rounds):
        # Both passes check proofs of the same kind, each its own (a proof is new once).
        for name, check in checks.items():
            batch = [(make_proof(key, "GET", URL, access_token=token),) for _ in range(proofs)]
            started = time.perf_counter()
            for proof in batch:
                check.check(credentials, "GET", URL, proof)
            timings[name].append((time.perf_counter() - started) / proofs * 1e6)
    return {name: statistics.median(values) for name, values in timings.items()}


def table(result: DeployResult) -> str:
    if result.skipped:
        return f"Skipped: {result.skipped}."
    base = result.rps[ONE]
    lines = ["| upstream | requests/s | × one process | p50 ms |", "| --- | ---: | ---: | ---: |"]
    for name in (ONE, TWO):
        lines.append(
            f"| {name} | {result.rps[name]:,.0f} | {result.rps[name] / base:.2f} | "
            f"{result.p50_ms[name]:.2f} |"
        )
    lines += ["", "| check | µs |", "| --- | ---: |"]
    for name in (IN_PROCESS, REDIS, REDIS_WAIT):
        lines.append(f"| {name} | {result.micros[name]:.1f} |")
    lines.append(f"| the Redis round trip per DPoP request | {result.redis_micros:.1f} |")
    lines.append(
        f"| the replica's acknowledgement per DPoP request (WAIT 1) | {result.wait_micros:.1f} |"
    )
    lines.append(f"| the check with min_replicas = 1, × with 0 | {result.wait_ratio:.2f} |")
    return "\n".join(lines)
