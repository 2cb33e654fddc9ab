"""okta.required_claims, okta.groups_claim and okta.principals_callback: parsed at
start-up, enforced by the verifier."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import webtest
from pyramid.exceptions import ConfigurationError

from okta_pyramid.app import main
from okta_pyramid.settings import parse_settings
from okta_pyramid.tokens.exceptions import InvalidClaims, RequiredClaimNotMet
from okta_pyramid.tokens.verifier import AccessTokenVerifier, claim_matches

from .issuer import DROP, LoopbackIssuer

ISSUER = "https://dev-1.okta.com/oauth2/default"


def parse(**okta: Any):
    return parse_settings({"okta.issuer": ISSUER, **{f"okta.{k}": v for k, v in okta.items()}})


# -- settings -------------------------------------------------------------------------


def test_defaults() -> None:
    settings = parse()
    assert settings.groups_claim == "groups"
    assert settings.required_claims == ()
    assert settings.principals_callback is None


def test_required_claims_lines() -> None:
    settings = parse(
        required_claims="""
        uid
        email_verified = true
        groups = Help Desk
        ver=1
    """
    )
    assert settings.required_claims == (
        ("uid", None),
        ("email_verified", "true"),
        ("groups", "Help Desk"),
        ("ver", "1"),
    )


def test_required_claims_may_be_given_as_a_list() -> None:
    assert parse(required_claims=["uid", "tier = gold"]).required_claims == (
        ("uid", None),
        ("tier", "gold"),
    )


@pytest.mark.parametrize("value", ["= gold", "two words", "tier =", "tier = ", "bad\x00name"])
def test_bad_required_claims_name_the_key(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.required_claims: "):
        parse(required_claims=value)


@pytest.mark.parametrize("value", ["two words", "a\tb", "bad\x01"])
def test_bad_groups_claim_names_the_key(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.groups_claim: "):
        parse(groups_claim=value)


def test_groups_claim() -> None:
    assert parse(groups_claim=" roles ").groups_claim == "roles"
    assert parse(groups_claim="").groups_claim == "groups"


@pytest.mark.parametrize(
    "value",
    [
        "no_such_module_xyz.principals",
        "okta_pyramid.principals:no_such_name",
        "okta_pyramid.principals:DEFAULT_GROUPS_CLAIM",
        "not a dotted name",
    ],
)
def test_bad_principals_callback_names_the_key(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.principals_callback: "):
        parse(principals_callback=value)


def test_the_app_refuses_to_start_with_bad_required_claims(issuer: LoopbackIssuer) -> None:
    with pytest.raises(ConfigurationError, match="okta.required_claims"):
        main({}, **{"okta.issuer": issuer.issuer, "okta.required_claims": "tier ="})


# -- the verifier ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "value", "expected"),
    [
        ("gold", "gold", True),
        ("Gold", "gold", False),
        (["silver", "gold"], "gold", True),
        (["silver"], "gold", False),
        ([], "gold", False),
        (True, "true", True),
        (False, "true", False),
        (1, "1", True),
        (1, "true", False),
        ("true", "true", True),
        ({"gold": 1}, "gold", False),
        ([["gold"]], "gold", False),
        (None, "null", False),
    ],
)
def test_claim_matches(claim: Any, value: str, expected: bool) -> None:
    assert claim_matches(claim, value) is expected


@pytest.fixture
def strict_verifier(issuer: LoopbackIssuer) -> AccessTokenVerifier:
    return AccessTokenVerifier(
        issuer.issuer,
        issuer.audience,
        http_timeout=2,
        required_claims=[("uid", None), ("tier", "gold")],
    )


def test_a_token_meeting_the_requirements_passes(
    strict_verifier: AccessTokenVerifier, issuer: LoopbackIssuer
) -> None:
    assert strict_verifier.verify(issuer.mint(tier="gold"))["tier"] == "gold"
    assert strict_verifier.verify(issuer.mint(tier=["bronze", "gold"]))["uid"]


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"uid": DROP, "tier": "gold"}, "no 'uid' claim"),
        ({"uid": None, "tier": "gold"}, "no 'uid' claim"),
        ({}, "no 'tier' claim"),
        ({"tier": "silver"}, "'tier' claim does not have the value"),
        ({"tier": ["silver"]}, "'tier' claim does not have the value"),
        ({"tier": {"gold": True}}, "'tier' claim does not have the value"),
    ],
)
def test_a_token_missing_a_requirement_is_invalid(
    strict_verifier: AccessTokenVerifier,
    issuer: LoopbackIssuer,
    claims: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(RequiredClaimNotMet, match=message) as caught:
        strict_verifier.verify(issuer.mint(**claims))
    assert isinstance(caught.value, InvalidClaims)
    assert caught.value.reason == "required_claim"


# -- through the application ----------------------------------------------------------


def test_the_app_enforces_required_claims_with_401_invalid_token(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    app = make_app(required_claims="uid\nemail_verified = true")
    good = issuer.mint(email_verified=True)
    app.get("/api/whoami", headers={"Authorization": f"Bearer {good}"}, status=200)
    bad = issuer.mint(email_verified=False)
    response = app.get("/api/whoami", headers={"Authorization": f"Bearer {bad}"}, status=401)
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in challenge
    assert "email_verified" in response.json["error_description"]
    # The required value is configuration, not something to tell every caller.
    assert "true" not in response.json["error_description"]
