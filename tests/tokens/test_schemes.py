"""The request-level check without Pyramid: schemes, binding and proof in one place."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from okta_pyramid.tokens import (
    AccessTokenVerifier,
    Credentials,
    DPoPVerifier,
    InvalidDPoPProof,
    InvalidToken,
    MalformedRequest,
    RequestVerifier,
    SchemeNotAccepted,
    make_proof,
    read_authorization,
)
from okta_pyramid.tokens.cache import token_digest

from ..issuer import LoopbackIssuer

URL = "https://api.example.com/orders"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("Basic dXNlcjpwdw==", None),
        ("Bearerabc", None),
        ("Bearer abc", Credentials("Bearer", "abc")),
        ("bEaReR  abc ", Credentials("Bearer", "abc")),
        ("DPoP abc", Credentials("DPoP", "abc")),
        ("dpop a.b.c", Credentials("DPoP", "a.b.c")),
        ("DPoP", Credentials("DPoP", "")),
    ],
)
def test_read_authorization(header: str | None, expected: Credentials | None) -> None:
    assert read_authorization(header) == expected


class Setup:
    def __init__(self, issuer: LoopbackIssuer, mode: str = "allowed") -> None:
        self.tokens = AccessTokenVerifier(issuer.issuer, issuer.audience, http_timeout=2)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.jkt = DPoPVerifier().verify(make_proof(self.key, "GET", URL), "GET", URL).jkt
        self.bound = issuer.mint(cnf={"jkt": self.jkt})
        self.unbound = issuer.mint()
        dpop = None if mode == "disabled" else DPoPVerifier()
        self.check = RequestVerifier(self.tokens, dpop, mode=mode)

    def dpop(self, token: str | None = None, **kw: Any) -> list[tuple[str, str]]:
        token = token or self.bound
        return [
            ("Authorization", f"DPoP {token}"),
            ("DPoP", make_proof(self.key, "GET", URL, access_token=token, **kw)),
        ]


@pytest.fixture
def setup(issuer: LoopbackIssuer) -> Setup:
    return Setup(issuer)


def test_no_credentials_is_none(setup: Setup) -> None:
    assert setup.check.verify("GET", URL, {}) is None
    assert setup.check.verify("GET", URL, {"Authorization": "Basic x"}) is None


def test_bearer_and_dpop_in_allowed_mode(setup: Setup) -> None:
    bearer = setup.check.verify("GET", URL, {"Authorization": f"Bearer {setup.unbound}"})
    assert bearer is not None
    assert bearer.scheme == "Bearer" and bearer.proof is None
    dpop = setup.check.verify("GET", URL, setup.dpop())
    assert dpop is not None and dpop.proof is not None
    assert dpop.scheme == "DPoP" and dpop.proof.jkt == setup.jkt


def test_the_url_is_built_only_for_dpop(setup: Setup) -> None:
    def url() -> str:
        raise AssertionError("a Bearer request needs no URL")

    setup.check.verify("GET", url, {"Authorization": f"Bearer {setup.unbound}"})
    dpop = setup.check.verify("GET", lambda: URL, setup.dpop())
    assert dpop is not None and dpop.scheme == "DPoP"


def test_a_bound_token_as_bearer_is_invalid_token(setup: Setup) -> None:
    with pytest.raises(InvalidToken) as raised:
        setup.check.verify("GET", URL, {"Authorization": f"Bearer {setup.bound}"})
    assert raised.value.reason == "bound_token_as_bearer"
    assert not isinstance(raised.value, InvalidDPoPProof)


def test_an_unbound_token_as_dpop_is_invalid_token(setup: Setup) -> None:
    with pytest.raises(InvalidToken) as raised:
        setup.check.verify("GET", URL, setup.dpop(setup.unbound))
    assert raised.value.reason == "unbound_token_as_dpop"


def test_two_dpop_headers_are_refused(setup: Setup) -> None:
    headers = setup.dpop()
    headers.append(("dpop", headers[1][1]))
    with pytest.raises(InvalidDPoPProof) as raised:
        setup.check.verify("GET", URL, headers)
    assert raised.value.reason == "dpop_multiple"


@pytest.mark.parametrize("second", ["Bearer {token}", "Basic eDp5", "Bearer other"])
def test_two_authorization_headers_are_a_malformed_request(setup: Setup, second: str) -> None:
    # Authorization appears once (RFC 9110 §11.6.2). A WSGI server joins two with a
    # comma, which is refused there; used on its own, the verifier refuses them too.
    first = ("Authorization", f"Bearer {setup.unbound}")
    for headers in (
        [first, ("authorization", second.format(token=setup.unbound))],
        [("authorization", second.format(token=setup.unbound)), first],
    ):
        with pytest.raises(MalformedRequest) as raised:
            setup.check.verify("GET", URL, headers)
        assert raised.value.reason == "invalid_request"


def test_the_proof_must_carry_this_tokens_hash(setup: Setup, issuer: LoopbackIssuer) -> None:
    other = issuer.mint(cnf={"jkt": setup.jkt})
    headers = [
        ("Authorization", f"DPoP {setup.bound}"),
        ("DPoP", make_proof(setup.key, "GET", URL, access_token=other)),
    ]
    with pytest.raises(InvalidDPoPProof) as raised:
        setup.check.verify("GET", URL, headers)
    assert raised.value.reason == "dpop_token_hash"


def test_required_and_disabled(issuer: LoopbackIssuer) -> None:
    required = Setup(issuer, "required")
    with pytest.raises(SchemeNotAccepted) as raised:
        required.check.verify("GET", URL, {"Authorization": f"Bearer {required.unbound}"})
    assert raised.value.challenge == "DPoP"
    assert required.check.schemes == ("DPoP",)
    with pytest.raises(InvalidToken) as invalid:
        required.check.verify("GET", URL, required.dpop(required.unbound))
    assert invalid.value.reason == "unbound_token_as_dpop"
    assert "Bearer" not in invalid.value.description  # not accepted here
    disabled = Setup(issuer, "disabled")
    with pytest.raises(SchemeNotAccepted) as raised:
        disabled.check.verify("GET", URL, disabled.dpop())
    assert raised.value.challenge == "Bearer"
    assert disabled.check.schemes == ("Bearer",)


def test_a_mode_must_be_known_and_have_its_verifier(setup: Setup) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        RequestVerifier(setup.tokens, DPoPVerifier(), mode="sometimes")
    with pytest.raises(ValueError, match="needs a DPoPVerifier"):
        RequestVerifier(setup.tokens, None, mode="required")


def test_the_binding_is_read_once_per_verified_token(setup: Setup) -> None:
    # A cached token hands every request the same object, jkt already read.
    first = setup.tokens.verify_token(setup.bound)
    assert first.jkt == setup.jkt and first.bound
    assert setup.tokens.verify_token(setup.bound) is first
    plain = setup.tokens.verify_token(setup.unbound)
    assert plain.jkt is None and not plain.bound


@pytest.mark.parametrize("cache_size", [4096, 0])
def test_the_tokens_hash_is_checked_with_and_without_the_token_cache(
    issuer: LoopbackIssuer, cache_size: int
) -> None:
    # A cached token hands its digest to the proof check (the cache key is the same
    # SHA-256 that ath encodes, RFC 9449 §4.2); without a cache the proof check hashes
    # the token itself. Either way a proof for another token is refused.
    setup = Setup(issuer)
    setup.tokens = AccessTokenVerifier(
        issuer.issuer, issuer.audience, http_timeout=2, token_cache_size=cache_size
    )
    setup.check = RequestVerifier(setup.tokens, DPoPVerifier())
    other = issuer.mint(cnf={"jkt": setup.jkt})
    for _ in range(2):  # the second time from the cache, when there is one
        verified = setup.check.verify("GET", URL, setup.dpop())
        assert verified is not None and verified.scheme == "DPoP"
        token = setup.tokens.verify_token(setup.bound)
        assert token.digest == (token_digest(setup.bound) if cache_size else None)
        with pytest.raises(InvalidDPoPProof) as raised:
            setup.check.verify(
                "GET",
                URL,
                [
                    ("Authorization", f"DPoP {setup.bound}"),
                    ("DPoP", make_proof(setup.key, "GET", URL, access_token=other)),
                ],
            )
        assert raised.value.reason == "dpop_token_hash"
        # The other token, with a proof of its own, after this one.
        verified = setup.check.verify("GET", URL, setup.dpop(other))
        assert verified is not None and verified.scheme == "DPoP"
