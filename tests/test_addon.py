"""okta_pyramid included into someone else's Pyramid app (the add-on path)."""
from __future__ import annotations

from typing import Any

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.security import NO_PERMISSION_REQUIRED

from okta_pyramid.permissions import AUTHENTICATED

from .issuer import LoopbackIssuer


def build(settings: dict[str, Any]) -> webtest.TestApp:
    with Configurator(settings=settings) as config:
        config.include("okta_pyramid")
        config.add_route("orders", "/orders")
        config.add_view(lambda request: {"orders": [], "user": request.authenticated_userid},
                        route_name="orders", renderer="json")
        config.add_route("status", "/status")
        config.add_view(lambda request: {"ok": True}, route_name="status", renderer="json",
                        permission=NO_PERMISSION_REQUIRED)
        config.add_route("reports", "/reports")
        config.add_view(lambda request: {"reports": []}, route_name="reports",
                        renderer="json", permission=AUTHENTICATED)
    return webtest.TestApp(config.make_wsgi_app())


def test_protect_all_covers_views_without_a_permission(settings: dict[str, Any],
                                                       issuer: LoopbackIssuer) -> None:
    app = build(settings)
    app.get("/orders", status=401)
    app.get("/status", status=200)
    response = app.get("/orders", headers={"Authorization": "Bearer " + issuer.mint()})
    assert response.json == {"orders": [], "user": "alice@example.com"}


def test_per_view_protection(settings: dict[str, Any], issuer: LoopbackIssuer) -> None:
    app = build({**settings, "okta.protect_all": "false"})
    app.get("/orders", status=200)  # no permission asked: public in this mode
    app.get("/reports", status=401)
    app.get("/reports", headers={"Authorization": "Bearer " + issuer.mint()}, status=200)


def test_the_addon_adds_no_demo_routes(settings: dict[str, Any]) -> None:
    app = build(settings)
    app.get("/api/hello", status=404)


def test_missing_issuer_stops_start_up() -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.issuer:"):
        build({})
