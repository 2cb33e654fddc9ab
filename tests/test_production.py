"""Start-up refuses configurations that would run insecurely or not at all."""

from __future__ import annotations

import configparser
import logging
import sys
import types
from pathlib import Path

import pytest
import webtest
from pyramid.exceptions import ConfigurationError
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from okta_pyramid.app import main
from okta_pyramid.production import check_includes
from okta_pyramid.settings import parse_settings

from .helpers import thumbprint


@pytest.fixture
def settings(settings: dict[str, str]) -> dict[str, str]:
    """The test settings with the URL production needs while DPoP is accepted."""
    return {**settings, "okta.public_url": "https://api.example.com"}


@pytest.mark.parametrize(
    "issuer",
    [
        "https://dev-123456.okta.com",
        "https://dev-123456.okta.com/",
        "https://acme.oktapreview.com",
        "https://acme.okta-emea.com/",
        "https://DEV-1.OKTA.COM",
        "https://dev-123456.okta.com/oauth2/v1",
        "https://dev-123456.okta.com/oauth2/v1/",
    ],
)
def test_org_authorization_server_is_refused(issuer: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_settings({"okta.issuer": issuer})
    message = str(info.value)
    assert message.startswith("okta.issuer: ")
    assert "org authorization server" in message
    assert "cannot be validated by a resource server" in message
    assert "such as https://" in message and ".com/oauth2/default," in message.lower()
    # ... and how to accept its tokens after all: introspection.
    assert "okta.introspection_client_id" in message


@pytest.mark.parametrize(
    "issuer",
    [
        "https://dev-123456.okta.com/oauth2/default",
        "https://dev-123456.okta.com/oauth2/aus1a2b3c4d5e6f7g8h9",
        "https://login.example.com",  # a custom domain: cannot be told apart
        "https://notokta.com",
        "https://tenant.auth0.com/",
    ],
)
def test_custom_authorization_servers_are_accepted(issuer: str) -> None:
    assert parse_settings({"okta.issuer": issuer}).issuer == issuer


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 300.0), ("", 300.0), ("0", 0.0), ("10", 10.0), ("3600", 3600.0)]
)
def test_refresh_interval(value, expected) -> None:
    settings = {"okta.issuer": "https://a.example/oauth2/x"}
    if value is not None:
        settings["okta.jwks_refresh_interval"] = value
    assert parse_settings(settings).jwks_refresh_interval == expected


@pytest.mark.parametrize("value", ["5", "-1", "soon", "90000"])
def test_bad_refresh_interval_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.jwks_refresh_interval: "):
        parse_settings(
            {"okta.issuer": "https://a.example/oauth2/x", "okta.jwks_refresh_interval": value}
        )


@pytest.mark.parametrize("value", ["prod", "Production", "staging"])
def test_unknown_environment_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.environment: "):
        parse_settings({"okta.issuer": "https://a.example/oauth2/x", "okta.environment": value})


@pytest.mark.parametrize(
    "includes",
    [
        "pyramid_debugtoolbar",
        "okta_pyramid.devissuer",
        "pyramid_tm\npyramid_debugtoolbar",
        "okta_pyramid.devissuer.views",
    ],
)
def test_development_packages_in_includes_are_refused(includes: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.environment: is production"):
        check_includes(includes.split())


def test_other_includes_are_fine() -> None:
    check_includes(["pyramid_tm", "okta_pyramid.health", "pyramid_debugtoolbarish"])


def _fake_package(name: str) -> types.ModuleType:
    """A stand-in for a development-only package: a tween and a view, like the toolbar."""
    module = types.ModuleType(name)

    def tween_factory(handler, registry):
        return handler

    def debug_view(request):
        return Response("debug")

    tween_factory.__module__ = debug_view.__module__ = name

    def includeme(config):
        config.add_tween(f"{name}.tween_factory")
        config.add_route("debug", "/_debug")
        config.add_view(debug_view, route_name="debug", permission=NO_PERMISSION_REQUIRED)

    # A module built at run time: its attributes, which mypy cannot know, go in its dict.
    vars(module).update(tween_factory=tween_factory, includeme=includeme)
    return module


@pytest.fixture(params=["pyramid_debugtoolbar", "okta_pyramid.devissuer"])
def development_package(request, monkeypatch) -> str:
    name = request.param
    module = _fake_package(name)
    monkeypatch.setitem(sys.modules, name, module)
    parent, _, child = name.rpartition(".")
    if parent:
        # Dotted names resolve through the parent package's attributes.
        monkeypatch.setattr(sys.modules[parent], child, module, raising=False)
    return name


def test_production_app_refuses_development_package(settings, development_package) -> None:
    with pytest.raises(ConfigurationError) as info:
        main(
            {},
            **settings,
            **{"okta.environment": "production", "pyramid.includes": development_package},
        )
    assert development_package in str(info.value)
    assert str(info.value).startswith("okta.environment: is production")


def test_development_app_accepts_development_package(settings, development_package) -> None:
    app = webtest.TestApp(main({}, **settings, **{"pyramid.includes": development_package}))
    assert app.get("/_debug").text == "debug"


def test_production_refuses_development_package_included_from_code(
    make_config, development_package
) -> None:
    # Not named in pyramid.includes: found among the tweens and views once built.
    config = make_config(environment="production")
    config.include(development_package)
    with pytest.raises(ConfigurationError, match=development_package):
        config.make_wsgi_app()


def test_production_refuses_the_real_development_issuer_from_code(make_config, tmp_path) -> None:
    # The real package registers views only (no tween): the view check must catch it.
    config = make_config(environment="production")
    config.add_settings(
        {
            "devissuer.clients": "svc s3cret-value api.read",
            "devissuer.keys_dir": str(tmp_path / "keys"),
        }
    )
    config.include("okta_pyramid.devissuer")
    with pytest.raises(ConfigurationError, match="okta_pyramid.devissuer"):
        config.make_wsgi_app()


def test_production_refuses_a_development_tween_alone(make_config, monkeypatch) -> None:
    module = types.ModuleType("pyramid_debugtoolbar")

    def toolbar_tween_factory(handler, registry):
        return handler

    toolbar_tween_factory.__module__ = "pyramid_debugtoolbar"
    vars(module).update(
        toolbar_tween_factory=toolbar_tween_factory,
        includeme=lambda config: config.add_tween("pyramid_debugtoolbar.toolbar_tween_factory"),
    )
    monkeypatch.setitem(sys.modules, "pyramid_debugtoolbar", module)
    config = make_config(environment="production")
    config.include("pyramid_debugtoolbar")
    with pytest.raises(ConfigurationError, match="tween chain"):
        config.make_wsgi_app()


def test_production_app_starts_without_them(settings) -> None:
    app = webtest.TestApp(main({}, **settings, **{"okta.environment": "production"}))
    assert app.get("/api/hello").status_int == 200


# -- the shared default audience -------------------------------------------------------


def production_warnings(caplog: pytest.LogCaptureFixture, key: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "okta_pyramid.production"
        and r.levelno == logging.WARNING
        and r.getMessage().startswith(key + ":")
    ]


def audience_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return production_warnings(caplog, "okta.audience")


def test_the_shared_default_audience_warns_once_at_start_up(settings, caplog) -> None:
    caplog.set_level(logging.WARNING)
    app = webtest.TestApp(
        main({}, **{**settings, "okta.environment": "production", "okta.audience": "api://default"})
    )
    app.get("/api/hello")
    [message] = audience_warnings(caplog)
    assert message.startswith(
        "okta.audience: is api://default, the audience Okta's "
        "default authorization server gives every API on it"
    )
    assert "accepts tokens minted for any other API" in message
    assert "okta.client_ids" in message


@pytest.mark.parametrize(
    "extra",
    [
        {"okta.environment": "production", "okta.audience": "api://orders"},
        {
            "okta.environment": "production",
            "okta.audience": "api://default",
            "okta.client_ids": "0oa1orders",
        },
        {"okta.audience": "api://default"},  # development: the default is expected there
    ],
)
def test_no_warning_for_an_own_audience_or_listed_clients(settings, caplog, extra) -> None:
    caplog.set_level(logging.WARNING)
    main({}, **{**settings, **extra})
    assert audience_warnings(caplog) == []


def test_production_ini_names_no_default_audience() -> None:
    parser = configparser.RawConfigParser()
    parser.read(Path(__file__).resolve().parent.parent / "production.ini")
    assert parser.get("app:main", "okta.audience") == "${OKTA_AUDIENCE}"


# -- DPoP's URL from the Host header -------------------------------------------------------


def test_dpop_without_a_public_url_stops_production_start_up(settings) -> None:
    unpinned = {k: v for k, v in settings.items() if k != "okta.public_url"}
    with pytest.raises(ConfigurationError) as info:
        main({}, **{**unpinned, "okta.environment": "production", "okta.audience": "api://orders"})
    message = str(info.value)
    assert message.startswith("okta.public_url: is required in production while DPoP")
    assert "built from the request's Host header" in message and "from-proxy" in message


def test_the_resource_metadata_without_a_public_url_stops_production_start_up(
    settings,
) -> None:
    # Without DPoP, the metadata alone needs the URL: its resource would be the Host.
    unpinned = {k: v for k, v in settings.items() if k != "okta.public_url"}
    production = {"okta.environment": "production", "okta.audience": "api://orders"}
    with pytest.raises(ConfigurationError) as info:
        main({}, **{**unpinned, **production, "okta.dpop": "disabled"})
    message = str(info.value)
    assert message.startswith("okta.public_url: is required in production while the protected")
    assert "okta.resource_metadata = false" in message and "from-proxy" in message
    for vouched in ({"okta.public_url": "from-proxy"}, {"okta.resource_metadata": "false"}):
        app = main({}, **{**unpinned, **production, "okta.dpop": "disabled", **vouched})
        assert webtest.TestApp(app).get("/api/hello").status_code == 200


@pytest.mark.parametrize(
    "extra",
    [
        {"okta.environment": "production", "okta.public_url": "https://api.example.com"},
        {"okta.environment": "production", "okta.public_url": "from-proxy"},
        {
            "okta.environment": "production",
            "okta.dpop": "disabled",
            "okta.resource_metadata": "false",
        },
        {},  # development
    ],
)
def test_dpop_url_pinned_vouched_for_disabled_or_in_development(settings, extra) -> None:
    unpinned = {k: v for k, v in settings.items() if k != "okta.public_url"}
    app = webtest.TestApp(main({}, **{**unpinned, "okta.audience": "api://orders", **extra}))
    assert app.get("/api/hello").status_code == 200


def test_from_proxy_trusts_the_host_for_htu(settings, issuer) -> None:
    # The operator's word: the proxy sets Host, so the request's own URL is the htu.
    from cryptography.hazmat.primitives.asymmetric import ec

    from okta_pyramid.tokens import make_proof
    from okta_pyramid.tokens.dpop import access_token_hash  # noqa: F401 - documents ath

    key = ec.generate_private_key(ec.SECP256R1())
    token = issuer.mint(cnf={"jkt": thumbprint(key)})
    app = webtest.TestApp(
        main(
            {},
            **{
                **settings,
                "okta.environment": "production",
                "okta.audience": issuer.audience,
                "okta.public_url": "from-proxy",
            },
        ),
        extra_environ={"HTTP_HOST": "api.internal:8080"},
    )
    proof = make_proof(key, "GET", "http://api.internal:8080/api/whoami", access_token=token)
    app.get("/api/whoami", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
