"""Property-based: whatever JSON a signed DPoP proof carries in any header member,
key member or claim, the proof check answers :class:`InvalidDPoPProof` or
:class:`UseDPoPNonce` (or accepts the proof), and never raises anything else.

The proofs are truly signed, so every value reaches every check up to the signature
and beyond; the request-level check relies on this (it catches nothing else).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from okta_pyramid.tokens.dpop import (
    DPoPNonces,
    DPoPProof,
    DPoPVerifier,
    InvalidDPoPProof,
    UseDPoPNonce,
)

from ..helpers import b64url

NOW = 1_700_000_000
URL = "https://api.example.com/api/whoami"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
KEY = ec.generate_private_key(ec.SECP256R1())
NONCES = DPoPNonces(b"a nonce secret of 32 bytes......", clock=lambda: NOW)


_POINT = KEY.public_key().public_numbers()
GOOD_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": b64url(_POINT.x.to_bytes(32, "big")),
    "y": b64url(_POINT.y.to_bytes(32, "big")),
}
JKT = b64url(
    hashlib.sha256(json.dumps(GOOD_JWK, separators=(",", ":"), sort_keys=True).encode()).digest()
)
GOOD_HEADER = {"typ": "dpop+jwt", "alg": "ES256", "jwk": GOOD_JWK}
GOOD_CLAIMS = {
    "jti": "jti",
    "htm": "GET",
    "htu": URL,
    "iat": NOW,
    "ath": b64url(hashlib.sha256(TOKEN.encode()).digest()),
    "nonce": NONCES.issue(),
}

# Any JSON value: what a client can put in any member. Text includes lone surrogates,
# which JSON can carry ("\ud800") and UTF-8 cannot.
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def members(good: dict[str, Any], extra: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """``good`` with any of its members (and of ``extra``) replaced by any JSON
    value or left out."""
    names = (*good, *extra)
    return st.fixed_dictionaries(
        {},
        optional={
            name: (st.just(good[name]) if name in good else st.nothing()) | json_value
            for name in names
        },
    )


jwk = members(GOOD_JWK, ("alg", "use", "key_ops", "kid", "d", "ext")) | json_value
header = st.fixed_dictionaries(
    {},
    optional={
        "typ": st.just("dpop+jwt") | json_value,
        "alg": st.just("ES256") | json_value,
        "jwk": st.just(GOOD_JWK) | jwk,
        "crit": json_value,
        "kid": json_value,
    },
)
claims = members(GOOD_CLAIMS, ("exp", "cnf")) | json_value


def signed(header: Any, claims: Any) -> str:
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    r, s = decode_dss_signature(KEY.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


VERIFIERS = [DPoPVerifier(clock=lambda: NOW), DPoPVerifier(clock=lambda: NOW, nonces=NONCES)]


@settings(max_examples=500, deadline=None)
@given(header=header, claims=claims, bound=st.booleans())
def test_any_json_in_a_signed_proof_is_refused_with_a_dpop_error_or_accepted(
    header: Any, claims: Any, bound: bool
) -> None:
    proof = signed(header, claims)
    options: dict[str, Any] = {"access_token": TOKEN, "jkt": JKT} if bound else {}
    for dpop in VERIFIERS:
        try:
            accepted = dpop.verify([proof], "GET", URL, **options)
        except (InvalidDPoPProof, UseDPoPNonce):
            continue
        assert isinstance(accepted, DPoPProof)


def test_the_property_reaches_acceptance() -> None:
    # The good values are good: the strategy covers the accepting path too.
    dpop = DPoPVerifier(clock=lambda: NOW, nonces=NONCES)
    accepted = dpop.verify(
        [signed(GOOD_HEADER, GOOD_CLAIMS)], "GET", URL, access_token=TOKEN, jkt=JKT
    )
    assert accepted.jkt == JKT
