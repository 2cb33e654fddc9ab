from __future__ import annotations

from typing import Any

import pytest
from pyramid.authorization import Authenticated
from pyramid.interfaces import IAuthenticationPolicy, ISecurityPolicy
from pyramid.request import Request
from pyramid.testing import DummyRequest
from zope.interface.verify import verifyClass

from okta_pyramid.bearer import BearerTokenReader
from okta_pyramid.security import OktaSecurityPolicy, TokenIdentity
from okta_pyramid.tokens import AccessTokenVerifier, InvalidToken, VerifiedToken
from okta_pyramid.tokens.exceptions import MalformedRequest

from .issuer import LoopbackIssuer, verified_token


def test_policy_implements_isecuritypolicy() -> None:
    assert verifyClass(ISecurityPolicy, OktaSecurityPolicy)


def test_reader_is_still_a_pyramid_jwt_authentication_policy() -> None:
    assert verifyClass(IAuthenticationPolicy, BearerTokenReader)


@pytest.fixture
def policy(issuer: LoopbackIssuer) -> OktaSecurityPolicy:
    return OktaSecurityPolicy(AccessTokenVerifier(issuer.issuer, issuer.audience))


def verdict(policy: OktaSecurityPolicy, header: str | None) -> Any:
    headers = {} if header is None else {"Authorization": header}
    return policy.authenticate(Request.blank("/", headers=headers))


# RFC 6750 §2.1: the scheme is case-insensitive; the token is one b64token.
@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearerabc",
        "DPoPabc",
    ],
)
def test_no_bearer_credentials(policy: OktaSecurityPolicy, header: str | None) -> None:
    assert verdict(policy, header) == (None, None, None)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "bearer abc",
        "BEARER abc",
        "bEaReR a.b.c",
        "Bearer   abc  ",
        "Bearer A-Z_a~z+0/9==",
    ],
)
def test_well_formed_bearer_credentials_reach_the_verifier(
    policy: OktaSecurityPolicy, header: str
) -> None:
    # Well-formed, so judged as a token (401), not refused as a request (400).
    assert isinstance(verdict(policy, header).failure, InvalidToken)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a, Bearer b",
        "Bearer a,b",
        "Bearer a=b",
        'Bearer "abc"',
        "Bearer abc\tdef",
        "Bearer é",
        "Bearer a\x00b",
    ],
)
def test_malformed_bearer_header(policy: OktaSecurityPolicy, header: str) -> None:
    assert isinstance(verdict(policy, header).failure, MalformedRequest)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_a_valid_token_under_any_spelling_of_the_scheme(
    policy: OktaSecurityPolicy, issuer: LoopbackIssuer, scheme: str
) -> None:
    identity = verdict(policy, f"{scheme} {issuer.mint()}").identity
    assert identity.subject == "alice@example.com"


def test_principals() -> None:
    identity = TokenIdentity(verified_token({"sub": "alice@example.com", "cid": "0oa1"}))
    assert identity.__principals__() == [
        Authenticated,
        "user:alice@example.com",
        "client:0oa1",
        "token:bearer",
    ]
    assert TokenIdentity(verified_token({})).__principals__() == [Authenticated, "token:bearer"]
    assert TokenIdentity(verified_token({}), scheme="DPoP").__principals__() == [
        Authenticated,
        "token:dpop",
    ]


def test_identity_is_computed_once_per_request(issuer: LoopbackIssuer) -> None:
    calls = []

    class CountingVerifier(AccessTokenVerifier):
        def verify_token(self, token: str) -> VerifiedToken:
            calls.append(token)
            return super().verify_token(token)

    policy = OktaSecurityPolicy(CountingVerifier(issuer.issuer))
    request = Request.blank(
        "/", headers={"Authorization": "Bearer " + issuer.mint()}, remote_addr="192.0.2.1"
    )
    for _ in range(3):
        identity = policy.identity(request)
        assert identity is not None and identity.subject == "alice@example.com"
        assert policy.authenticated_userid(request) == "alice@example.com"
    assert len(calls) == 1


def test_remember_and_forget_set_nothing(issuer: LoopbackIssuer) -> None:
    policy = OktaSecurityPolicy(AccessTokenVerifier(issuer.issuer))
    assert policy.remember(DummyRequest(), "alice") == []
    assert policy.forget(DummyRequest()) == []


# -- pyramid_jwt's hooks, doing the work ----------------------------------------------


@pytest.fixture
def reader(issuer: LoopbackIssuer) -> BearerTokenReader:
    return BearerTokenReader(AccessTokenVerifier(issuer.issuer, issuer.audience))


def test_reader_hooks_use_its_header_and_scheme(issuer: LoopbackIssuer) -> None:
    reader = BearerTokenReader(
        AccessTokenVerifier(issuer.issuer, issuer.audience),
        http_header="X-Access-Token",
        auth_type="Token",
    )
    token = issuer.mint()
    assert reader.http_header == "X-Access-Token" and reader.auth_type == "Token"
    assert reader.get_claims(Request.blank("/", headers={"X-Access-Token": f"token {token}"}))
    assert reader.get_claims(Request.blank("/", headers={"Authorization": f"Bearer {token}"})) == {}


def test_get_claims_are_the_validated_claims(
    reader: BearerTokenReader, issuer: LoopbackIssuer
) -> None:
    request = Request.blank("/", headers={"Authorization": f"Bearer {issuer.mint(tier='gold')}"})
    claims = reader.get_claims(request)
    assert claims["sub"] == "alice@example.com" and claims["tier"] == "gold"
    assert reader.unauthenticated_userid(request) == "alice@example.com"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer a b"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_get_claims_is_empty_without_an_acceptable_token(
    reader: BearerTokenReader, headers: dict[str, str]
) -> None:
    request = Request.blank("/", headers=headers)
    assert reader.get_claims(request) == {}
    assert reader.unauthenticated_userid(request) is None


def test_jwt_decode_asks_the_verifier(reader: BearerTokenReader, issuer: LoopbackIssuer) -> None:
    request = Request.blank("/")
    assert reader.jwt_decode(request, issuer.mint())["sub"] == "alice@example.com"
    assert reader.jwt_decode(request, issuer.mint(aud="api://another")) == {}


def test_jwt_decode_grants_nothing_to_a_bound_token(
    reader: BearerTokenReader, issuer: LoopbackIssuer
) -> None:
    # Without its DPoP proof a bound token is no bearer token (RFC 9449 §7.2).
    request = Request.blank("/")
    assert reader.jwt_decode(request, issuer.mint(cnf={"jkt": "A" * 43})) == {}


def test_reader_never_issues_tokens(reader: BearerTokenReader) -> None:
    with pytest.raises(NotImplementedError, match="issues them"):
        reader.create_token("alice")


def test_reader_sets_no_headers_and_does_not_warn(reader: BearerTokenReader) -> None:
    # pyramid_jwt warns here; a resource server has simply nothing to set.
    assert reader.remember(DummyRequest(), "alice") == []
    assert reader.forget(DummyRequest()) == []


@pytest.mark.parametrize("method", ["authenticated_userid", "effective_principals"])
def test_reader_points_pyramid_1_callers_at_the_security_policy(
    reader: BearerTokenReader, method: str
) -> None:
    with pytest.raises(NotImplementedError, match="security policy"):
        getattr(reader, method)(DummyRequest())
