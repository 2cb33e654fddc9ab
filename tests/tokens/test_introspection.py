"""Token introspection (RFC 7662), over real HTTP to the loopback issuer, which
authenticates the client as strictly as Okta does."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypedDict

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from okta_pyramid.tokens import exceptions as exc
from okta_pyramid.tokens.capacity import CallSlots
from okta_pyramid.tokens.client_auth import (
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJWT,
    load_private_key,
    signing_algorithm,
)
from okta_pyramid.tokens.discovery import IssuerClient
from okta_pyramid.tokens.introspection import (
    INACTIVE_TTL,
    InactiveToken,
    IntrospectingVerifier,
    IntrospectionUnavailable,
    TokenIntrospector,
)
from okta_pyramid.tokens.verifier import AccessTokenVerifier, VerifiedToken

from ..helpers import Clock, run_together, wait_for
from ..issuer import DROP, LoopbackIssuer, rsa_key

INTROSPECT = "/oauth2/default/v1/introspect"
ODD_ID = "0oa:odd%id+x y/~"
ODD_SECRET = "s:e%cr+et w/rd&="
LOGGER = "okta_pyramid.tokens.introspection"


class Rules(TypedDict, total=False):
    """The claim rules an :class:`AccessTokenVerifier` takes as keywords."""

    client_ids: list[str]
    required_claims: list[tuple[str, str | None]]


def introspector(
    issuer: LoopbackIssuer,
    auth: Any = None,
    *,
    clock: Clock | None = None,
    http_timeout: float = 2,
    rules: Rules | None = None,
    **options: Any,
) -> TokenIntrospector:
    clock = clock or Clock(time.time())
    verifier = AccessTokenVerifier(issuer.issuer, issuer.audience, clock=clock, **(rules or {}))
    return TokenIntrospector(
        IssuerClient(issuer.issuer, http_timeout=http_timeout),
        auth or ClientSecretBasic(issuer.CLIENT_ID, issuer.CLIENT_SECRET),
        rules=verifier,
        clock=clock,
        **options,
    )


def calls(issuer: LoopbackIssuer) -> int:
    """Requests the issuer's introspection endpoint received."""
    return issuer.hits[INTROSPECT]


def in_thread(target: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# -- client authentication, as the server sees it ------------------------------------


def test_client_secret_basic_form_urlencodes_the_id_and_the_secret(issuer: LoopbackIssuer) -> None:
    issuer.add_client(ODD_ID, ODD_SECRET)
    token = issuer.opaque()
    verified = introspector(issuer, ClientSecretBasic(ODD_ID, ODD_SECRET)).introspect(token)
    assert verified.claims()["sub"] == "alice@example.com"
    [call] = issuer.introspections
    assert (call.method, call.client_id, call.error) == ("client_secret_basic", ODD_ID, None)
    assert (call.token, call.token_type_hint) == (token, "access_token")
    assert set(call.form) == {"token", "token_type_hint"}  # nothing else in the body


def test_client_secret_post(issuer: LoopbackIssuer) -> None:
    auth = ClientSecretPost(issuer.CLIENT_ID, issuer.CLIENT_SECRET)
    introspector(issuer, auth).introspect(issuer.opaque())
    [call] = issuer.introspections
    assert (call.method, call.client_id, call.error) == (
        "client_secret_post",
        issuer.CLIENT_ID,
        None,
    )
    assert call.authorization is None and call.token_type_hint == "access_token"


@pytest.mark.parametrize(
    "kty, kid", [("RSA", "client-key-1"), ("RSA", None), ("EC", "client-key-1"), ("EC", None)]
)
def test_private_key_jwt(issuer: LoopbackIssuer, kty: str, kid: str | None) -> None:
    key = issuer.add_key_client(kty=kty, kid=kid)
    auth = PrivateKeyJWT(key.client_id, load_private_key(key.pem), key_id=kid)
    assert auth.algorithm == key.algorithm
    check = introspector(issuer, auth)
    before = time.time()
    check.introspect(issuer.opaque())
    check.introspect(issuer.opaque())
    first, second = issuer.introspections
    for call in (first, second):
        assert (call.method, call.client_id, call.error) == (
            "private_key_jwt",
            key.client_id,
            None,
        ), call.reason
        assert call.token_type_hint == "access_token"
        claims = call.assertion_claims
        assert claims is not None and call.assertion_header is not None
        # RFC 7523 §3: aud is the endpoint, iss and sub the client, a short life.
        assert claims["aud"] == issuer.introspection_endpoint
        assert claims["iss"] == claims["sub"] == key.client_id
        assert before - 1 <= claims["iat"] <= time.time()
        assert 0 < claims["exp"] - claims["iat"] <= 60
        assert call.assertion_header["alg"] == key.algorithm
        assert call.assertion_header.get("kid") == kid
        assert ("kid" in call.assertion_header) is (kid is not None)
    # (The ignore: both calls carried claims, as the loop above asserted.)
    assert first.assertion_claims["jti"] != second.assertion_claims["jti"]  # type: ignore[index]


def test_secrets_and_keys_are_never_shown(
    issuer: LoopbackIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = issuer.add_key_client(kty="EC", kid=None)
    private_key = load_private_key(key.pem)
    d = private_key.private_numbers().private_value  # type: ignore[union-attr]
    auths = [
        ClientSecretBasic(issuer.CLIENT_ID, "wrong-" + ODD_SECRET),
        ClientSecretPost(issuer.CLIENT_ID, "wrong-" + ODD_SECRET),
        PrivateKeyJWT("0oa-unregistered", private_key),
    ]
    token = issuer.opaque()
    for auth in auths:
        assert repr(auth).startswith(f"<{type(auth).__name__} client_id=")
        with pytest.raises(IntrospectionUnavailable) as info:
            introspector(issuer, auth).introspect(token)
        shown = [
            repr(auth),
            str(info.value),
            info.value.description,
            *(record.getMessage() for record in caplog.records),
        ]
        for text in shown:
            assert ODD_SECRET not in text and "wrong-" not in text
            assert str(d) not in text and "PRIVATE KEY" not in text
            assert token not in text
    # The server refused each one: the refusals are why the calls failed.
    assert [call.error for call in issuer.introspections] == ["invalid_client"] * 3
    assert any(
        "check the introspection client id" in record.getMessage() for record in caplog.records
    )


# -- the client's key ------------------------------------------------------------------


def pem(key: Any, encryption: Any = None) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    "curve, algorithm",
    [(ec.SECP256R1(), "ES256"), (ec.SECP384R1(), "ES384"), (ec.SECP521R1(), "ES512")],
)
def test_signing_algorithm_of_the_nist_curves(curve: Any, algorithm: str) -> None:
    key = ec.generate_private_key(curve)
    assert signing_algorithm(key) == algorithm
    assert signing_algorithm(load_private_key(pem(key))) == algorithm
    assert signing_algorithm(rsa_key(40)) == "RS256"


@pytest.mark.parametrize(
    "make_key, message",
    [
        (
            # A short key, on purpose: it must be refused.
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
            "the RSA key has 1024 bits; at least 2048 are needed",
        ),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "P-256, P-384 or P-521"),
        (lambda: ed25519.Ed25519PrivateKey.generate(), "P-256, P-384 or P-521"),
    ],
    ids=["short-rsa", "secp256k1", "ed25519"],
)
def test_keys_that_cannot_sign_an_assertion_are_refused(
    make_key: Callable[[], Any], message: str
) -> None:
    key = make_key()
    with pytest.raises(ValueError, match=message):
        signing_algorithm(key)
    with pytest.raises(ValueError, match=message):
        PrivateKeyJWT("0oa-x", key)
    text = pem(key)
    with pytest.raises(ValueError, match=message) as info:
        load_private_key(text)
    assert not _quotes(str(info.value), text)


@pytest.mark.parametrize(
    "make_pem",
    [
        lambda: pem(rsa_key(40), serialization.BestAvailableEncryption(b"passphrase")),
        lambda: (
            b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n"
        ),
        lambda: b"garbage",
        lambda: b"",
        lambda: (
            rsa_key(40)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ),
    ],
    ids=["encrypted", "not-der", "garbage", "empty", "public-key"],
)
def test_a_pem_that_is_not_an_unencrypted_private_key_is_refused(
    make_pem: Callable[[], bytes],
) -> None:
    text = make_pem()
    with pytest.raises(ValueError, match="not an unencrypted PEM private key") as info:
        load_private_key(text)
    assert not _quotes(str(info.value), text)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def _quotes(message: str, pem_text: bytes) -> bool:
    """Whether ``message`` repeats any line of the PEM's body."""
    lines = [
        line
        for line in pem_text.decode("latin-1").splitlines()
        if line and not line.startswith("-----")
    ]
    return any(line in message for line in lines)


# -- the endpoint and the exchange -------------------------------------------------


def test_the_endpoint_comes_from_the_metadata_only(issuer: LoopbackIssuer) -> None:
    other = LoopbackIssuer()
    try:
        issuer.metadata_overrides = {"introspection_endpoint": other.introspection_endpoint}
        token = other.opaque(iss=issuer.issuer)
        assert introspector(issuer).introspect(token).claims()["iss"] == issuer.issuer
        assert (calls(issuer), calls(other)) == (0, 1)
    finally:
        other.close()


@pytest.mark.parametrize(
    "endpoint",
    [None, "http://introspect.example.com/v1/introspect", "ftp://127.0.0.1/v1/introspect", 42],
)
def test_no_usable_endpoint_in_the_metadata_is_unavailable(
    issuer: LoopbackIssuer, endpoint: Any, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.metadata_overrides = {"introspection_endpoint": endpoint}
    check = introspector(issuer)
    assert check.client.metadata().introspection_endpoint is None
    with pytest.raises(IntrospectionUnavailable):
        check.introspect(issuer.opaque())
    assert calls(issuer) == 0
    assert any("introspection_endpoint" in record.getMessage() for record in caplog.records)


def test_redirects_are_not_followed(issuer: LoopbackIssuer) -> None:
    issuer.introspection_mode = "redirect"
    with pytest.raises(IntrospectionUnavailable):
        introspector(issuer).introspect(issuer.opaque())
    assert calls(issuer) == 1
    assert issuer.hits["/elsewhere"] == 0


def test_an_answer_over_the_size_cap_is_refused(issuer: LoopbackIssuer) -> None:
    # The same JSON answer, padded past 512 KiB: only the cap refuses it.
    issuer.introspection_mode = "huge"
    with pytest.raises(IntrospectionUnavailable):
        introspector(issuer).introspect(issuer.opaque())


@pytest.mark.parametrize("mode", ["hang", "drip_headers"])
def test_one_deadline_covers_the_whole_call(issuer: LoopbackIssuer, mode: str) -> None:
    issuer.introspection_mode = mode
    check = introspector(issuer, http_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(IntrospectionUnavailable):
        check.introspect(issuer.opaque())
    assert time.monotonic() - started < 2  # the issuer goes on for 30 s or 60 s
    assert calls(issuer) == 1


# -- judging the answer --------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"active": "true"},
        {"active": 1},
        {"active": None},
        {"sub": "alice@example.com"},
        [{"active": True}],
        "active",
        True,
        b"<html>not json",
        b"",
    ],
    ids=[
        "string",
        "one",
        "null",
        "missing",
        "list",
        "json-string",
        "json-true",
        "not-json",
        "empty",
    ],
)
def test_active_must_be_json_true_in_an_object(issuer: LoopbackIssuer, answer: Any) -> None:
    issuer.introspection_answer = answer
    with pytest.raises(IntrospectionUnavailable) as info:  # never InactiveToken, never 200
        introspector(issuer).introspect(issuer.opaque())
    assert info.value.reason == "introspection_unavailable"


@pytest.mark.parametrize(
    "body",
    [
        b'{"active": true, "sub": "alice@example.com", "weight": NaN}',
        b'{"active": true, "sub": "alice@example.com", "exp": Infinity}',
        b'{"active": false, "active": true, "sub": "alice@example.com"}',
        b'{"active": true, "aud": "api://other", "aud": "api://default"}',
    ],
    ids=["nan", "infinity", "active-twice", "aud-twice"],
)
def test_an_answer_that_is_not_strict_json_is_no_answer(
    issuer: LoopbackIssuer, body: bytes
) -> None:
    # RFC 8259 has no NaN, and a repeated name is read one way here and another way
    # elsewhere (RFC 7159 §4): neither is an answer to act on, as in a token.
    issuer.introspection_answer = body
    with pytest.raises(IntrospectionUnavailable):
        introspector(issuer).introspect(issuer.opaque())


def test_an_inactive_token_is_refused(issuer: LoopbackIssuer) -> None:
    token = issuer.opaque()
    issuer.revoke(token)
    with pytest.raises(InactiveToken) as info:
        introspector(issuer).introspect(token)
    assert info.value.reason == "inactive"
    assert isinstance(info.value, exc.InvalidToken)


HOUR = 3600
NOW = int(time.time())


@pytest.mark.parametrize(
    "claims, rules, error",
    [
        ({"exp": NOW - HOUR, "iat": NOW - 2 * HOUR}, {}, exc.ExpiredToken),
        ({"nbf": NOW + HOUR}, {}, exc.ImmatureToken),
        ({"iat": NOW + HOUR, "exp": NOW + 2 * HOUR}, {}, exc.ImmatureToken),
        ({"iss": "https://other.example.com/oauth2/default"}, {}, exc.InvalidIssuer),
        ({"aud": "api://other"}, {}, exc.InvalidAudience),
        ({}, {"client_ids": ["0oa-other-client"]}, exc.InvalidClaims),
        ({}, {"required_claims": [("uid", "00u-other-user")]}, exc.RequiredClaimNotMet),
        ({}, {"required_claims": [("groups", None)]}, exc.RequiredClaimNotMet),
    ],
    ids=[
        "expired",
        "nbf-future",
        "iat-future",
        "other-issuer",
        "other-audience",
        "client-not-allowed",
        "required-value",
        "required-presence",
    ],
)
def test_an_active_answer_is_judged_like_a_jwt(
    issuer: LoopbackIssuer, claims: dict[str, Any], rules: Rules, error: type[Exception]
) -> None:
    issuer.introspection_answer = issuer.introspected(issuer.claims(**claims))
    with pytest.raises(error) as by_introspection:
        introspector(issuer, rules=rules).introspect(issuer.opaque())
    with pytest.raises(error) as locally:
        AccessTokenVerifier(issuer.issuer, issuer.audience, **rules).verify(issuer.mint(**claims))
    assert type(by_introspection.value) is type(locally.value) is error


def test_an_answer_without_aud_does_not_open_the_api_to_an_opaque_token(
    issuer: LoopbackIssuer,
) -> None:
    # Ory Hydra leaves "aud" out of the answer for a token granted no audience
    # (omitempty): such a token was meant for no API in particular, and a JWT
    # without aud is refused too (RFC 9068 §4). A JWT that passed the local checks
    # had its own aud checked: its answer need not repeat it.
    token = issuer.mint()
    verified = AccessTokenVerifier(issuer.issuer, issuer.audience).verify_token(token)
    answer = issuer.introspected(verified.claims())
    del answer["aud"]
    issuer.introspection_answer = answer
    with pytest.raises(exc.InvalidClaims, match="'aud'"):
        introspector(issuer).introspect(issuer.opaque())
    assert introspector(issuer).confirm(token, verified) is verified


def test_client_ids_and_required_claims_accept_a_matching_answer(issuer: LoopbackIssuer) -> None:
    # Okta's answer names the client in client_id (a JWT has cid).
    rules: Rules = {
        "client_ids": ["0oa-test-client"],
        "required_claims": [("uid", "00u-test-user")],
    }
    answer = introspector(issuer, rules=rules).introspect(issuer.opaque()).claims()
    assert answer["client_id"] == "0oa-test-client" and "cid" not in answer


@pytest.mark.parametrize(
    "extra",
    [
        {"token_type": "refresh_token"},
        {"token_type": "id_token"},
        {"token_type": 7},
        {"token_use": "refresh_token"},
        {"token_use": 1},
        {"typ": "Refresh"},
        {"typ": "ID"},
        {"token_type": "DPoP"},
        {"token_type": "DPoP", "cnf": {"x5t#S256": "abc"}},
        {"cnf": "jkt"},
    ],
    ids=[
        "refresh",
        "id-token",
        "number",
        "hydra-refresh",
        "hydra-number",
        "keycloak-refresh",
        "keycloak-id",
        "dpop-without-cnf",
        "dpop-without-jkt",
        "cnf-not-object",
    ],
)
def test_an_answer_that_is_not_a_usable_access_token_is_refused(
    issuer: LoopbackIssuer, extra: dict[str, Any]
) -> None:
    issuer.introspection_answer = {**issuer.introspected(issuer.claims()), **extra}
    with pytest.raises(exc.InvalidToken) as info:
        introspector(issuer).introspect(issuer.opaque())
    assert type(info.value) in (exc.InvalidToken, exc.InvalidClaims)


@pytest.mark.parametrize(
    "extra",
    [
        {"token_type": "Bearer"},
        {"token_type": "bearer"},
        {"token_type": "DPoP"},
        {"token_use": "access_token"},
        {"typ": "Bearer"},
    ],
    ids=["bearer", "lower-case", "dpop", "hydra-access-token", "keycloak-bearer"],
)
def test_access_token_types_are_accepted(issuer: LoopbackIssuer, extra: dict[str, Any]) -> None:
    answer = {**issuer.introspected(issuer.claims(cnf={"jkt": "thumbprint"})), **extra}
    issuer.introspection_answer = answer
    assert introspector(issuer).introspect(issuer.opaque()).claims() == {
        k: v for k, v in answer.items() if k != "active"
    }


def test_cnf_jkt_in_the_answer_binds_the_token(issuer: LoopbackIssuer) -> None:
    check = introspector(issuer)
    bound = check.introspect(issuer.opaque(cnf={"jkt": "thumbprint"}))
    assert (bound.bound, bound.jkt) == (True, "thumbprint")
    assert bound.claims()["token_type"] == "DPoP"
    plain = check.introspect(issuer.opaque())
    assert (plain.bound, plain.jkt) == (False, None)


@pytest.mark.parametrize(
    "jwt_cnf, answer_cnf, accepted",
    [
        ({"jkt": "key-a"}, {"jkt": "key-a"}, True),
        ({"jkt": "key-a"}, None, True),
        ({"jkt": "key-a"}, {"jkt": "key-b"}, False),
        (None, {"jkt": "key-b"}, False),
    ],
    ids=["same-key", "answer-names-none", "another-key", "unbound-jwt"],
)
def test_confirm_refuses_an_answer_bound_to_another_key(
    issuer: LoopbackIssuer, jwt_cnf: Any, answer_cnf: Any, accepted: bool
) -> None:
    verifier = AccessTokenVerifier(issuer.issuer, issuer.audience)
    token = issuer.mint(cnf=jwt_cnf) if jwt_cnf else issuer.mint()
    verified = verifier.verify_token(token)
    claims = verified.claims()
    claims.pop("cnf", None)
    answer = issuer.introspected(claims)
    if answer_cnf:
        answer.update(cnf=answer_cnf, token_type="DPoP")
    issuer.introspection_answer = answer
    check = introspector(issuer)
    if accepted:
        assert check.confirm(token, verified) is verified
    else:
        with pytest.raises(exc.InvalidToken, match="another key"):
            check.confirm(token, verified)


@pytest.mark.parametrize(
    "other", [{"jti": "AT.another-token"}, {"sub": "mallory@example.com"}], ids=["jti", "sub"]
)
def test_confirm_takes_no_answer_about_another_token(
    issuer: LoopbackIssuer, other: dict[str, str]
) -> None:
    # An answer whose jti or sub is not the token's describes some other token (a
    # confused endpoint or cache in front of it): no word on this one, so 503.
    verifier = AccessTokenVerifier(issuer.issuer, issuer.audience)
    token = issuer.mint()
    verified = verifier.verify_token(token)
    issuer.introspection_answer = {**issuer.introspected(verified.claims()), **other}
    with pytest.raises(IntrospectionUnavailable):
        introspector(issuer).confirm(token, verified)
    # Members the answer leaves out are no mismatch (Ory Hydra sends no jti).
    answer = issuer.introspected(verified.claims())
    del answer["jti"], answer["sub"]
    issuer.introspection_answer = answer
    assert introspector(issuer).confirm(token, verified) is verified


def test_confirm_judges_a_jwt_by_its_own_claims(issuer: LoopbackIssuer) -> None:
    # Okta answers scp as "scope" and cid as "client_id": a JWT that met
    # okta.required_claims locally still meets them once introspected.
    rules: Rules = {"required_claims": [("scp", "openid"), ("cid", "0oa-test-client")]}
    verifier = AccessTokenVerifier(issuer.issuer, issuer.audience, **rules)
    token = issuer.mint()
    verified = verifier.verify_token(token)
    assert introspector(issuer, rules=rules).confirm(token, verified) is verified
    assert calls(issuer) == 1
    issuer.revoke(token)
    with pytest.raises(InactiveToken):
        introspector(issuer, rules=rules).confirm(token, verified)


def test_confirm_needs_no_client_id_in_the_answer(issuer: LoopbackIssuer) -> None:
    # RFC 7662 §2.2: client_id is optional; the JWT's own cid met okta.client_ids.
    rules: Rules = {"client_ids": ["0oa-test-client"]}
    verifier = AccessTokenVerifier(issuer.issuer, issuer.audience, **rules)
    token = issuer.mint()
    verified = verifier.verify_token(token)
    issuer.introspection_answer = {"active": True, "scope": "openid"}
    assert introspector(issuer, rules=rules).confirm(token, verified) is verified
    # An answer that names another client is still refused.
    issuer.introspection_answer = {"active": True, "client_id": "0oa-someone-else"}
    with pytest.raises(exc.InvalidClaims):
        introspector(issuer, rules=rules).confirm(token, verified)
    # A token judged by the answer alone still needs its client named.
    issuer.introspection_answer = issuer.introspected(issuer.claims(cid=DROP))
    with pytest.raises(exc.InvalidClaims):
        introspector(issuer, rules=rules).introspect(issuer.opaque())


# -- the cache -----------------------------------------------------------------------


def test_an_answer_is_reused(issuer: LoopbackIssuer) -> None:
    check = introspector(issuer)
    opaque = issuer.opaque()
    first = check.introspect(opaque)
    assert check.introspect(opaque) is first
    token = issuer.mint()
    verified = AccessTokenVerifier(issuer.issuer, issuer.audience).verify_token(token)
    check.confirm(token, verified)
    assert check.confirm(token, verified) is verified
    assert calls(issuer) == 2 == check.calls


@pytest.mark.parametrize("cache_ttl, lifetime", [(30, 3600), (300, 10)], ids=["ttl", "exp"])
def test_an_answer_is_reused_for_the_ttl_and_never_past_its_exp(
    issuer: LoopbackIssuer, cache_ttl: int, lifetime: int
) -> None:
    clock = Clock(time.time())
    check = introspector(issuer, clock=clock, cache_ttl=cache_ttl)
    exp = int(clock.now) + lifetime
    until = min(clock.now + cache_ttl, exp)
    token = issuer.opaque(exp=exp)
    check.introspect(token)
    clock.now = until - 0.5
    check.introspect(token)
    assert calls(issuer) == 1
    # Then asked again, even where exp is still within the leeway.
    clock.now = until + 0.5
    check.introspect(token)
    assert calls(issuer) == 2


@pytest.mark.parametrize(
    "revoked, cache_ttl, lifetime",
    [(False, 300, 10), (True, 30, 600)],
    ids=["active-answer-without-exp", "inactive"],
)
def test_confirm_keeps_an_answer_until_the_jwt_expires_and_no_longer(
    issuer: LoopbackIssuer, revoked: bool, cache_ttl: int, lifetime: int
) -> None:
    # An active answer never outlives the JWT, even one that names no exp; an
    # inactive answer is final, kept long past the TTL until the JWT expires.
    clock = Clock(time.time())
    verifier = AccessTokenVerifier(issuer.issuer, issuer.audience, clock=clock)
    check = introspector(issuer, clock=clock, cache_ttl=cache_ttl)
    token = issuer.mint(exp=int(clock.now) + lifetime)
    verified = verifier.verify_token(token)
    if revoked:
        issuer.revoke(token)
    else:
        answer = issuer.introspected(verified.claims())
        del answer["exp"]
        issuer.introspection_answer = answer

    def confirm() -> None:
        if revoked:
            with pytest.raises(InactiveToken):
                check.confirm(token, verified)
        else:
            assert check.confirm(token, verified) is verified

    confirm()
    clock.now = verified.not_after - 1
    confirm()
    assert calls(issuer) == 1
    clock.now = verified.not_after
    confirm()
    assert calls(issuer) == 2


def test_an_inactive_opaque_token_is_remembered_for_inactive_ttl(issuer: LoopbackIssuer) -> None:
    clock = Clock(time.time())
    check = introspector(issuer, clock=clock, cache_ttl=30)
    token = issuer.opaque()
    issuer.revoke(token)
    with pytest.raises(InactiveToken):
        check.introspect(token)
    clock.now += INACTIVE_TTL - 1
    with pytest.raises(InactiveToken):
        check.introspect(token)
    assert calls(issuer) == 1
    clock.now += 1
    with pytest.raises(InactiveToken):
        check.introspect(token)
    assert calls(issuer) == 2


def test_a_token_not_valid_yet_is_asked_again_once_it_is(issuer: LoopbackIssuer) -> None:
    # Unlike an inactive answer, "not yet" is not final.
    clock = Clock(time.time())
    check = introspector(issuer, clock=clock, cache_ttl=30)
    token = issuer.opaque(nbf=int(clock.now) + 120)
    with pytest.raises(exc.ImmatureToken):
        check.introspect(token)
    clock.now += 29
    with pytest.raises(exc.ImmatureToken):
        check.introspect(token)
    assert calls(issuer) == 1
    clock.now += 62
    assert check.introspect(token).claims()["nbf"] == token_nbf(issuer, token)
    assert calls(issuer) == 2


def token_nbf(issuer: LoopbackIssuer, token: str) -> Any:
    return issuer.opaque_tokens[token]["nbf"]


def test_cache_ttl_zero_asks_every_time(issuer: LoopbackIssuer) -> None:
    check = introspector(issuer, cache_ttl=0)
    token, revoked = issuer.opaque(), issuer.opaque()
    issuer.revoke(revoked)
    for _ in range(3):
        check.introspect(token)
        with pytest.raises(InactiveToken):
            check.introspect(revoked)
    assert calls(issuer) == 6


def test_the_cache_is_bounded_by_entries(issuer: LoopbackIssuer) -> None:
    check = introspector(issuer, cache_size=2)
    first, second, third = (issuer.opaque() for _ in range(3))
    for token in (first, second, third, third, second):
        check.introspect(token)
    assert calls(issuer) == 3
    check.introspect(first)  # the least recently used went first
    assert calls(issuer) == 4
    assert check.cache is not None and len(check.cache) == 2


# -- one call per token at a time --------------------------------------------------------


def test_concurrent_requests_for_one_token_make_one_call(issuer: LoopbackIssuer) -> None:
    issuer.introspection_delay = 0.3
    check = introspector(issuer)
    token = issuer.opaque()
    results: list[VerifiedToken] = []
    run_together(lambda: results.append(check.introspect(token)), [()] * 8)
    assert len(results) == 8 and all(result is results[0] for result in results)
    assert calls(issuer) == 1


def test_requests_waiting_for_a_failed_call_fail_with_it(issuer: LoopbackIssuer) -> None:
    issuer.introspection_delay = 0.3
    issuer.introspection_mode = "error"
    check = introspector(issuer)
    token = issuer.opaque()
    errors: list[Exception] = []

    def ask() -> None:
        try:
            check.introspect(token)
        except Exception as error:  # every failure is what is counted
            errors.append(error)

    run_together(ask, [()] * 5)
    assert len(errors) == 5
    assert all(type(error) is IntrospectionUnavailable for error in errors)
    assert calls(issuer) == 1


# -- failure is closed and bounded -----------------------------------------------------


@pytest.mark.parametrize("mode", ["error", "garbage", "unauthorized", "redirect", "huge"])
def test_a_failing_endpoint_is_unavailable_never_inactive(
    issuer: LoopbackIssuer, mode: str
) -> None:
    issuer.introspection_mode = mode
    token = issuer.opaque()
    check = introspector(issuer)
    with pytest.raises(IntrospectionUnavailable) as info:
        check.introspect(token)
    assert info.value.retry_after >= 1
    jwt = issuer.mint()
    verified = AccessTokenVerifier(issuer.issuer, issuer.audience).verify_token(jwt)
    with pytest.raises(IntrospectionUnavailable):
        introspector(issuer).confirm(jwt, verified)


@pytest.mark.parametrize("mode", ["error", "rate_limited"])
def test_calls_pause_after_a_failure(issuer: LoopbackIssuer, mode: str) -> None:
    # A server that fails (5xx) or asks for fewer calls (429) is given a pause.
    issuer.introspection_mode = mode
    check = introspector(issuer, failure_backoff=1)
    token = issuer.opaque()
    with pytest.raises(IntrospectionUnavailable):
        check.introspect(token)
    issuer.introspection_mode = "ok"
    with pytest.raises(IntrospectionUnavailable) as info:
        check.introspect(issuer.opaque())  # another token: no call either
    assert info.value.retry_after == 1
    assert calls(issuer) == 1
    time.sleep(1.1)
    check.introspect(token)
    assert calls(issuer) == 2


def test_a_refused_call_answers_its_token_only(
    issuer: LoopbackIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    # Some servers refuse a token they cannot read (4xx) instead of calling it
    # inactive: junk tokens must not hold every other token at 503.
    caplog.set_level(logging.DEBUG, logger="okta_pyramid.tokens.introspection")
    issuer.introspection_mode = "unauthorized"
    check = introspector(issuer, failure_backoff=30)
    for _ in range(3):
        with pytest.raises(IntrospectionUnavailable) as info:
            check.introspect(issuer.opaque())
        assert info.value.retry_after == 1
    issuer.introspection_mode = "ok"
    check.introspect(issuer.opaque())
    assert calls(issuer) == 4
    # The API's credentials may be wrong: said once, not once a request.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("token introspection refused")
    assert "check the introspection client id" in warnings[0]


def test_a_longer_pause_is_hinted_in_retry_after(issuer: LoopbackIssuer) -> None:
    issuer.introspection_mode = "error"
    check = introspector(issuer, failure_backoff=4)
    with pytest.raises(IntrospectionUnavailable) as first:
        check.introspect(issuer.opaque())
    with pytest.raises(IntrospectionUnavailable) as paused:
        check.introspect(issuer.opaque())
    assert first.value.retry_after in (4, 5) and paused.value.retry_after in (4, 5)
    assert calls(issuer) == 1


def test_a_stalled_endpoint_holds_only_the_calls_slots(issuer: LoopbackIssuer) -> None:
    # The endpoint never answers: two calls take the two slots and hang until their
    # deadline (2 s). Those waiting for a slot are released once the endpoint has not
    # answered for its patience (a quarter of the timeout), and later requests are
    # answered at once, a second one for a token in flight included.
    issuer.introspection_mode = "hang"
    check = introspector(issuer, http_timeout=2, slots=CallSlots(2, untrusted=2, timeout=2))
    tokens = [issuer.opaque() for _ in range(4)]
    outcomes: list[tuple[Any, float]] = []

    def ask(token: str) -> Callable[[], None]:
        def run() -> None:
            began = time.monotonic()
            try:
                outcomes.append((check.introspect(token), time.monotonic() - began))
            except Exception as error:  # the outcome is what is asserted
                outcomes.append((error, time.monotonic() - began))

        return run

    threads = [in_thread(ask(token)) for token in tokens[:2]]
    assert wait_for(lambda: calls(issuer) == 2)
    threads += [in_thread(ask(token)) for token in tokens[2:]]
    for thread in threads[2:]:
        thread.join(5)
    waited = [elapsed for outcome, elapsed in outcomes]
    assert len(waited) == 2 and all(0.2 < elapsed < 1.0 for elapsed in waited), waited
    started = time.monotonic()
    for token in (issuer.opaque(), tokens[0]):
        with pytest.raises(IntrospectionUnavailable) as info:
            check.introspect(token)
        assert info.value.retry_after >= 1
    assert time.monotonic() - started < 0.2  # stalled: not waited for at all
    for thread in threads:
        thread.join(5)
    assert len(outcomes) == 4
    assert all(type(outcome) is IntrospectionUnavailable for outcome, _ in outcomes)
    # Those that waited found the calls failed or stalled, and asked nothing.
    assert calls(issuer) == 2


def test_a_busy_endpoint_answers_every_request(issuer: LoopbackIssuer) -> None:
    # Honest load: more distinct tokens at once than there are slots, at an endpoint
    # that answers in 100 ms. Nobody is refused for being one too many.
    issuer.introspection_delay = 0.1
    check = introspector(issuer, slots=CallSlots(2, untrusted=2, timeout=2))
    tokens = [issuer.opaque(sub=f"user{number}") for number in range(12)]
    subjects: list[str] = []
    run_together(
        lambda token: subjects.append(check.introspect(token).claims()["sub"]),
        [(token,) for token in tokens],
    )
    assert sorted(subjects) == sorted(f"user{number}" for number in range(12))
    assert calls(issuer) == 12


def test_a_slow_endpoint_is_waited_for_once_it_has_answered(issuer: LoopbackIssuer) -> None:
    # Answers that take longer than a quarter of the timeout make the patience longer:
    # an endpoint that is slow but answering is not stalled.
    issuer.introspection_delay = 0.7
    check = introspector(issuer, slots=CallSlots(1, timeout=2))
    check.introspect(issuer.opaque())
    assert check.progress.patience == pytest.approx(2.0)  # 3 x 0.7 s, at most the timeout
    answers: list[Any] = []
    run_together(
        lambda token: answers.append(check.introspect(token)),
        [(issuer.opaque(),) for _ in range(3)],
    )
    assert len(answers) == 3 and calls(issuer) == 4


def test_made_up_tokens_cannot_take_the_slots_of_signed_ones(issuer: LoopbackIssuer) -> None:
    # Four slots, at most two for tokens nobody vouched for: opaque tokens pile up on
    # their two while confirmations of JWTs (their signature verified) find theirs free.
    issuer.introspection_delay = 0.6
    slots = CallSlots(4, untrusted=2, timeout=5)
    verifier = AccessTokenVerifier(issuer.issuer, issuer.audience)
    check = TokenIntrospector(
        IssuerClient(issuer.issuer, http_timeout=5),
        ClientSecretBasic(issuer.CLIENT_ID, issuer.CLIENT_SECRET),
        rules=verifier,
        slots=slots,
    )
    check.introspect(issuer.opaque())  # discovery, out of the way
    junk = [in_thread(lambda: check.introspect(issuer.opaque())) for _ in range(6)]
    assert wait_for(lambda: slots.in_flight == 2)
    time.sleep(0.1)
    assert slots.in_flight == 2  # the other four opaque tokens wait
    signed = [issuer.mint() for _ in range(2)]
    verified = [verifier.verify_token(token) for token in signed]
    began = time.monotonic()
    run_together(check.confirm, list(zip(signed, verified, strict=True)))
    assert time.monotonic() - began < 1.0  # one call's time: no waiting behind the junk
    for thread in junk:
        thread.join(10)


def test_a_token_the_issuer_called_active_is_trusted_next_time(issuer: LoopbackIssuer) -> None:
    slots = CallSlots(2, untrusted=1, timeout=2)
    check = introspector(issuer, slots=slots, cache_ttl=0)
    token = issuer.opaque()
    check.introspect(token)
    issuer.introspection_delay = 0.5
    hold = in_thread(lambda: check.introspect(issuer.opaque()))  # takes the untrusted slot
    assert wait_for(lambda: slots.in_flight == 1)
    began = time.monotonic()
    check.introspect(token)  # known active: the trusted slot, at once
    assert time.monotonic() - began < 0.9
    hold.join(5)


def test_an_incident_is_logged_once_without_the_token(
    issuer: LoopbackIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    issuer.introspection_mode = "error"
    check = introspector(issuer, failure_backoff=0)
    tokens = [issuer.opaque() for _ in range(3)]
    for token in tokens:
        with pytest.raises(IntrospectionUnavailable):
            check.introspect(token)
    issuer.introspection_mode = "ok"
    check.introspect(tokens[0])
    check.introspect(tokens[1])
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and record.levelno >= logging.WARNING
    ]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("token introspection failed:") and "HTTP 500" in warnings[0]
    assert warnings[1] == "token introspection works again (after 3 failed call(s))"
    for record in caplog.records:
        for token in tokens:
            assert token not in record.getMessage()
        assert issuer.CLIENT_SECRET not in record.getMessage()


# -- the verifier that chooses ------------------------------------------------------------


def introspecting(
    issuer: LoopbackIssuer, *, local: bool = True, opaque: bool = True, **options: Any
) -> tuple[IntrospectingVerifier, TokenIntrospector]:
    verifier = AccessTokenVerifier(issuer.issuer, issuer.audience)
    check = TokenIntrospector(
        IssuerClient(issuer.issuer, http_timeout=2),
        ClientSecretBasic(issuer.CLIENT_ID, issuer.CLIENT_SECRET),
        rules=verifier,
        **options,
    )
    return IntrospectingVerifier(verifier, check, local=local, opaque=opaque), check


def test_a_jwt_is_judged_locally_and_confirmed_on_demand(issuer: LoopbackIssuer) -> None:
    judge, check = introspecting(issuer)
    token = issuer.mint()
    verified = judge.verify_token(token)
    assert judge.judged_locally(token) and calls(issuer) == 0
    issuer.revoke(token)
    assert judge.verify_token(token) is verified  # locally, a revoked JWT still passes
    with pytest.raises(InactiveToken):
        judge.confirm(token, verified)
    assert calls(issuer) == 1 == check.calls


def test_a_token_that_is_not_a_jwt_is_introspected_once(issuer: LoopbackIssuer) -> None:
    # Without a cache, so only the verifier can spare confirm() a second call.
    judge, check = introspecting(issuer, cache_ttl=0)
    token = issuer.opaque(scp=["messages:read"])
    verified = judge.verify_token(token)
    assert verified.claims()["scope"] == "messages:read"
    assert judge.confirm(token, verified) is verified
    assert calls(issuer) == 1 == check.calls
    issuer.revoke(token)
    with pytest.raises(InactiveToken):
        introspecting(issuer)[0].verify_token(token)


def test_a_token_that_is_not_a_jwt_is_refused_without_opaque(issuer: LoopbackIssuer) -> None:
    # Opaque tokens are opt-in: Okta's custom authorization servers issue JWTs.
    judge, check = introspecting(issuer, opaque=False)
    with pytest.raises(exc.MalformedToken):
        judge.verify_token(issuer.opaque())
    assert calls(issuer) == 0 == check.calls


@pytest.mark.parametrize(
    "claims",
    [{"exp": 1}, {"aud": "api://other"}, {"iss": "https://x"}, {"typ": "Refresh"}],
    ids=["expired", "audience", "issuer", "typ"],
)
def test_a_jwt_judged_by_introspection_alone_is_prechecked_for_free(
    issuer: LoopbackIssuer, claims: dict[str, Any]
) -> None:
    # The org server's tokens cannot be verified locally, but their claims can refuse
    # them before any call: a made-up token must at least look like a live one.
    judge, check = introspecting(issuer, local=False, opaque=False)
    with pytest.raises(exc.InvalidClaims):
        judge.verify_token(issuer.mint(**claims))
    assert calls(issuer) == 0 == check.calls


def test_without_local_validation_a_jwt_is_introspected(issuer: LoopbackIssuer) -> None:
    judge, _ = introspecting(issuer, local=False, cache_ttl=0)
    token = issuer.mint()
    verified = judge.verify_token(token)
    assert not judge.judged_locally(token)
    assert judge.confirm(token, verified) is verified
    assert calls(issuer) == 1
    assert issuer.hits["/oauth2/default/v1/keys"] == 0


@pytest.mark.parametrize(
    "token",
    ["abc def", "abc\u00e9", "a,b", "=abc", "abc%41", "ab\tc", "", "a" * 16385],
    ids=["space", "non-ascii", "comma", "leading-padding", "percent", "tab", "empty", "too-long"],
)
def test_a_token_outside_rfc6750_b64token_is_refused_without_a_call(
    issuer: LoopbackIssuer, token: str
) -> None:
    judge, check = introspecting(issuer)
    with pytest.raises(exc.MalformedToken):
        judge.verify_token(token)
    with pytest.raises(exc.MalformedToken):
        check.introspect(token)
    assert sum(issuer.hits.values()) == 0
