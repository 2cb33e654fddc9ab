"""The Postman collection, run by newman against a real ``pserve development.ini``.

The server is the shipped development configuration, copied next to a fresh keys
folder with only its port changed, so the run needs no Okta org and no network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from .services import ROOT, free_port

pytestmark = pytest.mark.e2e

NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
COLLECTION = ROOT / "postman" / "okta_pyramid.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "dev_issuer.postman_environment.json"
START_TIMEOUT = 30


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``pserve development.ini`` on a free port; yields its URL and its log file."""
    port = free_port()
    ini, count = re.subn(
        r"(?m)^http_port = \d+$", f"http_port = {port}", (ROOT / "development.ini").read_text()
    )
    assert count == 1, "development.ini sets http_port once, in [DEFAULT]"
    (tmp_path / "development.ini").write_text(ini)
    pserve = shutil.which("pserve", path=str(Path(sys.executable).parent))
    assert pserve, "pserve comes with pyramid"
    log = tmp_path / "pserve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [pserve, "development.ini"], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )
    base_url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                pytest.fail(f"pserve exited with {server.returncode}:\n{log.read_text()}")
            try:
                if requests.get(f"{base_url}/api/hello", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"pserve did not answer in {START_TIMEOUT}s:\n{log.read_text()}")
            time.sleep(0.2)
        yield base_url, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def user_refresh_token(base_url: str) -> str:
    """Sign a user in as a command-line client of ``okta-pyramid-spa`` would (RFC 8252:
    a loopback redirect URI, on a port of its choosing; PKCE) by filling in the
    issuer's login page, and return the refresh token: what newman, which cannot
    click, starts the collection's user requests from."""
    issuer = f"{base_url}/oauth2/default"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect_uri = "http://127.0.0.1:8765/callback"
    browser = requests.Session()
    page = browser.get(
        f"{issuer}/v1/authorize",
        params={
            "client_id": "okta-pyramid-spa",
            "response_type": "code",
            "scope": "openid profile offline_access api.read",
            "redirect_uri": redirect_uri,
            "state": "newman",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        },
        timeout=10,
    )
    assert page.status_code == 200, page.text
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text))
    scopes = re.findall(r'name="scope" value="([^"]*)"', page.text)
    answer = browser.post(
        f"{issuer}/v1/login",
        data=[*form.items(), ("username", "newman@example.com"), ("groups", "")]
        + [("scope", scope) for scope in scopes],
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == ["newman"]
    tokens = requests.post(
        f"{issuer}/v1/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "okta-pyramid-spa",
            "code": query["code"][0],
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
        },
        timeout=10,
    ).json()
    return str(tokens["refresh_token"])


def test_postman_collection_passes_under_newman(dev_server: tuple[str, Path], tmp_path):
    base_url, log = dev_server
    if not NEWMAN.exists():
        pytest.fail("newman is not installed: run `npm ci` (make test does)")
    refresh_token = user_refresh_token(base_url)
    result = subprocess.run(
        [
            str(NEWMAN),
            "run",
            str(COLLECTION),
            "--environment",
            str(ENVIRONMENT),
            "--env-var",
            f"baseUrl={base_url}",
            "--env-var",
            f"issuer={base_url}/oauth2/default",
            "--env-var",
            f"refreshToken={refresh_token}",
            "--color",
            "off",
            "--timeout-request",
            "10000",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(tmp_path / "run.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"newman failed:\n{result.stdout}\n{result.stderr}"

    run = json.loads((tmp_path / "run.json").read_text())["run"]
    assert run["stats"]["requests"]["total"] == 13
    assert run["stats"]["assertions"]["failed"] == 0
    assert run["stats"]["assertions"]["total"] >= 19
    # The user's requests ran (not skipped): the refresh and the reuse were seen.
    names = [execution["item"]["name"] for execution in run["executions"]]
    assert "User: a rotated refresh token used again is refused" in names

    server_log = log.read_text()
    assert "DEVELOPMENT ISSUER ENABLED" in server_log
    assert "token issued: client_id=okta-pyramid-dev" in server_log
    # The revocation flow: the write after the revocation was refused by introspection.
    assert "token revoked: jti=" in server_log
    assert "token rejected: reason=inactive" in server_log
    # The user's part: signed in, refreshed, and the reused refresh token revoked its family.
    assert "token issued: client_id=okta-pyramid-spa user='newman@example.com'" in server_log
    assert "refresh token reused: revoked its family" in server_log
    # No log line carries a token (every JWT starts with a base64url '{"').
    assert "eyJ" not in server_log
