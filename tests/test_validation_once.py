"""A token is judged at most once per request, however often the request asks.

The security policy computes its verdict once (pyramid's RequestLocalCache) and
permits, views and the error views all reuse it.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.request import Request

from okta_pyramid.permissions import AUTHENTICATED
from okta_pyramid.verifier import AccessTokenVerifier

from .issuer import LoopbackIssuer


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every AccessTokenVerifier.verify call (the real method still runs)."""
    seen: list[str] = []
    real = AccessTokenVerifier.verify

    def counting(self: AccessTokenVerifier, token: str) -> dict[str, Any]:
        seen.append(token)
        return real(self, token)

    monkeypatch.setattr(AccessTokenVerifier, "verify", counting)
    yield seen


def busy_view(request: Request) -> dict[str, Any]:
    # Everything a view might ask of the security policy, several times over.
    for _ in range(3):
        assert request.is_authenticated
        assert request.authenticated_userid == "alice@example.com"
        assert request.identity is not None
        assert request.has_permission(AUTHENTICATED)
    return {"sub": request.identity.subject}


@pytest.fixture
def busy_app(settings: dict[str, Any]) -> webtest.TestApp:
    with Configurator(settings={**settings, "okta.token_cache_size": "0"}) as config:
        config.include("okta_pyramid")
        config.add_route("busy", "/busy")
        config.add_view(busy_view, route_name="busy", renderer="json",
                        permission=AUTHENTICATED)
        app = config.make_wsgi_app()
    return webtest.TestApp(app)


def test_a_busy_view_judges_the_token_once(busy_app: webtest.TestApp,
                                           issuer: LoopbackIssuer,
                                           calls: list[str]) -> None:
    token = issuer.mint()
    response = busy_app.get("/busy", headers={"Authorization": f"Bearer {token}"})
    assert response.json == {"sub": "alice@example.com"}
    assert calls == [token]


@pytest.mark.parametrize("token_cache_size", ["0", "4096"])
def test_whoami_judges_the_token_once(make_app: Callable[..., webtest.TestApp],
                                      issuer: LoopbackIssuer, calls: list[str],
                                      token_cache_size: str) -> None:
    app = make_app(token_cache_size=token_cache_size)
    token = issuer.mint()
    for expected in (1, 2):
        response = app.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
        assert response.json["sub"] == "alice@example.com"
        assert len(calls) == expected


def test_a_rejected_token_is_judged_once_through_the_error_view(
        app: webtest.TestApp, issuer: LoopbackIssuer, calls: list[str]) -> None:
    token = issuer.mint(aud="api://other")
    response = app.get("/api/whoami", headers={"Authorization": f"Bearer {token}"},
                       status=401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert calls == [token]
