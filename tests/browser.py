"""What the browser tests share: Debian's headless Chromium driven by Selenium through
Debian's chromedriver, and WSGI applications served by waitress on loopback ports of
their own (so each is an origin of its own)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from waitress.server import create_server

from .services import in_ci

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")

# The flags Chromium needs on a machine with no display, no sandbox (root) and
# no network beyond loopback: background fetches to Google would only fail.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)


@contextmanager
def chromium(script_timeout: float = 15) -> Iterator[Any]:
    """A headless Chromium with a profile of its own, removed afterwards. Skips the
    test where Chromium is not installed, and fails it in CI, which must run it."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        message = (
            f"headless Chromium is not installed ({', '.join(missing)} missing): "
            "apt-get install chromium chromium-driver, or run make test as root with CI=true"
        )
        if in_ci():
            pytest.fail(f"{message}; CI must run the browser tests, so this fails", pytrace=False)
        pytest.skip(message)
    profile = tempfile.mkdtemp(prefix="okta-pyramid-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # An explicit driver path: Selenium then uses Debian's chromedriver (built with
    # this Chromium) and never runs Selenium Manager to download one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(script_timeout)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def listening_socket() -> socket.socket:
    """A socket listening on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


class Served:
    """A WSGI application served by waitress in a background thread."""

    def __init__(self, app: Any, sock: socket.socket, threads: int = 4) -> None:
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = create_server(app, sockets=[sock], threads=threads)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        # Close every channel and the trigger so waitress's loop finds its map
        # empty and returns, then stop the worker threads.
        self.server.logger.disabled = True
        while self.server._map:
            for channel in list(self.server._map.values()):
                channel.handle_close()
        self.server.task_dispatcher.shutdown()
        self.thread.join(5)
