"""The add-on in someone else's app: their ACL names scopes and groups, and a denial
names the scopes that would have granted it."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import webtest
from pyramid.authorization import ALL_PERMISSIONS, Allow, Authenticated, Deny
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPForbidden

from okta_pyramid.permissions import Root, scopes_granting
from okta_pyramid.principals import group, scope

from .helpers import webtest_app
from .issuer import LoopbackIssuer


class Reports:
    """A child of the root: its ACL adds to the root's through the lineage."""

    __name__ = "reports"
    __acl__: ClassVar[list[tuple[str, str, Any]]] = [
        (Deny, scope("reports:banned"), ALL_PERMISSIONS),
        (Allow, scope("reports:read"), "view_reports"),
        (Allow, scope("reports:admin"), "view_reports"),
        (Allow, group("Auditors"), "view_reports"),
        (Allow, Authenticated, "list_reports"),
    ]

    def __init__(self, request: Any) -> None:
        self.__parent__ = Root(request)


def test_scopes_granting_reads_the_lineage() -> None:
    reports = Reports(None)
    assert scopes_granting(reports, "view_reports") == ["reports:admin", "reports:read"]
    assert scopes_granting(reports, "list_reports") == []
    assert scopes_granting(reports, "nothing") == []
    assert scopes_granting(Root(None), "view_reports") == []


@pytest.fixture
def addon_app(config: Configurator) -> webtest.TestApp:
    config.add_route("reports", "/reports", factory=Reports)
    config.add_view(
        lambda request: {"ok": True},
        route_name="reports",
        renderer="json",
        permission="view_reports",
    )
    config.add_route("refuse", "/refuse", factory=Reports)

    def refuse(request: Any) -> Any:
        raise HTTPForbidden("not today")

    config.add_view(refuse, route_name="refuse", permission="list_reports")
    return webtest_app(config)


def token(issuer: LoopbackIssuer, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.mint(**claims)}"}


@pytest.mark.parametrize(
    "claims",
    [
        {"scp": ["reports:read"]},
        {"scope": "reports:admin"},
        {"groups": ["Auditors"]},
    ],
)
def test_any_granting_principal_is_enough(
    addon_app: webtest.TestApp, issuer: LoopbackIssuer, claims: dict[str, Any]
) -> None:
    addon_app.get("/reports", headers=token(issuer, **claims), status=200)


def test_a_denial_names_every_scope_that_would_grant(
    addon_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    response = addon_app.get("/reports", headers=token(issuer, scp=["openid"]), status=403)
    assert 'scope="reports:admin reports:read"' in response.headers["WWW-Authenticate"]
    assert response.json["scope"] == "reports:admin reports:read"


def test_a_deny_entry_wins_over_a_grant(addon_app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    claims = {"scp": ["reports:read", "reports:banned"]}
    addon_app.get("/reports", headers=token(issuer, **claims), status=403)


def test_a_forbidden_raised_by_a_view_names_no_scope(
    addon_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    response = addon_app.get("/refuse", headers=token(issuer), status=403)
    assert response.json["error"] == "insufficient_scope"
    assert "scope=" not in response.headers["WWW-Authenticate"]
    assert "not today" not in response.text
    addon_app.get("/refuse", status=401)
