"""okta_pyramid included into someone else's Pyramid app (the add-on path)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.security import NO_PERMISSION_REQUIRED

from okta_pyramid.permissions import AUTHENTICATED

from .helpers import webtest_app
from .issuer import LoopbackIssuer


def build(config: Configurator) -> webtest.TestApp:
    config.add_route("orders", "/orders")
    config.add_view(
        lambda request: {"orders": [], "user": request.authenticated_userid},
        route_name="orders",
        renderer="json",
    )
    config.add_route("status", "/status")
    config.add_view(
        lambda request: {"ok": True},
        route_name="status",
        renderer="json",
        permission=NO_PERMISSION_REQUIRED,
    )
    config.add_route("reports", "/reports")
    config.add_view(
        lambda request: {"reports": []},
        route_name="reports",
        renderer="json",
        permission=AUTHENTICATED,
    )
    return webtest_app(config)


def test_protect_all_covers_views_without_a_permission(
    config: Configurator, issuer: LoopbackIssuer
) -> None:
    app = build(config)
    app.get("/orders", status=401)
    app.get("/status", status=200)
    response = app.get("/orders", headers={"Authorization": "Bearer " + issuer.mint()})
    assert response.json == {"orders": [], "user": "alice@example.com"}


def test_per_view_protection(
    make_config: Callable[..., Configurator], issuer: LoopbackIssuer
) -> None:
    app = build(make_config(protect_all="false"))
    app.get("/orders", status=200)  # no permission asked: public in this mode
    app.get("/reports", status=401)
    app.get("/reports", headers={"Authorization": "Bearer " + issuer.mint()}, status=200)


def test_the_addon_adds_no_demo_routes(config: Configurator) -> None:
    app = build(config)
    app.get("/api/hello", status=404)


def test_missing_issuer_stops_start_up(make_config: Callable[..., Configurator]) -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.issuer:"):
        make_config(issuer="")
