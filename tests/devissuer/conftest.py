"""Fixtures: the application with its development issuer, served by waitress on
loopback so the resource server fetches discovery and keys from itself over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest
from webtest.http import StopableWSGIServer

from okta_pyramid.app import main

from .helpers import DevServer, dev_settings


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
