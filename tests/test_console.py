"""The developer console page: off unless asked for, public, and locked down."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import webtest
from pyramid.exceptions import ConfigurationError

from okta_pyramid.app import main
from okta_pyramid.console import ASSETS, CONTENT_SECURITY_POLICY
from okta_pyramid.settings import parse_settings


@pytest.fixture
def console(make_app: Callable[..., webtest.TestApp]) -> webtest.TestApp:
    return make_app(console="true")


def test_console_is_off_by_default(app: webtest.TestApp) -> None:
    assert (
        parse_settings({"okta.issuer": "https://example.okta.com/oauth2/default"}).console is False
    )
    app.get("/console/", status=404)
    app.get("/console/console.js", status=404)


@pytest.mark.parametrize("value", ["maybe", "2", "on please"])
def test_a_wrong_console_value_stops_start_up(settings: dict[str, Any], value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.console: must be true or false"):
        main({}, **settings, **{"okta.console": value})


def test_console_page_is_public_even_when_everything_is_protected(
    make_app: Callable[..., webtest.TestApp],
) -> None:
    console = make_app(console="true", protect_all="true")
    page = console.get("/console/", status=200)
    assert page.content_type == "text/html"
    assert '<script src="console.js" defer></script>' in page.text
    assert 'id="token"' in page.text and 'data-path="/api/whoami"' in page.text
    # A bad Authorization header does not turn the page into a 401 either.
    console.get("/console/", headers={"Authorization": "Bearer nonsense"}, status=200)
    # ... while the API next to it stays protected.
    console.get("/api/whoami", status=401)


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_console_files_are_served_with_their_type_and_a_strict_policy(
    console: webtest.TestApp, name: str
) -> None:
    response = console.get(f"/console/{name}", status=200)
    assert response.content_type == ASSETS[name]
    assert response.charset == "utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    console.head(f"/console/{name}", status=200)


def test_policy_allows_no_inline_or_foreign_code() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    # Calling APIs on other origins is the page's purpose.
    assert directives["connect-src"] == "*"


def test_console_page_has_no_inline_script_or_style(console: webtest.TestApp) -> None:
    page = console.get("/console/").text
    assert "<script>" not in page and "<style" not in page and " style=" not in page
    assert not re.search(r"\son[a-z]+\s*=", page)  # no onclick= or similar handlers


def test_console_without_trailing_slash_redirects(console: webtest.TestApp) -> None:
    response = console.get("/console", status=302)
    assert response.location.endswith("/console/")


@pytest.mark.parametrize(
    "path",
    [
        "/console/__init__.py",
        "/console/..%2f__init__.py",
        "/console/%2e%2e/settings.py",
        "/console/index.html.bak",
        "/console/nope.js",
    ],
)
def test_only_the_console_files_are_served(console: webtest.TestApp, path: str) -> None:
    console.get(path, status=404)


def test_console_only_answers_reads(console: webtest.TestApp) -> None:
    assert console.post("/console/", status=405).headers["Allow"] == "GET, HEAD"
