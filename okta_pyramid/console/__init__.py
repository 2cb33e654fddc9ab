"""The developer console: a static page that calls the API from a browser.

``okta.console = true`` serves it at ``/console/``. A developer pastes an access
token and an API base URL, calls ``/api/hello`` and ``/api/whoami`` with
``fetch``, and sees the status, the readable headers and the JSON body, plus the
token's claims decoded in the page (unverified). Pointed at an API on another
origin it shows whether that API's CORS settings let this page read the answer.

The page is public (a browser loads it without a token) and holds no secrets; the
token never leaves the page except in the ``Authorization`` header it sends.
"""

from __future__ import annotations

import logging
from importlib import resources

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPFound, HTTPNotFound
from pyramid.request import Request
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

log = logging.getLogger(__name__)

#: The files the console is made of, and their media types. Nothing else under
#: ``/console/`` is served, so the route cannot be walked to other package files.
ASSETS = {
    "index.html": "text/html",
    "console.js": "text/javascript",
    "console.css": "text/css",
}

# The page handles bearer tokens, so it runs only its own script and style (no
# inline code an injected string could use), may be framed by nobody, and sends
# no Referer. connect-src stays open: calling an API on any origin is its job.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src *; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _load() -> dict[str, bytes]:
    folder = resources.files(__name__)
    return {name: folder.joinpath(name).read_bytes() for name in ASSETS}


class ConsoleViews:
    """Serves the console's files from memory (they are read once, at start-up)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def asset(self, name: str) -> Response:
        if name not in self.files:
            raise HTTPNotFound()
        response = Response(body=self.files[name], content_type=ASSETS[name], charset="utf-8")
        response.headers.update(
            {
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
                "X-Frame-Options": "DENY",
            }
        )
        # Revalidate on every load so an upgraded package is seen at once.
        response.cache_control = "no-cache"
        return response

    def index(self, request: Request) -> Response:
        return self.asset("index.html")

    def file(self, request: Request) -> Response:
        return self.asset(request.matchdict["name"])

    def redirect(self, request: Request) -> Response:
        # The page loads its script and style by relative URL, so it must be
        # served from the folder URL.
        return HTTPFound(location=request.route_path("okta_console"))


def includeme(config: Configurator) -> None:
    """Serve the developer console at ``/console/`` (``okta.console = true``)."""
    views = ConsoleViews(_load())
    config.add_route("okta_console_bare", "/console")
    config.add_route("okta_console", "/console/")
    config.add_route("okta_console_file", "/console/{name}")
    for route, view in (
        ("okta_console_bare", views.redirect),
        ("okta_console", views.index),
        ("okta_console_file", views.file),
    ):
        config.add_view(
            view,
            route_name=route,
            request_method=("GET", "HEAD"),
            permission=NO_PERMISSION_REQUIRED,
        )
    log.info("developer console enabled at /console/")
