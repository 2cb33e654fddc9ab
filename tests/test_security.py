from __future__ import annotations

import pytest
from pyramid.authorization import Authenticated
from pyramid.interfaces import ISecurityPolicy
from pyramid.request import Request
from pyramid.testing import DummyRequest
from zope.interface.verify import verifyClass

from okta_pyramid.security import (
    MalformedRequest,
    OktaSecurityPolicy,
    TokenIdentity,
    parse_bearer,
)
from okta_pyramid.tokens.verifier import AccessTokenVerifier, VerifiedToken

from .issuer import LoopbackIssuer, verified_token


def test_policy_implements_isecuritypolicy() -> None:
    assert verifyClass(ISecurityPolicy, OktaSecurityPolicy)


@pytest.mark.parametrize(("header", "token"), [
    (None, None),
    ("", None),
    ("Basic dXNlcjpwYXNz", None),
    ("Bearerabc", None),
    ("Bearer abc", "abc"),
    ("bearer abc", "abc"),
    ("BEARER abc", "abc"),
    ("bEaReR a.b.c", "a.b.c"),
    ("Bearer   abc  ", "abc"),
    ("Bearer A-Z_a~z+0/9==", "A-Z_a~z+0/9=="),
])
def test_parse_bearer(header: str | None, token: str | None) -> None:
    assert parse_bearer(header) == token


@pytest.mark.parametrize("header", [
    "Bearer",
    "Bearer ",
    "Bearer a b",
    "Bearer a, Bearer b",
    "Bearer a,b",
    "Bearer a=b",
    "Bearer \"abc\"",
    "Bearer abc\tdef",
    "Bearer é",
    "Bearer a\x00b",
])
def test_malformed_bearer_header(header: str) -> None:
    with pytest.raises(MalformedRequest):
        parse_bearer(header)


def test_principals() -> None:
    identity = TokenIdentity(verified_token({"sub": "alice@example.com", "cid": "0oa1"}))
    assert identity.__principals__() == [Authenticated, "user:alice@example.com", "client:0oa1"]
    assert TokenIdentity(verified_token({})).__principals__() == [Authenticated]


def test_identity_is_computed_once_per_request(issuer: LoopbackIssuer) -> None:
    calls = []

    class CountingVerifier(AccessTokenVerifier):
        def verify_token(self, token: str) -> VerifiedToken:
            calls.append(token)
            return super().verify_token(token)

    policy = OktaSecurityPolicy(CountingVerifier(issuer.issuer))
    request = Request.blank("/", headers={"Authorization": "Bearer " + issuer.mint()},
                            remote_addr="192.0.2.1")
    for _ in range(3):
        assert policy.identity(request).subject == "alice@example.com"
        assert policy.authenticated_userid(request) == "alice@example.com"
    assert len(calls) == 1


def test_remember_and_forget_set_nothing(issuer: LoopbackIssuer) -> None:
    policy = OktaSecurityPolicy(AccessTokenVerifier(issuer.issuer))
    assert policy.remember(DummyRequest(), "alice") == []
    assert policy.forget(DummyRequest()) == []
