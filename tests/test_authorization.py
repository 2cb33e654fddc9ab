"""Scopes and groups as permissions, through the real application and WebTest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import webtest

from .helpers import bearer, both_challenges
from .issuer import LoopbackIssuer

AppFactory = Callable[..., webtest.TestApp]


@pytest.fixture(params=["true", "false"], ids=["protect_all", "opt_in"])
def any_mode_app(request: pytest.FixtureRequest, make_app: AppFactory) -> webtest.TestApp:
    """The app in both protection modes: scope rules hold in each."""
    return make_app(protect_all=request.param)


def assert_insufficient_scope(response: Any, scope: str | None) -> None:
    assert response.status_int == 403
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert response.json["error"] == "insufficient_scope"
    if scope is None:
        assert "scope=" not in challenge
        assert "scope" not in response.json
    else:
        assert f'scope="{scope}"' in challenge
        assert response.json["scope"] == scope
        assert scope in response.json["error_description"]
    assert response.content_type == "application/json"


# -- GET /api/messages: scope messages:read -----------------------------------------


def test_reading_needs_scope_messages_read(
    any_mode_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    token = issuer.mint(scp=["openid", "messages:read"])
    response = any_mode_app.get("/api/messages", headers=bearer(token))
    assert response.json == {"messages": []}


def test_reading_without_the_scope_is_403_not_401(
    any_mode_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    token = issuer.mint(scp=["openid", "messages:write"])
    response = any_mode_app.get("/api/messages", headers=bearer(token), status=403)
    assert_insufficient_scope(response, "messages:read")
    assert "Authorization" in response.headers["Vary"]


def test_a_space_separated_scope_claim_grants_too(
    any_mode_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    token = issuer.mint(scp=None, scope="openid messages:read")
    any_mode_app.get("/api/messages", headers=bearer(token), status=200)


@pytest.mark.parametrize(
    "scp",
    [
        "messages:readonly",
        ["messages:read "],
        ["Messages:Read"],
        {"messages:read": True},
        1,
    ],
)
def test_near_misses_and_wrong_types_grant_nothing(
    app: webtest.TestApp, issuer: LoopbackIssuer, scp: Any
) -> None:
    # Scopes are case-sensitive (RFC 6749 §3.3); a claim of the wrong type is ignored.
    response = app.get("/api/messages", headers=bearer(issuer.mint(scp=scp)), status=403)
    assert_insufficient_scope(response, "messages:read")


def test_a_group_named_like_the_scope_does_not_grant_it(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    token = issuer.mint(groups=["messages:read", "scope:messages:read"])
    app.get("/api/messages", headers=bearer(token), status=403)


def test_no_token_is_401_without_an_error_code(any_mode_app: webtest.TestApp) -> None:
    response = any_mode_app.get("/api/messages", status=401)
    # RFC 6750 §3: the scope that grants the view's permission, from its context's ACL.
    assert response.headers["WWW-Authenticate"] == both_challenges(scope="messages:read")


def test_an_invalid_token_is_401_even_if_it_claims_the_scope(
    any_mode_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    token = issuer.mint(scp=["messages:read"], exp=1)
    response = any_mode_app.get("/api/messages", headers=bearer(token), status=401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # The scope the view needs (RFC 6750 §3), not one the refused token claims.
    assert 'scope="messages:read"' in response.headers["WWW-Authenticate"]
    assert response.json["scope"] == "messages:read"


# -- POST /api/messages: scope messages:write ----------------------------------------


def test_posting_needs_scope_messages_write(
    any_mode_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    reader = bearer(issuer.mint(scp=["messages:read"]))
    response = any_mode_app.post_json(
        "/api/messages", {"text": "hello"}, headers=reader, status=403
    )
    assert_insufficient_scope(response, "messages:write")
    # Nothing was stored by the refused request.
    assert any_mode_app.get("/api/messages", headers=reader).json == {"messages": []}


def test_a_writer_posts_and_a_reader_reads(
    any_mode_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    writer = bearer(issuer.mint(scp=["messages:write"], sub="writer@example.com"))
    created = any_mode_app.post_json(
        "/api/messages", {"text": "  hello  "}, headers=writer, status=201
    ).json
    assert created["text"] == "hello"
    assert created["author"] == "writer@example.com"
    assert created["id"] == 1
    reader = bearer(issuer.mint(scp=["messages:read"]))
    assert any_mode_app.get("/api/messages", headers=reader).json == {"messages": [created]}


def test_the_body_is_judged_only_after_the_scope(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    # A caller without the scope learns nothing about what the endpoint accepts.
    token = issuer.mint(scp=["messages:read"])
    response = app.post(
        "/api/messages",
        "{not json",
        headers=bearer(token),
        content_type="application/json",
        status=403,
    )
    assert_insufficient_scope(response, "messages:write")
    app.post("/api/messages", "{not json", content_type="application/json", status=401)


# -- GET /api/admin: group Admins -----------------------------------------------------


def test_admin_needs_group_admins(any_mode_app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    token = issuer.mint(groups=["Everyone", "Admins"])
    body = any_mode_app.get("/api/admin", headers=bearer(token)).json
    assert "group:Admins" in body["principals"]
    assert body["messages"] == {"count": 0, "capacity": 100}


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"groups": ["Everyone", "admins"]},  # group names are compared exactly
        {"groups": "Admins x"},  # one string is one group, not a list
        {"groups": {"Admins": True}},
        {"scp": ["Admins"]},  # a scope is not a group
        {"sub": "Admins", "cid": "Admins"},
    ],
)
def test_admin_without_the_group_is_403(
    any_mode_app: webtest.TestApp, issuer: LoopbackIssuer, claims: dict[str, Any]
) -> None:
    response = any_mode_app.get("/api/admin", headers=bearer(issuer.mint(**claims)), status=403)
    # No scope would help, so none is named; the group is not disclosed either.
    assert_insufficient_scope(response, None)
    assert "Admins" not in response.text


def test_the_groups_claim_is_configurable(make_app: AppFactory, issuer: LoopbackIssuer) -> None:
    app = make_app(groups_claim="roles")
    app.get("/api/admin", headers=bearer(issuer.mint(roles=["Admins"])), status=200)
    app.get("/api/admin", headers=bearer(issuer.mint(groups=["Admins"])), status=403)


def test_a_principals_callback_extends_the_mapping(
    make_app: AppFactory, issuer: LoopbackIssuer
) -> None:
    def admins_by_role(claims: Any, settings: Any) -> list[str]:
        from okta_pyramid.principals import group, principals_for

        found = principals_for(claims, settings)
        if claims.get("role") == "superuser":
            found.append(group("Admins"))
        return found

    app = make_app(principals_callback=admins_by_role)
    app.get("/api/admin", headers=bearer(issuer.mint(role="superuser")), status=200)
    app.get("/api/admin", headers=bearer(issuer.mint(role="user")), status=403)


# -- the rest of the API is unchanged --------------------------------------------------


def test_whoami_needs_only_a_token_and_hello_nothing(
    any_mode_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    token = issuer.mint(scp=[])
    assert any_mode_app.get("/api/whoami", headers=bearer(token)).json["scp"] == []
    any_mode_app.get("/api/hello", status=200)
