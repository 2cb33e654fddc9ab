"""A token is judged at most once per request, however often the request asks, and
what is derived from a cached token is derived once per token.

The security policy keeps its verdict with the request (as pyramid's
RequestLocalCache does) and permits, views and the error views all reuse it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.interfaces import ISecurityPolicy
from pyramid.request import Request

from okta_pyramid.permissions import AUTHENTICATED, Root
from okta_pyramid.principals import principals_for
from okta_pyramid.security import OktaSecurityPolicy
from okta_pyramid.tokens.verifier import AccessTokenVerifier, VerifiedToken

from .helpers import webtest_app
from .issuer import LoopbackIssuer


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AccessTokenVerifier.verify_token call, through which ``verify`` goes too
    (the real method still runs)."""
    seen: list[str] = []
    real = AccessTokenVerifier.verify_token

    def counting(self: AccessTokenVerifier, token: str) -> VerifiedToken:
        seen.append(token)
        return real(self, token)

    monkeypatch.setattr(AccessTokenVerifier, "verify_token", counting)
    return seen


def busy_view(request: Request) -> dict[str, Any]:
    # Everything a view might ask of the security policy, several times over.
    for _ in range(3):
        assert request.is_authenticated
        assert request.authenticated_userid == "alice@example.com"
        assert request.identity is not None
        assert request.has_permission(AUTHENTICATED)
    return {"sub": request.identity.subject}


@pytest.fixture
def busy_app(make_config: Callable[..., Configurator]) -> webtest.TestApp:
    config = make_config(token_cache_size="0")
    config.add_route("busy", "/busy")
    config.add_view(busy_view, route_name="busy", renderer="json", permission=AUTHENTICATED)
    return webtest_app(config)


def test_a_busy_view_judges_the_token_once(
    busy_app: webtest.TestApp, issuer: LoopbackIssuer, calls: list[str]
) -> None:
    token = issuer.mint()
    response = busy_app.get("/busy", headers={"Authorization": f"Bearer {token}"})
    assert response.json == {"sub": "alice@example.com"}
    assert calls == [token]


@pytest.mark.parametrize("token_cache_size", ["0", "4096"])
def test_whoami_judges_the_token_once(
    make_app: Callable[..., webtest.TestApp],
    issuer: LoopbackIssuer,
    calls: list[str],
    token_cache_size: str,
) -> None:
    app = make_app(token_cache_size=token_cache_size)
    token = issuer.mint()
    for expected in (1, 2):
        response = app.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
        assert response.json["sub"] == "alice@example.com"
        assert len(calls) == expected


def test_a_rejected_token_is_judged_once_through_the_error_view(
    app: webtest.TestApp, issuer: LoopbackIssuer, calls: list[str]
) -> None:
    token = issuer.mint(aud="api://other")
    response = app.get("/api/whoami", headers={"Authorization": f"Bearer {token}"}, status=401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert calls == [token]


counted: list[Any] = []


def counting_principals(claims: Any, settings: Any) -> list[str]:
    """An ``okta.principals_callback`` that counts its calls."""
    counted.append(claims["sub"])
    return principals_for(claims, settings)


def test_principals_are_computed_once_per_cached_token(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    counted.clear()
    app = make_app(principals_callback="tests.test_validation_once:counting_principals")
    alice, bob = issuer.mint(), issuer.mint(sub="bob@example.com")
    for token in (alice, alice, bob, alice, bob):
        app.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
    assert counted == ["alice@example.com", "bob@example.com"]


def test_with_the_cache_off_principals_are_computed_per_request(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    counted.clear()
    app = make_app(
        principals_callback="tests.test_validation_once:counting_principals", token_cache_size="0"
    )
    token = issuer.mint()
    for _ in range(2):
        app.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
    assert counted == ["alice@example.com"] * 2


def mutating_view(request: Request) -> dict[str, Any]:
    claims = request.identity.claims
    seen = copy.deepcopy(claims)
    claims["sub"] = "mallory"
    claims["scp"].append("admin")
    assert request.identity.claims["sub"] == "mallory"  # the request's own copy
    return seen


def test_a_view_changing_its_claims_changes_no_other_request(
    config: Configurator, issuer: LoopbackIssuer
) -> None:
    config.add_route("mutate", "/mutate")
    config.add_view(mutating_view, route_name="mutate", renderer="json", permission=AUTHENTICATED)
    app = webtest_app(config)
    token = issuer.mint()
    headers = {"Authorization": f"Bearer {token}"}
    first = app.get("/mutate", headers=headers).json
    assert app.get("/mutate", headers=headers).json == first
    assert first["sub"] == "alice@example.com" and "admin" not in first["scp"]
    policy = app.app.registry.queryUtility(ISecurityPolicy)
    request = Request.blank("/", headers=headers)
    assert policy.permits(request, Root(request), AUTHENTICATED)
    assert "scope:admin" not in policy.identity(request).__principals__()


def test_two_policies_never_share_a_verdict(issuer: LoopbackIssuer) -> None:
    ours = OktaSecurityPolicy(AccessTokenVerifier(issuer.issuer, issuer.audience))
    theirs = OktaSecurityPolicy(AccessTokenVerifier(issuer.issuer, "api://another"))
    request = Request.blank("/", headers={"Authorization": f"Bearer {issuer.mint()}"})
    assert ours.identity(request) is not None
    assert theirs.identity(request) is None
    assert theirs.authenticate(request).reason == "wrong_audience"
    assert ours.identity(request) is not None
