"""Claims to principals: every claim shape Okta and other issuers send."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pyramid.authorization import Authenticated

from okta_pyramid.principals import (
    configured_principals,
    group,
    groups_of,
    principals_for,
    scope,
    scopes_of,
)
from okta_pyramid.security import TokenIdentity
from okta_pyramid.settings import OktaSettings, parse_settings

from .issuer import verified_token

SETTINGS = OktaSettings(issuer="https://dev-1.okta.com/oauth2/default")


def extra_principals(claims: Any, settings: OktaSettings | None) -> list[str]:
    """An ``okta.principals_callback`` as a user would write one."""
    found = principals_for(claims, settings)
    if claims.get("tier") == "gold":
        found.append("role:gold")
    return found


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"scp": ["a", "b:c"]}, ["a", "b:c"]),  # Okta: an array
        ({"scope": "a b:c"}, ["a", "b:c"]),  # RFC 9068: space-separated
        ({"scope": "  a\tb  "}, ["a", "b"]),
        ({"scp": "a b"}, ["a", "b"]),  # Azure AD style: scp as a string
        ({"scope": ["a"]}, ["a"]),
        ({"scp": ["a", "b"], "scope": "b c"}, ["a", "b", "c"]),  # both, no repeats
        ({"scp": ["a", "a"]}, ["a"]),
        ({}, []),
        ({"scp": []}, []),
        ({"scp": ""}, []),
        ({"scp": None}, []),
        ({"scp": 7}, []),
        ({"scp": {"a": True}}, []),
        ({"scp": [1, None, ["a"], {"b": 1}, "", " ", "ok"]}, ["ok"]),
        ({"scp": True, "scope": 1.5}, []),
    ],
)
def test_scopes_of(claims: dict[str, Any], expected: list[str]) -> None:
    assert scopes_of(claims) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["Admins", "Everyone"], ["Admins", "Everyone"]),
        (["Admins", "Admins"], ["Admins"]),
        ("Help Desk", ["Help Desk"]),  # one string is one group; names may contain spaces
        (["Help Desk"], ["Help Desk"]),
        ([], []),
        (None, []),
        (3, []),
        ({"Admins": True}, []),
        ([["Admins"], 1, None, "", "Admins"], ["Admins"]),
    ],
)
def test_groups_of(value: Any, expected: list[str]) -> None:
    assert groups_of({"groups": value}) == expected


def test_principals_of_an_okta_user_token() -> None:
    claims = {
        "sub": "alice@example.com",
        "cid": "0oa1",
        "scp": ["openid", "messages:read"],
        "groups": ["Admins"],
    }
    assert principals_for(claims, SETTINGS) == [
        Authenticated,
        "user:alice@example.com",
        "client:0oa1",
        "scope:openid",
        "scope:messages:read",
        "group:Admins",
    ]


def test_principals_without_settings_read_the_groups_claim() -> None:
    assert principals_for({"groups": ["Admins"]}) == [Authenticated, "group:Admins"]


def test_the_groups_claim_is_configurable() -> None:
    settings = OktaSettings(issuer=SETTINGS.issuer, groups_claim="roles")
    claims = {"groups": ["Ignored"], "roles": ["Admins"]}
    assert principals_for(claims, settings) == [Authenticated, "group:Admins"]


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": 5, "cid": ["x"]},
        {"sub": "", "cid": ""},
        {"sub": None, "cid": {"a": 1}},
    ],
)
def test_subject_and_client_of_the_wrong_type_are_ignored(claims: dict[str, Any]) -> None:
    assert principals_for(claims) == [Authenticated]


def test_prefixes_keep_namespaces_apart() -> None:
    # A group or scope named like a system principal must not become one.
    claims = {"scp": [Authenticated, "Admins"], "groups": ["system.Everyone", "messages:read"]}
    principals = principals_for(claims)
    assert principals.count(Authenticated) == 1
    assert "system.Everyone" not in principals
    assert scope("Admins") in principals and group("Admins") not in principals
    assert group("messages:read") in principals and scope("messages:read") not in principals


def test_configured_principals_default_and_callback() -> None:
    claims = {"sub": "bob", "tier": "gold"}
    assert configured_principals(SETTINGS)(claims) == [Authenticated, "user:bob"]
    settings = parse_settings(
        {
            "okta.issuer": SETTINGS.issuer,
            "okta.principals_callback": "tests.test_principals:extra_principals",
        }
    )
    assert settings.principals_callback is extra_principals
    assert configured_principals(settings)(claims) == [Authenticated, "user:bob", "role:gold"]


def roles_as_principals(claims: Any, settings: OktaSettings | None) -> list[str]:
    """A callback that hands a claim's values on as principals, unprefixed."""
    return [*principals_for(claims, settings), *claims.get("roles", [])]


def test_a_principals_callback_cannot_forge_issuer_or_token_principals() -> None:
    # issuer: and token: say who vouched for the token and how it was presented;
    # only the security policy knows that, so a callback's are dropped.
    settings = parse_settings(
        {
            "okta.issuer": SETTINGS.issuer,
            "okta.principals_callback": "tests.test_principals:roles_as_principals",
        }
    )
    forged = ["issuer:https://dev-1.okta.com/oauth2/aus9partners", "token:dpop", "auditor"]
    mapping = configured_principals(settings)
    assert mapping({"sub": "bob", "roles": forged}) == [Authenticated, "user:bob", "auditor"]
    identity = TokenIdentity(verified_token({"sub": "bob", "roles": forged}), mapping)
    assert identity.__principals__() == [Authenticated, "user:bob", "auditor", "token:bearer"]


def test_token_identity_uses_the_mapping_it_is_given() -> None:
    token = verified_token({"sub": "bob", "scp": ["a"]})
    assert TokenIdentity(token).__principals__() == [
        Authenticated,
        "user:bob",
        "scope:a",
        "token:bearer",
    ]
    identity = TokenIdentity(verified_token({"sub": "bob"}), lambda c: ["custom"])
    assert identity.__principals__() == ["custom", "token:bearer"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
CLAIM_NAMES = st.sampled_from(["sub", "cid", "scp", "scope", "groups", "roles", "other"])


@hypothesis_settings(deadline=None)  # a shared CI machine must not turn slowness into failure
@given(st.dictionaries(CLAIM_NAMES, JSON))
def test_any_claim_values_give_string_principals(claims: dict[str, Any]) -> None:
    principals = principals_for(claims, SETTINGS)
    assert principals[0] == Authenticated
    assert all(isinstance(p, str) and p for p in principals)
    assert len(set(principals)) == len(principals)
