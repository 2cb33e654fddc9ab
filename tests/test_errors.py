"""The error table, the verdict it answers, and request.jwt_claims, through real apps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPNotFound
from pyramid.interfaces import ISecurityPolicy
from pyramid.request import Request
from pyramid.security import NO_PERMISSION_REQUIRED
from zope.interface import implementer

from okta_pyramid import errors
from okta_pyramid.errors import ANSWERS, Answer, InsufficientScope, challenge
from okta_pyramid.permissions import AUTHENTICATED
from okta_pyramid.security import OktaRequest
from okta_pyramid.tokens import ExpiredToken, InvalidToken, IssuerUnavailable
from okta_pyramid.tokens.exceptions import MalformedRequest

from .helpers import BOTH_CHALLENGES, bearer, webtest_app
from .issuer import LoopbackIssuer


@pytest.mark.parametrize(
    ("failure", "status", "error", "challenged"),
    [
        (None, 401, "unauthorized", 'Bearer realm="api"'),
        (
            MalformedRequest("two tokens"),
            400,
            "invalid_request",
            'Bearer realm="api", error="invalid_request", error_description="two tokens"',
        ),
        (
            ExpiredToken("the token has expired"),
            401,
            "invalid_token",
            'Bearer realm="api", error="invalid_token", error_description="the token has expired"',
        ),
        (
            InsufficientScope("messages:read"),
            403,
            "insufficient_scope",
            'Bearer realm="api", error="insufficient_scope", error_description="the access token '
            'lacks the scope this request needs: messages:read", scope="messages:read"',
        ),
        (IssuerUnavailable("down", retry_after=7), 503, "temporarily_unavailable", None),
    ],
)
def test_each_failure_is_answered_by_its_row(
    failure: Exception | None, status: int, error: str, challenged: str | None
) -> None:
    response = challenge(failure, realm="api")
    assert response.status_int == status
    assert response.json["error"] == error
    assert response.headers.get("WWW-Authenticate") == challenged
    assert response.headers["Vary"] == "Authorization"
    if status == 503:
        assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    ("schemes", "used", "challenged"),
    [
        (("Bearer", "DPoP"), None, "Bearer"),
        (("Bearer", "DPoP"), "DPoP", "DPoP"),
        (("DPoP",), None, "DPoP"),
        (("DPoP",), "Bearer", "DPoP"),  # okta.dpop = required: never a Bearer challenge
        (("Bearer",), "DPoP", "Bearer"),  # okta.dpop = disabled
    ],
)
def test_an_error_is_challenged_in_the_used_scheme_if_accepted_else_the_first(
    schemes: tuple[str, ...], used: str | None, challenged: str
) -> None:
    response = challenge(MalformedRequest("bad"), realm="api", schemes=schemes, used=used)
    assert response.headers["WWW-Authenticate"].startswith(
        f'{challenged} realm="api", error="invalid_request"'
    )


def test_a_new_scheme_and_code_are_rows_of_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    class InvalidProof(InvalidToken):
        reason = "invalid_proof"

    monkeypatch.setitem(ANSWERS, InvalidProof, Answer(401, "invalid_proof", scheme="Proof"))
    monkeypatch.setattr(errors, "SCHEMES", ("Bearer", "Proof"))
    response = challenge(InvalidProof("the proof is not signed"), realm="api")
    assert response.status_int == 401 and response.json["error"] == "invalid_proof"
    assert response.headers["WWW-Authenticate"] == (
        'Proof realm="api", error="invalid_proof", error_description="the proof is not signed"'
    )
    assert (
        challenge(None, realm="api", schemes=("Bearer", "Proof")).headers["WWW-Authenticate"]
        == 'Bearer realm="api", Proof realm="api"'
    )


def test_every_failure_the_policy_reaches_has_a_row() -> None:
    for failure in (
        MalformedRequest("x"),
        InvalidToken("x"),
        ExpiredToken("x"),
        IssuerUnavailable("x"),
        InsufficientScope(),
    ):
        assert errors.answer_for(failure).status in (400, 401, 403, 503)


# -- the verdict, whatever policy the application registers ----------------------------


@implementer(ISecurityPolicy)
class FirstIdentity:
    """warehouse's MultiSecurityPolicy, in short: the first policy with an identity
    decides; permits are asked of it (or of the last policy)."""

    def __init__(self, policies: list[Any]) -> None:
        self.policies = policies

    def _deciding(self, request: Request) -> Any:
        for policy in self.policies:
            if policy.identity(request) is not None:
                return policy
        return self.policies[-1]

    def identity(self, request: Request) -> Any:
        return self._deciding(request).identity(request)

    def authenticated_userid(self, request: Request) -> Any:
        return self._deciding(request).authenticated_userid(request)

    def permits(self, request: Request, context: Any, permission: str) -> Any:
        return self._deciding(request).permits(request, context, permission)

    def remember(self, request: Request, userid: Any, **kw: Any) -> list:
        return []

    def forget(self, request: Request, **kw: Any) -> list:
        return []


def add_views(config: Configurator) -> None:
    config.add_route("orders", "/orders")
    config.add_view(
        lambda request: {"user": request.authenticated_userid},
        route_name="orders",
        renderer="json",
        permission=AUTHENTICATED,
    )
    config.add_route("reports", "/reports")
    config.add_view(
        lambda request: {}, route_name="reports", renderer="json", permission="reports.read"
    )


def test_a_wrapped_policy_keeps_every_answer(config: Configurator, issuer: LoopbackIssuer) -> None:
    add_views(config)
    config.commit()
    okta = config.registry.getUtility(ISecurityPolicy)
    config.set_security_policy(FirstIdentity([okta]))
    app = webtest_app(config)
    assert not isinstance(app.app.registry.getUtility(ISecurityPolicy), type(okta))
    assert app.get("/orders", headers=bearer(issuer.mint())).json == {"user": "alice@example.com"}
    assert app.get("/orders", status=401).headers["WWW-Authenticate"] == BOTH_CHALLENGES
    expired = app.get("/orders", headers=bearer(issuer.mint(exp=1)), status=401)
    assert expired.json["error"] == "invalid_token"
    assert app.get("/orders", headers={"Authorization": "Bearer a b"}, status=400)
    denied = app.get("/reports", headers=bearer(issuer.mint()), status=403)
    assert denied.json["error"] == "insufficient_scope"


def test_a_verdict_carries_the_exception_that_decided_it(
    config: Configurator, issuer: LoopbackIssuer
) -> None:
    policy = config.registry.okta.security_policy
    request = Request.blank("/", headers=bearer(issuer.mint(exp=1)))
    verdict = policy.authenticate(request)
    assert isinstance(verdict.failure, ExpiredToken) and verdict.reason == "expired"
    assert verdict.identity is None


# -- request.jwt_claims, as pyramid_jwt documents it ----------------------------------


def claims_app(config: Configurator) -> Any:
    config.add_route("claims", "/claims")
    config.add_view(
        lambda request: dict(request.jwt_claims),
        route_name="claims",
        renderer="json",
        permission=NO_PERMISSION_REQUIRED,
    )
    config.add_route("protected", "/protected")
    config.add_view(
        lambda request: {"sub": request.jwt_claims["sub"]},
        route_name="protected",
        renderer="json",
        permission=AUTHENTICATED,
    )
    return webtest_app(config)


def test_jwt_claims_are_the_validated_claims(config: Configurator, issuer: LoopbackIssuer) -> None:
    app = claims_app(config)
    claims = app.get("/claims", headers=bearer(issuer.mint(tier="gold"))).json
    assert claims["sub"] == "alice@example.com" and claims["tier"] == "gold"
    assert app.get("/protected", headers=bearer(issuer.mint())).json == {"sub": "alice@example.com"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": "Bearer a b"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_jwt_claims_are_empty_without_an_acceptable_token(
    config: Configurator, headers: dict[str, str]
) -> None:
    assert claims_app(config).get("/claims", headers=headers).json == {}


def test_jwt_claims_adds_no_request_extension(config: Configurator) -> None:
    # A request property added by add_request_method makes Pyramid build a class
    # for every request; jwt_claims lives on the request class instead.
    from pyramid.interfaces import IRequestExtensions, IRequestFactory

    app = claims_app(config)
    assert app.app.registry.queryUtility(IRequestExtensions) is None
    assert app.app.registry.queryUtility(IRequestFactory) is OktaRequest


def test_an_application_request_class_gets_jwt_claims_from_oktarequest(
    make_config: Callable[..., Configurator], issuer: LoopbackIssuer
) -> None:
    class AppRequest(OktaRequest):
        pass

    config = make_config()
    config.set_request_factory(AppRequest)
    app = claims_app(config)
    assert app.get("/claims", headers=bearer(issuer.mint())).json["sub"] == "alice@example.com"


# -- 405: a route whose views answer other methods -------------------------------------


def method_app(config: Configurator) -> Any:
    """An add-on app with the JSON error views and routes of several method rules."""
    errors.add_json_error_views(config)
    public = {"renderer": "json", "permission": NO_PERMISSION_REQUIRED}
    config.add_route("items", "/items")
    config.add_view(lambda request: {}, route_name="items", request_method="GET", **public)
    config.add_view(lambda request: {}, route_name="items", request_method=("PUT",), **public)
    config.add_route("search", "/search")  # POST, and only with a q parameter
    config.add_view(
        lambda request: {}, route_name="search", request_method="POST", request_param="q", **public
    )
    config.add_route("any", "/any")  # every method, JSON only
    config.add_view(lambda request: {}, route_name="any", accept="application/json", **public)
    config.add_view(
        lambda request: {}, route_name="any", request_method="POST", request_param="q", **public
    )
    config.add_route("gone", "/gone")

    def gone(request: Request) -> Any:
        raise HTTPNotFound()

    config.add_view(gone, route_name="gone", request_method="GET", **public)
    return webtest_app(config)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/items", "GET, HEAD, PUT"),  # GET views answer HEAD too
        ("DELETE", "/items", "GET, HEAD, PUT"),
        ("GET", "/search", "POST"),
        ("OPTIONS", "/search", "POST"),
    ],
)
def test_a_method_no_view_of_the_route_accepts_is_405_with_allow(
    config: Configurator, method: str, path: str, allow: str
) -> None:
    response = method_app(config).request(path, method=method, status=405)
    assert response.headers["Allow"] == allow
    assert response.json["error"] == "method_not_allowed"
    assert allow in response.json["error_description"]


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/search", {}),  # the method is fine, q is missing
        ("DELETE", "/any", {"Accept": "text/html"}),  # a view takes every method
        ("GET", "/gone", {}),  # the view itself said 404
        ("POST", "/nowhere", {}),  # no route
    ],
)
def test_other_mismatches_stay_404(
    config: Configurator, method: str, path: str, headers: dict[str, str]
) -> None:
    response = method_app(config).request(path, method=method, headers=headers, status=404)
    assert "Allow" not in response.headers
    assert response.json["error"] == "not_found"


def test_head_reaches_a_get_view(config: Configurator) -> None:
    method_app(config).head("/items", status=200)
