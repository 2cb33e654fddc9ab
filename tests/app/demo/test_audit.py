"""Auditing who may call what: pviews, proutes and pyramid.debug_authorization
show the permissions, run against the shipped development.ini."""

from __future__ import annotations

import itertools
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import webtest

from okta_pyramid.app import main

from ...issuer import LoopbackIssuer

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def ini(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The shipped development.ini, copied so the keys it generates (%(here)s/.devissuer)
    land in a temporary folder, never in the checkout."""
    path = tmp_path_factory.mktemp("audit") / "development.ini"
    shutil.copy(ROOT / "development.ini", path)
    return str(path)


def script(ini: str, name: str, *args: str) -> str:
    # The app starts without reaching the issuer, so the shipped ini is enough.
    done = subprocess.run(
        [sys.executable, "-m", f"pyramid.scripts.{name}", ini, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def views_of(output: str) -> dict[str, str | None]:
    """pviews output as {view callable: required permission or None}."""
    views: dict[str, str | None] = {}
    current = None
    lines = [line.strip() for line in output.splitlines()]
    for previous, line in itertools.pairwise(lines):
        if previous == "-----" and line:
            current = line
            views[current] = None
        elif current and line.startswith("required permission = "):
            views[current] = line.split(" = ", 1)[1]
    return views


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/api/messages",
            {
                "okta_pyramid.app.demo.messages.list_messages": "messages.read",
                "okta_pyramid.app.demo.messages.post_message": "messages.write",
            },
        ),
        ("/api/admin", {"okta_pyramid.app.demo.messages.admin": "admin"}),
        ("/api/whoami", {"okta_pyramid.app.demo.views.whoami": "authenticated"}),
        ("/api/hello", {"okta_pyramid.app.demo.views.hello": "__no_permission_required__"}),
    ],
)
def test_pviews_shows_each_views_permission(ini: str, path: str, expected: dict[str, str]) -> None:
    assert views_of(script(ini, "pviews", path)) == expected


def test_proutes_lists_the_protected_routes(ini: str) -> None:
    output = script(ini, "proutes")
    for name, pattern in [
        ("messages", "/api/messages"),
        ("admin", "/api/admin"),
        ("whoami", "/api/whoami"),
        ("hello", "/api/hello"),
    ]:
        assert any(line.split()[:2] == [name, pattern] for line in output.splitlines())


def test_debug_authorization_logs_the_permission_and_principals(
    issuer: LoopbackIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    app = webtest.TestApp(
        main({}, **{"okta.issuer": issuer.issuer, "pyramid.debug_authorization": "true"})
    )
    caplog.set_level(logging.DEBUG, logger="okta_pyramid")
    token = issuer.mint(scp=["messages:write"], groups=["Staff"])
    app.get("/api/messages", headers={"Authorization": f"Bearer {token}"}, status=403)
    [line] = [r.getMessage() for r in caplog.records if "debug_authorization" in r.getMessage()]
    assert "ACLDenied permission 'messages.read'" in line
    assert "'scope:messages:write'" in line and "'group:Staff'" in line
    assert token not in caplog.text

    caplog.clear()
    token = issuer.mint(scp=["messages:read"])
    app.get("/api/messages", headers={"Authorization": f"Bearer {token}"}, status=200)
    assert (
        "ACLAllowed permission 'messages.read' via ACE ('Allow', 'scope:messages:read'"
        in caplog.text
    )
