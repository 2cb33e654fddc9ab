"""Fixtures: the application with its development issuer, served by waitress on
loopback so the resource server fetches discovery and keys from itself over HTTP."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import webtest
from webtest.http import StopableWSGIServer

from okta_pyramid.app import main

CLIENTS = """
svc-client    s3cret-value   api.read api.write
read-client   p@ss:w0rd!x    api.read
"""


def basic(client_id: str, secret: str) -> str:
    """An Authorization header value for client authentication (RFC 6749 §2.3.1)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@dataclass
class DevServer:
    """The app, served on ``base_url`` and wrapped in WebTest as ``app``."""

    base_url: str
    issuer: str
    keys_dir: Path
    settings: dict[str, Any]
    app: webtest.TestApp

    def token(
        self, client_id: str = "svc-client", secret: str = "s3cret-value", scope: str = "api.read"
    ) -> str:
        response = self.app.post(
            "/oauth2/default/v1/token",
            {"grant_type": "client_credentials", "scope": scope},
            headers={"Authorization": basic(client_id, secret)},
        )
        return response.json["access_token"]

    def whoami(self, token: str, status: int = 200) -> webtest.TestResponse:
        return self.app.get(
            "/api/whoami", headers={"Authorization": f"Bearer {token}"}, status=status
        )


def dev_settings(port: int, keys_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "pyramid.includes": "okta_pyramid.devissuer",
        "okta.issuer": f"http://127.0.0.1:{port}/oauth2/default",
        "okta.audience": "api://default",
        "okta.http_timeout": "2",
        # Every unknown kid may refetch, so a rotation is seen at once in tests.
        "okta.jwks_refetch_cooldown": "0",
        "devissuer.clients": CLIENTS,
        "devissuer.keys_dir": str(keys_dir),
        **extra,
    }


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., DevServer]]:
    """Start the app with extra settings on a free loopback port."""
    servers: list[StopableWSGIServer] = []

    def start(**extra: Any) -> DevServer:
        holder: dict[str, Any] = {}
        ready = threading.Event()

        def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
            ready.wait(5)
            return holder["app"](environ, start_response)

        # The app needs its own URL (okta.issuer) before it can be built, so the
        # server starts first and hands requests to the app once it exists.
        server = StopableWSGIServer.create(
            dispatch, host="127.0.0.1", expose_tracebacks=False, threads=4
        )
        servers.append(server)
        port = server.adj.port
        settings = dev_settings(port, tmp_path / "keys", **extra)
        holder["app"] = main({}, **settings)
        ready.set()
        # As a client of the served app would call it: from loopback, to its address.
        app = webtest.TestApp(
            holder["app"],
            extra_environ={"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": f"127.0.0.1:{port}"},
        )
        return DevServer(
            f"http://127.0.0.1:{port}", settings["okta.issuer"], tmp_path / "keys", settings, app
        )

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def dev(serve: Callable[..., DevServer]) -> DevServer:
    return serve()
