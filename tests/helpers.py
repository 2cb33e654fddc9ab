"""Small helpers shared by the tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import webtest
from pyramid.config import Configurator

# RFC 9449 §7.1: with okta.dpop = allowed (the default), a request without credentials
# is challenged with both schemes; DPoP's names the accepted proof algorithms.
BOTH_CHALLENGES = (
    'Bearer realm="api", DPoP realm="api", '
    'algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"'
)


def webtest_app(config: Configurator) -> webtest.TestApp:
    """The application configured so far, in WebTest."""
    return webtest.TestApp(config.make_wsgi_app(), extra_environ={"REMOTE_ADDR": "192.0.2.7"})


def run_together(
    target: Callable[..., Any], args: Iterable[tuple[Any, ...]], timeout: float = 30
) -> None:
    """Call ``target`` with each tuple of ``args`` in its own thread, all started
    before any is joined, and wait for every one of them."""
    threads = [threading.Thread(target=target, args=each) for each in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
