"""Real programs the tests start on loopback: redis-server, redis-sentinel,
redis-cli and nginx (Debian's), and
`pserve production.ini` configured by the environment (the ``pserve`` fixture of
tests/conftest.py starts it and stops it after the test).

In CI (``CI`` set) a missing program fails the tests that need it, with a message
naming the package; elsewhere those tests are skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

#: The project: where production.ini and development.ini are.
ROOT = Path(__file__).resolve().parent.parent
PSERVE = str(Path(sys.executable).with_name("pserve"))
SERVING = re.compile(r"Serving on (http://127\.0\.0\.1:\d+)")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def program(name: str, package: str) -> str:
    """The path of ``name``, or skip (fail in CI) saying which package brings it."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        message = (
            f"{name} is not installed: apt-get install {package} "
            f"(`make test` installs it when CI is set)"
        )
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cluster_port() -> int:
    """A free port for a cluster node whose bus port (the port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 <= 65535:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


def wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class RedisServer:
    """A redis-server on a loopback port, with no persistence; it can be stopped and
    started again on the same port."""

    def __init__(self, directory: Path, *options: str, port: int | None = None) -> None:
        self.executable = program("redis-server", "redis-server")
        self.directory = directory
        #: More of redis-server's options (``--replicaof``, ``--cluster-enabled``...).
        self.options = options
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--protected-mode",
                "yes",
                "--loglevel",
                "warning",
                *self.options,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        """End it at once, as a machine's loss would (no goodbye to its replicas)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        """Stop it answering (SIGSTOP), its connections open: a Redis that hangs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


class RedisSentinels:
    """A primary, its replicas and three sentinels on loopback, watching the
    primary as ``mymaster``. A failover takes a few seconds: a sentinel judges the
    primary down after :attr:`DOWN_AFTER_MS`."""

    SERVICE = "mymaster"
    DOWN_AFTER_MS = 1000
    FAILOVER_TIMEOUT_MS = 3000

    def __init__(self, directory: Path, replicas: int = 1, sentinels: int = 3) -> None:
        self.sentinel = program("redis-sentinel", "redis-sentinel")
        self.directory = directory
        # A replica's first copy starts at once (Redis waits 5 s for more replicas
        # to share a diskless one); each may become the primary.
        now = ("--repl-diskless-sync-delay", "0")
        self.primary = RedisServer(directory, *now)
        self.replicas = [
            RedisServer(directory, *now, "--replicaof", "127.0.0.1", str(self.primary.port))
            for _ in range(replicas)
        ]
        self.servers = [self.primary, *self.replicas]
        self.ports = [free_port() for _ in range(sentinels)]
        self.processes: list[subprocess.Popen] = []
        for index, port in enumerate(self.ports):
            config = directory / f"sentinel-{index}.conf"  # sentinel rewrites it
            config.write_text(
                f"port {port}\n"
                f"bind 127.0.0.1\n"
                f"dir {directory}\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} {self.DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {self.SERVICE} {self.FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {self.SERVICE} {max(1, replicas)}\n"
            )
            self.processes.append(
                subprocess.Popen(
                    [self.sentinel, str(config), "--loglevel", "warning"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            wait_for_port(port)
        self.wait_replicated(self.primary, len(self.replicas))

    def wait_ready_for_failover(self) -> None:
        """Until each sentinel has found the replicas and the other sentinels (they
        say hello every two seconds): before that, no failover can be agreed."""

        def found() -> bool:
            masters = [
                self.sentinel_client(port).sentinel_master(self.SERVICE) for port in self.ports
            ]
            return all(
                master["num-slaves"] == len(self.replicas)
                and master["num-other-sentinels"] == len(self.ports) - 1
                for master in masters
            )

        wait_until(found, 20, "the sentinels did not find each other and the replicas")

    def url(self, scheme: str = "redis+sentinel", userinfo: str = "") -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        return f"{scheme}://{userinfo}{hosts}/{self.SERVICE}"

    def sentinel_client(self, port: int):
        import redis

        return redis.Redis(port=port, socket_timeout=5)

    def primary_port(self) -> int:
        """The primary's port, as the first sentinel names it."""
        _, port = self.sentinel_client(self.ports[0]).sentinel_get_master_addr_by_name(self.SERVICE)
        return int(port)

    def server_on(self, port: int) -> RedisServer:
        [server] = [server for server in self.servers if server.port == port]
        return server

    @staticmethod
    def wait_replicated(primary: RedisServer, replicas: int, timeout: float = 20) -> None:
        """Until ``replicas`` replicas of ``primary`` are online (their first copy made)."""

        def online() -> bool:
            info = primary.client().info("replication")
            states = [info.get(f"slave{i}", {}).get("state") for i in range(replicas)]
            return states == ["online"] * replicas

        wait_until(online, timeout, "the replicas did not come online")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                process.wait(10)
        for server in self.servers:
            if server.process is not None:
                server.resume()
            server.stop()


class RedisClusterServers:
    """Three primaries (no replicas) of a Redis Cluster on loopback, made with
    ``redis-cli --cluster create``. Each serves its slots while another is down
    (``cluster-require-full-coverage no``, as docs/deployment.md says)."""

    def __init__(self, directory: Path, nodes: int = 3) -> None:
        cli = program("redis-cli", "redis-tools")
        self.nodes = []
        for index in range(nodes):
            home = directory / f"node-{index}"
            home.mkdir()
            self.nodes.append(
                RedisServer(
                    home,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(home / "nodes.conf"),
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-require-full-coverage",
                    "no",
                    port=cluster_port(),
                )
            )
        created = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        wait_until(
            lambda: all(
                node.client().cluster("info")["cluster_state"] == "ok" for node in self.nodes
            ),
            30,
            "the cluster did not come up",
        )

    def url(self, scheme: str = "redis+cluster", userinfo: str = "") -> str:
        return f"{scheme}://{userinfo}" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def owner(self, key: str) -> RedisServer:
        """The node whose slots hold ``key``, as the live nodes say."""
        live = next(node for node in self.nodes if node.process is not None)
        client = live.client()
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return next(node for node in self.nodes if node.port == int(primary[1]))
        raise AssertionError(f"no node serves slot {slot}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


# -- pserve production.ini ------------------------------------------------------------


def environment(**values: str) -> dict[str, str]:
    """This process's environment without deployment variables, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OKTA_", "WAITRESS_"))}
    # The port is chosen when the server starts, so no public URL can be given before;
    # the tests call each process directly, so its Host is the URL they call.
    env.update(
        {
            "WAITRESS_LISTEN": "127.0.0.1:0",
            "PYTHONUNBUFFERED": "1",
            "OKTA_PUBLIC_URL": "from-proxy",
            **values,
        }
    )
    # The loopback issuer must be reached directly even where an HTTP proxy is set.
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1", "localhost"]))
    return env


@dataclass
class Server:
    """A `pserve production.ini` process; ``lines`` are what it wrote to stderr."""

    process: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    #: Set once the process names its URL, or once its stderr ends.
    serving: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def launch(cls, **env: str) -> Server:
        """Start `pserve production.ini` with ``env`` (see :func:`environment`) and
        read what it writes; :meth:`wait_serving` waits for its URL."""
        process = subprocess.Popen(
            [PSERVE, "production.ini"],
            cwd=ROOT,
            env=environment(**env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        server = cls(process)
        server.reader = threading.Thread(target=server._drain, daemon=True)
        server.reader.start()
        return server

    def _drain(self) -> None:
        assert self.process.stderr is not None  # launched with stderr=PIPE
        for raw in self.process.stderr:
            line = raw.rstrip("\n")
            self.lines.append(line)
            match = SERVING.search(line)
            if match:
                self.url = match.group(1)
                self.serving.set()
        self.serving.set()

    def wait_serving(self, timeout: float = 30) -> None:
        self.serving.wait(timeout)
        assert self.url, f"pserve did not start:\n{self.stderr}"

    def stop(self) -> None:
        """End the server and collect all it wrote."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(10)
        if self.reader is not None:
            self.reader.join(10)
        assert self.process.stderr is not None  # launched with stderr=PIPE
        self.process.stderr.close()

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def get(self, path: str, **kw) -> requests.Response:
        with requests.Session() as session:
            session.trust_env = False  # straight to the server, never via a proxy
            return session.get(self.url + path, timeout=10, **kw)


def wait_ready(server: Server, timeout: float = 10) -> requests.Response:
    """The first 200 from ``/readyz``, or the last answer once ``timeout`` is over."""
    deadline = time.monotonic() + timeout
    while True:
        response = server.get("/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.05)
