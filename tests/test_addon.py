"""okta_pyramid included into someone else's Pyramid app (the add-on path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import IRoutesMapper, ITweens
from pyramid.security import NO_PERMISSION_REQUIRED

from okta_pyramid.parts import OktaParts, okta_parts
from okta_pyramid.permissions import AUTHENTICATED

from . import tiny_app
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


def test_an_app_that_includes_only_the_addon_gets_nothing_it_did_not_ask_for(
    issuer: LoopbackIssuer,
) -> None:
    app = tiny_app.make_app(issuer.issuer, issuer.audience, own_root=True)
    tweens = app.registry.getUtility(ITweens)
    assert [name for name, _ in tweens.implicit() if name.startswith("okta_pyramid")] == []
    routes = app.registry.getUtility(IRoutesMapper).get_routes()
    # The one route of its own: the protected-resource metadata (RFC 9728), which
    # every challenge names (okta.resource_metadata = false leaves it out).
    assert [route.name for route in routes] == [
        "okta_pyramid.resource_metadata",
        "catalogue",
        "basket",
    ]
    client = webtest.TestApp(app)
    public = client.get("/catalogue")
    bought = client.get("/basket", headers={"Authorization": "Bearer " + issuer.mint()})
    for response in (public, bought):
        # Vary is the add-on's own business: the answer depends on the credentials.
        assert sorted(response.headers) == ["Content-Length", "Content-Type", "Vary"]
        assert response.headers["Vary"] == "Authorization"


def test_the_apps_own_root_factory_decides(issuer: LoopbackIssuer) -> None:
    token = {"Authorization": "Bearer " + issuer.mint()}
    own = webtest.TestApp(tiny_app.make_app(issuer.issuer, issuer.audience, own_root=True))
    assert own.get("/catalogue").json == {"root": "Shop"}
    own.get("/basket", status=401)
    assert own.get("/basket", headers=token).json == {"buyer": "alice@example.com"}
    # Without one, the add-on's root applies, whose ACL grants neither permission.
    default = webtest.TestApp(tiny_app.make_app(issuer.issuer, issuer.audience))
    default.get("/catalogue", status=401)
    default.get("/catalogue", headers=token, status=403)


def test_a_root_factory_set_in_the_apps_own_include_is_kept(
    settings: dict[str, Any],
) -> None:
    def resources(config: Configurator) -> None:
        config.set_root_factory(tiny_app.Shop)

    with Configurator(settings=settings) as config:
        config.include("okta_pyramid")
        config.include(resources)  # neither include path is a prefix of the other
        config.add_route("catalogue", "/catalogue")
        config.add_view(
            lambda request: {"root": type(request.context).__name__},
            route_name="catalogue",
            renderer="json",
            permission="browse",
        )
    assert webtest_app(config).get("/catalogue").json == {"root": "Shop"}


def test_the_addon_keeps_its_parts_in_one_typed_object(issuer: LoopbackIssuer) -> None:
    registry = tiny_app.make_app(issuer.issuer, issuer.audience).registry
    assert [name for name in vars(registry) if "okta" in name] == ["okta"]
    parts = okta_parts(registry)
    assert parts is registry.okta and isinstance(parts, OktaParts)
    assert list(parts.verifiers) == [issuer.issuer]
    assert parts.policy.reader is not None and parts.settings.issuer == issuer.issuer
    with pytest.raises(LookupError, match=r'config.include\("okta_pyramid"\)'):
        okta_parts(Configurator().registry)
