"""/healthz and /readyz: public, cheap, and honest about the keys."""

from __future__ import annotations

import time

import pytest
import webtest
from pyramid.config import Configurator

from okta_pyramid.app import main

from .helpers import wait_for, webtest_app


@pytest.mark.parametrize("protect_all", ["true", "false"])
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not.a.token"}, {"Authorization": "Bearer a b"}]
)
def test_healthz_is_public(make_app, protect_all, headers) -> None:
    app = make_app(protect_all=protect_all)
    response = app.get("/healthz", headers=headers)
    assert response.status_int == 200
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert app.head("/healthz").status_int == 200


def test_healthz_does_no_io(make_app, issuer) -> None:
    app = make_app()
    app.get("/healthz")
    app.get("/readyz", status=503)
    assert sum(issuer.hits.values()) == 0


def test_readyz_before_the_keys_are_fetched(make_app) -> None:
    response = make_app().get("/readyz", status=503)
    assert response.json["status"] == "not_ready"
    assert response.json["reason"] == "keys_not_loaded"
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_once_the_keys_are_held(make_app, issuer) -> None:
    app = make_app()
    app.get("/api/whoami", headers={"Authorization": f"Bearer {issuer.mint()}"})
    response = app.get("/readyz")
    assert response.json["status"] == "ready"
    assert response.json["keys"] == 1


def test_readyz_when_the_issuer_serves_no_usable_key(make_app, issuer) -> None:
    # A key set of only unusable keys (here 1024-bit RSA) is a failed fetch.
    from .issuer import SigningKey, rsa_key

    token = issuer.mint()  # signed with a good key the issuer then stops serving
    issuer.keys = [SigningKey("weak", rsa_key(7, 1024))]
    app = make_app()
    app.get("/api/whoami", headers={"Authorization": f"Bearer {token}"}, status=503)
    response = app.get("/readyz", status=503)
    assert response.json["reason"] == "keys_not_loaded"
    assert response.json["keys"] == 0


def test_readyz_with_the_issuer_down(make_app, issuer) -> None:
    issuer.mode = "error"
    app = make_app(protect_all="true")
    app.get("/api/whoami", headers={"Authorization": f"Bearer {issuer.mint()}"}, status=503)
    assert app.get("/readyz", status=503).json["reason"] == "keys_not_loaded"
    assert app.get("/healthz").status_int == 200
    assert app.get("/api/hello").status_int == 200


def test_readyz_reports_stale_keys(settings, issuer) -> None:
    app = main({}, **{**settings, "okta.jwks_refresh_interval": "10"})
    refresher = app.registry.okta.key_refresher
    keys = app.registry.okta.verifier.keys
    try:
        assert wait_for(lambda: keys.loaded_at is not None)
    finally:
        refresher.stop(timeout=5)
    client = webtest.TestApp(app)
    assert client.get("/readyz").json["status"] == "ready"
    # Three refresh intervals without a successful fetch: the keys are stale.
    keys.loaded_at = time.monotonic() - 31
    response = client.get("/readyz", status=503)
    assert response.json["reason"] == "keys_stale"
    assert response.json["keys_age_seconds"] >= 31


def test_add_on_opts_in(config: Configurator) -> None:
    config.include("okta_pyramid.health", route_prefix="/_status")
    app = webtest_app(config)
    assert app.get("/_status/healthz").status_int == 200
    app.get("/healthz", status=404)
