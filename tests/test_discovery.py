"""Discovery as clients do it, against real servers: an RFC 9728 client that knows
only the API's URL, `make run`'s development.ini served by pserve; and the API
mounted under a path by waitress's ``url_prefix`` (RFC 9728 §3.1)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from .issuer import LoopbackIssuer
from .services import PSERVE, ROOT, Server, environment, free_port, wait_for_port

pytestmark = pytest.mark.e2e

WELL_KNOWN = "/.well-known/oauth-protected-resource"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def challenges(header: str) -> dict[str, dict[str, str]]:
    """``WWW-Authenticate`` read as RFC 9110 §11.6.1 says: each scheme, then its
    ``name=value`` parameters (tokens or quoted strings), separated by commas."""
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    pos = 0
    while pos < len(header):
        if header[pos] in " ,":
            pos += 1
            continue
        token = _TOKEN.match(header, pos)
        assert token is not None, header[pos:]
        pos = token.end()
        rest = header[pos:].lstrip(" ")
        if rest.startswith("="):
            pos = len(header) - len(rest) + 1
            while header[pos] == " ":
                pos += 1
            quoted = _QUOTED.match(header, pos)
            value = quoted or _TOKEN.match(header, pos)
            assert value is not None and current is not None, header[pos:]
            current[token.group().lower()] = (
                re.sub(r"\\(.)", r"\1", quoted.group(1)) if quoted else value.group()
            )
            pos = value.end()
        else:
            current = found[token.group().lower()] = {}
    return found


def session() -> requests.Session:
    client = requests.Session()
    client.trust_env = False  # loopback, whatever proxy the machine has
    return client


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[str]:
    """`make run`: development.ini (the development issuer included) under pserve, on a
    free port, with its keys in the test's directory."""
    port = free_port()
    ini, count = re.subn(
        r"(?m)^http_port = \d+$", f"http_port = {port}", (ROOT / "development.ini").read_text()
    )
    assert count == 1
    (tmp_path / "development.ini").write_text(ini)
    process = subprocess.Popen(
        [PSERVE, "development.ini"],
        cwd=tmp_path,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port)
        yield f"http://localhost:{port}"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
        assert "Traceback" not in stderr


def authorization_server_metadata(client: requests.Session, issuer: str) -> dict:
    """RFC 8414 §3.1's URL (the well-known path inserted before the issuer's path),
    then the forms OpenID Connect Discovery and Okta use (appended): as MCP clients
    look for it."""
    parts = urlsplit(issuer)
    root = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    for url in (
        f"{root}/.well-known/oauth-authorization-server{path}",
        f"{root}/.well-known/openid-configuration{path}",
        f"{root}{path}/.well-known/oauth-authorization-server",
        f"{root}{path}/.well-known/openid-configuration",
    ):
        response = client.get(url, timeout=10)
        if response.status_code == 200:
            metadata = response.json()
            assert metadata["issuer"] == issuer  # RFC 8414 §3.3
            return metadata
    raise AssertionError(f"no authorization server metadata for {issuer}")


def test_a_client_that_knows_only_the_apis_url(make_run: str) -> None:
    client = session()
    api = make_run + "/api/messages"
    # 1. A request without a token: the 401 says where the metadata is.
    refused = client.get(api, timeout=10)
    assert refused.status_code == 401
    bearer = challenges(refused.headers["WWW-Authenticate"])["bearer"]
    metadata_url = bearer["resource_metadata"]
    assert bearer["scope"] == "messages:read"
    # 2. The metadata, and RFC 9728 §3.3: its resource is the URL the client derives
    #    from the metadata URL (the well-known path taken out), and the API's URL
    #    starts with it.
    parts = urlsplit(metadata_url)
    assert parts.path.startswith(WELL_KNOWN)
    derived = f"{parts.scheme}://{parts.netloc}{parts.path[len(WELL_KNOWN) :]}"
    document = client.get(metadata_url, timeout=10).json()
    assert document["resource"] == derived
    assert api.startswith(document["resource"])
    assert "messages:read" in document["scopes_supported"]
    # 3. The authorization server's own metadata (RFC 8414).
    issuer = document["authorization_servers"][0]
    server = authorization_server_metadata(client, issuer)
    assert "client_credentials" in server["grant_types_supported"]
    assert "client_secret_basic" in server["token_endpoint_auth_methods_supported"]
    # 4. A token there, for the scope the challenge named (development.ini's client).
    answer = client.post(
        server["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": bearer["scope"]},
        auth=("okta-pyramid-dev", "dev-secret-loopback-only"),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    # 5. The call, now answered.
    called = client.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert called.status_code == 200, called.text


def test_the_challenge_parser_reads_what_the_api_sends() -> None:
    header = (
        'Bearer realm="api", error="invalid_token", error_description="a, b = c", '
        'resource_metadata="https://h/.well-known/oauth-protected-resource/x", '
        'DPoP realm="api", algs="ES256 EdDSA"'
    )
    assert challenges(header) == {
        "bearer": {
            "realm": "api",
            "error": "invalid_token",
            "error_description": "a, b = c",
            "resource_metadata": "https://h/.well-known/oauth-protected-resource/x",
        },
        "dpop": {"realm": "api", "algs": "ES256 EdDSA"},
    }


def test_mounted_under_a_path_by_waitress(
    pserve: Callable[..., Server], issuer: LoopbackIssuer
) -> None:
    # production.ini with WAITRESS_URL_PREFIX: waitress makes /orders the SCRIPT_NAME.
    # The proxy is trusted for the Host (the tests call the process directly).
    server = pserve(
        OKTA_ISSUER=issuer.issuer,
        OKTA_AUDIENCE=issuer.audience,
        WAITRESS_URL_PREFIX="/orders",
    )
    client = session()
    refused = client.get(server.url + "/orders/api/whoami", timeout=10)
    assert refused.status_code == 401
    pointer = challenges(refused.headers["WWW-Authenticate"])["bearer"]["resource_metadata"]
    assert pointer == f"{server.url}{WELL_KNOWN}/orders"
    # What the proxy routes the path-inserted URL to: the app's own document.
    document = client.get(f"{server.url}/orders{WELL_KNOWN}", timeout=10).json()
    assert document["resource"] == f"{server.url}/orders"
    assert document["authorization_servers"] == [issuer.issuer]
    token = issuer.mint()
    assert (
        client.get(
            server.url + "/orders/api/whoami",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).status_code
        == 200
    )
