"""Shortcuts on the per-request path keep their answers.

The policy skips parsing an empty query string, reads the usual ``Bearer`` header
in one step (with the general reader's answer), sets ``Vary`` without parsing when
there is none yet, decides the add-on's root ACL without ACLHelper (with
ACLHelper's answer), computes a token's principals once, and the verifier decodes
JSON as strict UTF-8.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
import webtest
from pyramid.authorization import ALL_PERMISSIONS, Deny, Everyone
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.security import NO_PERMISSION_REQUIRED

from okta_pyramid.permissions import AUTHENTICATED, ROOT_ACL, Root
from okta_pyramid.tokens.exceptions import MalformedToken
from okta_pyramid.tokens.verifier import AccessTokenVerifier

from .helpers import webtest_app
from .issuer import LoopbackIssuer


@pytest.mark.parametrize("query", ["access_token=x", "a=1&access_token=x", "access%5Ftoken=x"])
def test_a_token_in_the_query_string_is_still_refused(
    app: webtest.TestApp, issuer: LoopbackIssuer, query: str
) -> None:
    response = app.get(
        f"/api/whoami?{query}", headers={"Authorization": f"Bearer {issuer.mint()}"}, status=400
    )
    assert response.json["error"] == "invalid_request"


def test_an_unrelated_query_string_is_fine(app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    app.get(
        "/api/whoami?verbose=1", headers={"Authorization": f"Bearer {issuer.mint()}"}, status=200
    )


def test_vary_authorization_is_added_once(app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    response = app.get("/api/whoami", headers={"Authorization": f"Bearer {issuer.mint()}"})
    assert response.headers.getall("Vary") == ["Authorization"]


def test_vary_authorization_joins_a_view_s_own_vary(
    config: Configurator, issuer: LoopbackIssuer
) -> None:
    def negotiated(request: Request) -> dict[str, Any]:
        request.response.vary = ("Accept",)
        return {"subject": request.authenticated_userid}

    config.add_route("negotiated", "/negotiated")
    config.add_view(
        negotiated, route_name="negotiated", renderer="json", permission=NO_PERMISSION_REQUIRED
    )
    app = webtest_app(config)
    response = app.get("/negotiated", headers={"Authorization": f"Bearer {issuer.mint()}"})
    assert response.json == {"subject": "alice@example.com"}
    assert response.headers["Vary"] == "Accept, Authorization"


def test_claims_that_are_not_utf8_are_malformed(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    key = issuer.keys[0]
    latin1 = f'{{"iss": "{issuer.issuer}", "sub": "caf\xe9"}}'.encode("latin-1")
    token = jwt.api_jws.encode(latin1, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    with pytest.raises(MalformedToken, match="not JSON"):
        verifier.verify(token)


# -- the usual Bearer header, read in one step ----------------------------------------
#
# "Bearer <token>" on a request without a query string is read without the general
# reader; anything else (another spelling of the scheme, a query string to look at)
# goes the general way. Both must give the same answer.


def _both_ways(app: webtest.TestApp, authorization: str) -> tuple[Any, Any]:
    """The answers to ``authorization`` without a query string and with one."""
    headers = {"Authorization": authorization}
    return (
        app.get("/api/whoami", headers=headers, expect_errors=True),
        app.get("/api/whoami?verbose=1", headers=headers, expect_errors=True),
    )


@pytest.mark.parametrize(
    "spelling", ["Bearer {}", "bearer {}", "BEARER {}", "Bearer  {}", "Bearer {}  "]
)
def test_every_spelling_of_a_bearer_header_is_accepted_alike(
    app: webtest.TestApp, issuer: LoopbackIssuer, spelling: str
) -> None:
    for response in _both_ways(app, spelling.format(issuer.mint())):
        assert response.status_int == 200
        assert response.json["sub"] == "alice@example.com"


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Bearer {}x", "Bearer {} {}", "Bearer\t{}", "Bearerx {}"]
)
def test_a_bearer_header_without_one_good_token_is_refused_alike(
    app: webtest.TestApp, issuer: LoopbackIssuer, header: str
) -> None:
    token = issuer.mint()
    plain, queried = _both_ways(app, header.format(token, token))
    assert plain.status_int == queried.status_int in (400, 401)
    assert plain.headers["WWW-Authenticate"] == queried.headers["WWW-Authenticate"]
    assert plain.json == queried.json


def test_a_bound_token_sent_as_bearer_is_refused_either_way(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    token = issuer.mint(cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    for response in _both_ways(app, f"Bearer {token}"):
        assert response.status_int == 401
        assert "bound to a key (cnf)" in response.json["error_description"]


def test_dpop_required_refuses_a_bearer_token_either_way(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    app = make_app(dpop="required")
    for response in _both_ways(app, f"Bearer {issuer.mint()}"):
        assert response.status_int == 401
        assert response.headers["WWW-Authenticate"].startswith("DPoP ")


# -- the root ACL's fast path and principals once per token ---------------------------


def _permits(config: Configurator, token: str, context: Any, permission: str) -> Any:
    """The policy's answer for a request carrying ``token``, and ACLHelper's own."""
    from pyramid.authorization import ACLHelper

    from okta_pyramid.parts import okta_parts

    policy = okta_parts(config.registry).policy
    request = Request.blank("/", headers={"Authorization": f"Bearer {token}"})
    request.registry = config.registry
    answer = policy.permits(request, context, permission)
    identity = policy.identity(request)
    assert identity is not None
    principals = (Everyone, *identity.principals)
    return answer, ACLHelper().permits(context, principals, permission)


@pytest.mark.parametrize("permission", [AUTHENTICATED, "messages.read", "admin"])
@pytest.mark.parametrize("acl", ["the root's", "an equal copy"])
def test_the_root_acl_answers_as_acl_helper_does(
    config: Configurator, issuer: LoopbackIssuer, permission: str, acl: str
) -> None:
    context = Root(None)
    if acl == "an equal copy":
        # Equal but not the same tuple: ACLHelper reads it.
        context.__acl__ = ROOT_ACL[:1] + ROOT_ACL[1:]  # type: ignore[misc]
        assert context.__acl__ is not ROOT_ACL
    answer, helper = _permits(config, issuer.mint(), context, permission)
    assert bool(answer) is bool(helper) is (permission == AUTHENTICATED)
    assert type(answer) is type(helper)
    assert (answer.ace, answer.acl, answer.permission, answer.principals, answer.context) == (
        helper.ace,
        helper.acl,
        helper.permission,
        helper.principals,
        helper.context,
    )
    assert str(answer) == str(helper)


def no_authenticated(claims: Any, settings: Any) -> list[str]:
    """A principals callback that grants no ``Authenticated``."""
    return [f"user:{claims.get('sub')}"]


def test_the_root_acl_denies_principals_without_authenticated(
    make_config: Callable[..., Configurator], issuer: LoopbackIssuer
) -> None:
    config = make_config(principals_callback="tests.test_hot_path:no_authenticated")
    answer, helper = _permits(config, issuer.mint(), Root(None), AUTHENTICATED)
    assert not answer
    assert not helper
    assert answer.ace == helper.ace == ROOT_ACL[1]


def test_a_child_of_the_root_acl_is_still_judged_by_its_own_acl(
    config: Configurator, issuer: LoopbackIssuer
) -> None:
    class Locked(Root):
        __acl__ = ((Deny, Everyone, ALL_PERMISSIONS),)

    answer, _ = _permits(config, issuer.mint(), Locked(None), AUTHENTICATED)
    assert not answer


def test_principals_are_computed_once_per_token(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    calls.clear()
    app = make_app(principals_callback="tests.test_hot_path:counted")
    token, other = issuer.mint(), issuer.mint(sub="bob@example.com")
    for _ in range(3):
        app.get("/api/whoami", headers={"Authorization": f"Bearer {token}"}, status=200)
    app.get("/api/whoami", headers={"Authorization": f"Bearer {other}"}, status=200)
    assert calls == ["alice@example.com", "bob@example.com"]


calls: list[str] = []


def counted(claims: Any, settings: Any) -> list[str]:
    """A principals callback that counts its calls."""
    from okta_pyramid.principals import principals_for

    calls.append(claims["sub"])
    return principals_for(claims, settings)


# -- the DPoP htu, built once per distinct URL ----------------------------------------


@pytest.mark.parametrize(
    "environ",
    [
        {"HTTP_HOST": "api.test"},
        {"HTTP_HOST": "api.test:8443", "wsgi.url_scheme": "https"},
        {"HTTP_HOST": "api.test:443", "wsgi.url_scheme": "https"},
        {"HTTP_HOST": "[::1]:8080", "SCRIPT_NAME": "/mount"},
        {"HTTP_HOST": "[::1]"},
        {"SERVER_NAME": "internal", "SERVER_PORT": "8080"},
        {"HTTP_HOST": "api.test", "PATH_INFO": "/caf\xc3\xa9/a b;c"},
    ],
)
@pytest.mark.parametrize("public_url", [None, "https://api.example.com/base"])
def test_the_request_url_is_the_one_webob_builds(
    verifier: AccessTokenVerifier, environ: dict[str, str], public_url: str | None
) -> None:
    from okta_pyramid.bearer import BearerTokenReader

    reader = BearerTokenReader(verifier, public_url=public_url)
    request = Request.blank("/api/whoami", environ=dict(environ))
    for _ in range(2):  # built, then remembered
        url = reader.request_url(request)
        expected = request.path_url
        if public_url is not None:
            expected = public_url + expected[len(request.application_url) :]
        assert url == expected


def test_the_request_url_keeps_no_request_alive(verifier: AccessTokenVerifier) -> None:
    import gc
    import weakref

    from okta_pyramid.bearer import BearerTokenReader

    reader = BearerTokenReader(verifier)
    request = Request.blank("/api/whoami", environ={"HTTP_HOST": "api.test"})
    reader.request_url(request)
    gone = weakref.ref(request)
    del request
    gc.collect()
    assert gone() is None
