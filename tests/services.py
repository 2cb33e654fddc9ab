"""Real programs the tests start on loopback: redis-server and nginx (Debian's), and
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
import socket
import subprocess
import sys
import threading
import time
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

    def __init__(self, directory: Path) -> None:
        self.executable = program("redis-server", "redis-server")
        self.directory = directory
        self.port = free_port()
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

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)


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
