"""The app served for real: pserve and waitress in a subprocess, HTTP over loopback."""

from __future__ import annotations

import configparser
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .helpers import both_challenges
from .issuer import LoopbackIssuer
from .services import PSERVE, ROOT, free_port

pytestmark = pytest.mark.e2e


class Server:
    def __init__(self, base: str, process: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.process = process
        self.output = ""

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            self.output = self.process.communicate(timeout=10)[0].decode()
        return self.output


@pytest.fixture
def server(issuer: LoopbackIssuer, tmp_path: Path) -> Iterator[Server]:
    """development.ini with the issuer and port pointed at this test."""
    ini = configparser.RawConfigParser()
    ini.read(ROOT / "development.ini")
    ini["app:main"]["okta.issuer"] = issuer.issuer
    port = free_port()
    ini["server:main"]["listen"] = f"127.0.0.1:{port}"
    path = tmp_path / "test.ini"
    with path.open("w") as out:
        ini.write(out)
    process = subprocess.Popen(
        [PSERVE, str(path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    handle = Server(base, process)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base + "/api/hello", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    assert process.stdout is not None  # started with stdout=PIPE
                    raise AssertionError(process.stdout.read().decode()) from None
                time.sleep(0.1)
        yield handle
    finally:
        handle.stop()


def test_pserve_development_ini(server: Server, issuer: LoopbackIssuer) -> None:
    served = server.base
    assert requests.get(served + "/api/hello", timeout=10).status_code == 200
    denied = requests.get(served + "/api/whoami", timeout=10)
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"] == both_challenges(
        served + "/.well-known/oauth-protected-resource"
    )
    token = issuer.mint()
    response = requests.get(
        served + "/api/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["sub"] == "alice@example.com"
    expired = requests.get(
        served + "/api/whoami",
        headers={"Authorization": f"Bearer {issuer.mint(exp=1000)}"},
        timeout=10,
    )
    assert expired.status_code == 401
    assert "expired" in expired.headers["WWW-Authenticate"]
    log = server.stop()
    assert "token rejected: reason=expired client=127.0.0.1" in log
    for part in token.split("."):
        assert part not in log


def test_waitress_never_answers_500_to_odd_requests(server: Server) -> None:
    served = server.base
    odd = [
        {"Authorization": "Bearer " + "A" * 60000},
        {"Authorization": "Bearer a, Bearer b"},
        {"Authorization": "Bearer \x7f"},
    ]
    for headers in odd:
        response = requests.get(served + "/api/whoami", headers=headers, timeout=10)
        assert 400 <= response.status_code < 500, headers
        assert "Traceback" not in response.text
