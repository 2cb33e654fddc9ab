from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import webtest
from pyramid.config import Configurator

from okta_pyramid import devissuer
from okta_pyramid.app import main
from okta_pyramid.tokens.refresher import KeyRefresher
from okta_pyramid.tokens.verifier import AccessTokenVerifier

from .issuer import LoopbackIssuer
from .services import RedisServer, Server


@pytest.fixture(autouse=True)
def stop_key_refreshers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Background key refreshers started by a test end with it, not with the run."""
    started: list[KeyRefresher] = []
    original = KeyRefresher.start

    def start(self: KeyRefresher) -> None:
        started.append(self)
        original(self)

    monkeypatch.setattr(KeyRefresher, "start", start)
    yield
    for refresher in started:
        refresher.stop(timeout=5)


@pytest.fixture(autouse=True)
def stop_key_prefetches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The development issuer's key prefetch threads started by a test end with it.
    In process (WebTest) its server never listens, so a prefetch would otherwise
    wait 30 s and then warn into whichever test is running by then."""
    stop = threading.Event()
    original = devissuer.wait_until_listening

    def wait(url: str, timeout: float, _: threading.Event | None = None) -> bool:
        return original(url, timeout, stop)

    monkeypatch.setattr(devissuer, "wait_until_listening", wait)
    yield
    stop.set()
    for thread in threading.enumerate():
        if thread.name == "devissuer-prefetch":
            thread.join(timeout=5)


@pytest.fixture
def issuer() -> Iterator[LoopbackIssuer]:
    server = LoopbackIssuer()
    yield server
    server.close()


@pytest.fixture
def settings(issuer: LoopbackIssuer) -> dict[str, Any]:
    return {
        "okta.issuer": issuer.issuer,
        "okta.audience": issuer.audience,
        "okta.http_timeout": "2",
        "okta.jwks_refetch_cooldown": "30",
        # Tests fetch keys when they ask for them; the refresher has its own tests.
        "okta.jwks_refresh_interval": "0",
    }


@pytest.fixture
def make_app(settings: dict[str, Any]) -> Callable[..., webtest.TestApp]:
    """Build the real application (main) with extra settings, wrapped in WebTest."""

    def factory(**extra: Any) -> webtest.TestApp:
        merged = {**settings, **{f"okta.{k}": v for k, v in extra.items()}}
        return webtest.TestApp(main({}, **merged), extra_environ={"REMOTE_ADDR": "192.0.2.7"})

    return factory


@pytest.fixture
def make_config(settings: dict[str, Any]) -> Iterator[Callable[..., Configurator]]:
    """A Configurator with the test settings (and ``okta.<key>`` extras) that has
    included the add-on: the test adds its own views, then wraps it with
    :func:`tests.helpers.webtest_app`."""
    configs: list[Configurator] = []

    def factory(**extra: Any) -> Configurator:
        merged = {**settings, **{f"okta.{k}": v for k, v in extra.items()}}
        config = Configurator(settings=merged)
        config.begin()
        configs.append(config)
        config.include("okta_pyramid")
        return config

    yield factory
    for config in configs:
        config.end()


@pytest.fixture
def config(make_config: Callable[..., Configurator]) -> Configurator:
    return make_config()


@pytest.fixture
def app(make_app: Callable[..., webtest.TestApp]) -> webtest.TestApp:
    return make_app()


@pytest.fixture
def verifier(issuer: LoopbackIssuer) -> AccessTokenVerifier:
    return AccessTokenVerifier(issuer.issuer, issuer.audience, http_timeout=2)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held by another listener for the length of the test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, for the whole run."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty database of :func:`redis_server` (started if it was stopped)."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture
def pserve() -> Iterator[Callable[..., Server]]:
    """Start `pserve production.ini` with environment variables (``OKTA_ISSUER=...``);
    every process started is stopped after the test."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        server = Server.launch(**env)
        started.append(server)
        server.wait_serving()
        return server

    yield start
    for server in started:
        server.stop()
