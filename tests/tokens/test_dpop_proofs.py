"""DPoP proofs (RFC 9449 §4.3, §7.1): each rule of the proof check, with real keys.

Proofs are signed here with cryptography directly, byte for byte, so that a test
can make exactly the proof it needs (a repeated JSON name, a non-canonical
base64url spelling, a DER signature) and the checker is not trusted to build what
it then judges.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from okta_pyramid.tokens._jwk import der_signature
from okta_pyramid.tokens.cache import token_digest
from okta_pyramid.tokens.dpop import (
    DEFAULT_ALGORITHMS,
    MAX_JTI_LENGTH,
    MAX_PROOF_LENGTH,
    DPoPNonces,
    DPoPVerifier,
    InMemoryReplayStore,
    InvalidDPoPProof,
    UseDPoPNonce,
    access_token_hash,
    make_proof,
)
from okta_pyramid.tokens.exceptions import InvalidToken

from ..helpers import Clock, b64url

NOW = 1_700_000_000
URL = "https://api.example.com/api/whoami"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"


def uint(value: int, size: int | None = None) -> str:
    return b64url(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


# -- keys (module-wide: RSA generation is slow) -------------------------------------


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    rsa_key = rsa.generate_private_key(65537, 2048)
    return {
        "RSA": rsa_key,
        "P-256": ec.generate_private_key(ec.SECP256R1()),
        "P-384": ec.generate_private_key(ec.SECP384R1()),
        "P-521": ec.generate_private_key(ec.SECP521R1()),
        "Ed25519": ed25519.Ed25519PrivateKey.generate(),
    }


KEY_OF_ALG = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "P-256",
    "ES384": "P-384",
    "ES512": "P-521",
    "EdDSA": "Ed25519",
}
_HASH: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


def jwk_of(key: Any) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {"kty": "RSA", "n": uint(numbers.n), "e": uint(numbers.e)}
    if isinstance(public, ec.EllipticCurvePublicKey):
        size = (public.curve.key_size + 7) // 8
        crv = {256: "P-256", 384: "P-384", 521: "P-521"}[public.curve.key_size]
        point = public.public_numbers()
        return {"kty": "EC", "crv": crv, "x": uint(point.x, size), "y": uint(point.y, size)}
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public.public_bytes(Encoding.Raw, PublicFormat.Raw)),
    }


def signature(key: Any, alg: str, data: bytes) -> bytes:
    if alg == "EdDSA":
        return key.sign(data)
    hash_ = _HASH[alg[2:]]()
    if alg.startswith("RS"):
        return key.sign(data, padding.PKCS1v15(), hash_)
    if alg.startswith("PS"):
        return key.sign(data, padding.PSS(padding.MGF1(hash_), hash_.digest_size), hash_)
    size = (key.curve.key_size + 7) // 8
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_)))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def signed(key: Any, header_b64: str, payload_b64: str, alg: str) -> str:
    """A compact JWS over exactly these two (already encoded) parts."""
    signing_input = f"{header_b64}.{payload_b64}"
    return f"{signing_input}.{b64url(signature(key, alg, signing_input.encode('ascii')))}"


def encode(value: Any) -> str:
    return b64url(json.dumps(value).encode("utf-8"))


def header_for(key: Any, alg: str, **changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"typ": "dpop+jwt", "alg": alg}
    header["jwk"] = changes.pop("jwk") if "jwk" in changes else jwk_of(key)
    header.update(changes)
    return {name: value for name, value in header.items() if value is not None}


def claims_for(jti: str = "jti-1", **changes: Any) -> dict[str, Any]:
    claims = {
        "jti": jti,
        "htm": "GET",
        "htu": URL,
        "iat": NOW,
        "ath": b64url(hashlib.sha256(TOKEN.encode()).digest()),
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def proof(key: Any, alg: str = "ES256", header: dict[str, Any] | None = None, **claims: Any) -> str:
    return signed(key, encode(header or header_for(key, alg)), encode(claims_for(**claims)), alg)


def verifier(**options: Any) -> DPoPVerifier:
    options.setdefault("clock", lambda: NOW)
    return DPoPVerifier(**options)


def refused(
    dpop: DPoPVerifier,
    value: Any,
    reason: str,
    *,
    method: str = "GET",
    url: str = URL,
    **kwargs: Any,
) -> InvalidDPoPProof:
    headers = value if isinstance(value, list) else [value]
    with pytest.raises(InvalidDPoPProof) as caught:
        dpop.verify(headers, method, url, **kwargs)
    assert caught.value.reason == reason, caught.value.description
    assert caught.value.error == "invalid_dpop_proof"
    # Neither the proof nor the token is ever in what may end up in a log or response.
    for secret in [*headers, kwargs.get("access_token") or TOKEN]:
        if isinstance(secret, str) and len(secret) > 8:
            assert secret not in str(caught.value)
    return caught.value


# -- what is accepted ------------------------------------------------------------


@pytest.mark.parametrize("alg", DEFAULT_ALGORITHMS)
def test_every_default_algorithm_is_accepted_with_a_key_of_its_type(
    keys: dict[str, Any], alg: str
) -> None:
    key = keys[KEY_OF_ALG[alg]]
    result = verifier().verify([proof(key, alg)], "GET", URL, access_token=TOKEN)
    assert result.alg == alg
    assert result.claims["jti"] == "jti-1"
    assert result.jti == "jti-1" and result.iat == NOW
    assert result.next_nonce is None


def test_the_thumbprint_is_rfc_7638s(keys: dict[str, Any]) -> None:
    # RFC 7638 §3.1: the example key and its thumbprint.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v"
        "-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08"
        "qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8a"
        "wapJzKnqDKgw"
    )
    jwk = {"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    # The example key has no private half here: the proof is signed by another key.
    value = signed(
        keys["RSA"], encode(header_for(None, "RS256", jwk=jwk)), encode(claims_for()), "RS256"
    )
    # The thumbprint matches (no dpop_key_mismatch); the signature, by another key, not.
    refused(
        verifier(), value, "dpop_bad_signature", jkt="NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    )
    refused(
        verifier(), value, "dpop_key_mismatch", jkt="NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xt"
    )


@pytest.mark.parametrize("alg", DEFAULT_ALGORITHMS)
def test_the_result_carries_the_thumbprint_a_bound_token_names(
    keys: dict[str, Any], alg: str
) -> None:
    key = keys[KEY_OF_ALG[alg]]
    jwk = jwk_of(key)
    required = {name: jwk[name] for name in ("crv", "e", "kty", "n", "x", "y") if name in jwk}
    expected = b64url(
        hashlib.sha256(
            json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
        ).digest()
    )
    result = verifier().verify([proof(key, alg)], "GET", URL, access_token=TOKEN, jkt=expected)
    assert result.jkt == expected


def test_a_single_header_may_be_given_as_text(keys: dict[str, Any]) -> None:
    assert verifier().verify(proof(keys["P-256"]), "GET", URL).alg == "ES256"


def test_surrounding_blanks_of_the_header_value_are_ignored(keys: dict[str, Any]) -> None:
    assert verifier().verify([f" {proof(keys['P-256'])}\t"], "GET", URL).alg == "ES256"


# -- the DPoP header ------------------------------------------------------------


def test_a_request_without_a_dpop_header_is_refused() -> None:
    refused(verifier(), [], "dpop_missing")


def test_two_dpop_headers_are_refused(keys: dict[str, Any]) -> None:
    refused(
        verifier(), [proof(keys["P-256"], jti="a"), proof(keys["P-256"], jti="b")], "dpop_multiple"
    )


def test_two_proofs_joined_in_one_header_are_refused(keys: dict[str, Any]) -> None:
    # What a WSGI server makes of two DPoP header lines (RFC 9110 §5.3).
    joined = f"{proof(keys['P-256'], jti='a')}, {proof(keys['P-256'], jti='b')}"
    refused(verifier(), joined, "dpop_malformed")


def test_a_proof_longer_than_the_limit_is_refused_unread(keys: dict[str, Any]) -> None:
    key = keys["P-256"]

    def padded(length: int) -> str:
        fill = 0
        while True:
            value = proof(key, pad="x" * fill)
            if len(value) >= length:
                return value
            fill += max(1, (length - len(value)) * 3 // 4)

    near = padded(MAX_PROOF_LENGTH - 200)
    assert len(near) <= MAX_PROOF_LENGTH
    assert verifier().verify([near], "GET", URL).alg == "ES256"
    over = padded(MAX_PROOF_LENGTH + 1)
    assert len(over) > MAX_PROOF_LENGTH
    refused(verifier(), over, "dpop_malformed")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a..c",
        "ä.b.c",
        "a+b.c.d",
        "a/b.c.d",
        "YQ==.YQ.YQ",
        "a.b.c ",
        "\x00.a.b",
    ],
)
def test_what_is_not_one_compact_jws_is_refused(value: str) -> None:
    assert "DPoP" in refused(verifier(), value, "dpop_malformed").description


def test_a_non_canonical_base64url_spelling_is_refused(keys: dict[str, Any]) -> None:
    # RFC 4648 §3.5: the spare bits of the last character are zero. A proof spelled
    # with other spare bits decodes to the same bytes; it is refused all the same.
    key = keys["P-256"]
    good = proof(key)
    head, payload, sig = good.split(".")
    assert len(sig) % 4 == 2  # 64 bytes: 4 spare bits in the last character
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    odd = alphabet[alphabet.index(sig[-1]) | 1]
    assert base64.urlsafe_b64decode(sig[:-1] + odd + "==") == base64.urlsafe_b64decode(sig + "==")
    refused(verifier(), f"{head}.{payload}.{sig[:-1]}{odd}", "dpop_malformed")
    # The same in the signed claims: re-signed, so only the spelling is wrong.
    for extra in ("", "x", "xy"):
        claims = encode(claims_for(pad=extra))
        if len(claims) % 4 in (2, 3):
            break
    odd = alphabet[alphabet.index(claims[-1]) | 1]
    refused(verifier(), signed(key, head, claims[:-1] + odd, "ES256"), "dpop_malformed")


def test_an_impossible_base64url_length_is_refused(keys: dict[str, Any]) -> None:
    head, payload, _ = proof(keys["P-256"]).split(".")
    while len(payload) % 4 != 1:  # 4n + 1 characters cannot be base64
        payload += "A"
    refused(verifier(), signed(keys["P-256"], head, payload, "ES256"), "dpop_malformed")


@pytest.mark.parametrize("part", ["header", "claims"])
@pytest.mark.parametrize(
    "text", ['{"a": 1, "a": 2}', "[1, 2]", '"text"', "{", '{"iat": NaN}', "\xff"]
)
def test_header_and_claims_must_be_json_objects_without_repeated_names(
    keys: dict[str, Any], part: str, text: str
) -> None:
    key = keys["P-256"]
    if text.startswith('{"a"'):
        # The repeated name is a real member of a good proof.
        if part == "header":
            text = json.dumps(header_for(key, "ES256"))[:-1] + ', "typ": "dpop+jwt"}'
        else:
            text = json.dumps(claims_for())[:-1] + ', "htm": "POST"}'
    raw = b64url(text.encode("latin-1"))
    head, payload = encode(header_for(key, "ES256")), encode(claims_for())
    value = (
        signed(key, raw, payload, "ES256") if part == "header" else signed(key, head, raw, "ES256")
    )
    refused(verifier(), value, "dpop_malformed")


def test_the_same_members_once_each_are_accepted(keys: dict[str, Any]) -> None:
    # The counterpart of the test above: a good proof spelled the same way passes.
    key = keys["P-256"]
    text = json.dumps(claims_for())
    verifier().verify(
        [signed(key, encode(header_for(key, "ES256")), b64url(text.encode()), "ES256")], "GET", URL
    )


# -- the JOSE header --------------------------------------------------------------


@pytest.mark.parametrize("typ", [None, "JWT", "at+jwt", "dpop", "dpop+jwt ", 1])
def test_the_type_must_be_dpop_jwt(keys: dict[str, Any], typ: Any) -> None:
    key = keys["P-256"]
    header = header_for(key, "ES256", typ=typ)  # None: no typ at all
    refused(verifier(), proof(key, header=header), "dpop_type")


@pytest.mark.parametrize("typ", ["dpop+jwt", "DPoP+JWT", "application/dpop+jwt"])
def test_the_type_is_compared_as_a_media_type(keys: dict[str, Any], typ: str) -> None:
    # RFC 7515 §4.1.9: typ is a media type (case-insensitive, application/ optional).
    key = keys["P-256"]
    verifier().verify([proof(key, header=header_for(key, "ES256", typ=typ))], "GET", URL)


@pytest.mark.parametrize(
    "alg",
    [
        "none",
        "HS256",
        "HS512",
        "ES256K",
        "RSA1_5",
        "",
        7,
        None,
        ["ES256"],
        {"ES256": 1},
        True,
        256.0,
    ],
)
def test_only_asymmetric_signature_algorithms_are_accepted(keys: dict[str, Any], alg: Any) -> None:
    key = keys["P-256"]
    header = header_for(key, "ES256")
    header["alg"] = alg
    exc = refused(verifier(), proof(key, header=header), "dpop_algorithm")
    assert "ES256" in exc.description  # the accepted ones are named


def test_an_algorithm_left_out_of_the_configuration_is_refused(keys: dict[str, Any]) -> None:
    only_ec = verifier(algorithms=["ES256", "ES384"])
    assert only_ec.algorithms == ("ES256", "ES384")
    refused(only_ec, proof(keys["RSA"], "RS256"), "dpop_algorithm")
    refused(only_ec, proof(keys["Ed25519"], "EdDSA"), "dpop_algorithm")
    only_ec.verify([proof(keys["P-384"], "ES384")], "GET", URL)


@pytest.mark.parametrize(
    "algorithms", [["none"], ["HS256"], ["ES256", "HS256"], [], ["RS1"], ["es256"]]
)
def test_the_configuration_cannot_name_a_symmetric_or_unknown_algorithm(
    algorithms: list[str],
) -> None:
    with pytest.raises(ValueError, match="algorithms"):
        DPoPVerifier(algorithms=algorithms)


def test_a_critical_header_extension_is_refused(keys: dict[str, Any]) -> None:
    key = keys["P-256"]
    header = header_for(key, "ES256", crit=["exp"], exp=NOW)
    refused(verifier(), proof(key, header=header), "dpop_malformed")


# -- the jwk header -----------------------------------------------------------------


def _with_jwk(key: Any, alg: str, jwk: Any, sign_with: Any = None) -> str:
    return proof(sign_with or key, alg, header=header_for(key, alg, jwk=jwk))


def test_a_proof_without_a_jwk_is_refused(keys: dict[str, Any]) -> None:
    key = keys["P-256"]
    header = header_for(key, "ES256")
    del header["jwk"]
    refused(verifier(), proof(key, header=header), "dpop_key")
    refused(verifier(), _with_jwk(key, "ES256", "not an object"), "dpop_key")


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_a_jwk_with_private_or_symmetric_members_is_refused(
    keys: dict[str, Any], member: str
) -> None:
    key = keys["P-256"]
    jwk = {**jwk_of(key), member: uint(key.private_numbers().private_value, 32)}
    refused(verifier(), _with_jwk(key, "ES256", jwk), "dpop_key")
    rsa_key = keys["RSA"]
    jwk = {**jwk_of(rsa_key), member: uint(rsa_key.private_numbers().p)}
    refused(verifier(), _with_jwk(rsa_key, "RS256", jwk), "dpop_key")


@pytest.mark.parametrize(
    ("key_name", "alg"),
    [
        ("P-256", "RS256"),
        ("RSA", "ES256"),
        ("P-384", "ES256"),
        ("P-256", "ES384"),
        ("P-521", "ES384"),
        ("Ed25519", "ES256"),
        ("P-256", "EdDSA"),
        ("RSA", "EdDSA"),
    ],
)
def test_the_key_type_and_curve_must_match_the_algorithm(
    keys: dict[str, Any], key_name: str, alg: str
) -> None:
    key = keys[key_name]
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": jwk_of(key)}
    # Signed with a key that fits alg, so that only the jwk's type is wrong.
    refused(verifier(), proof(keys[KEY_OF_ALG[alg]], alg, header=header), "dpop_key")


def test_the_declared_key_type_and_curve_are_checked_not_inferred(keys: dict[str, Any]) -> None:
    # The right members under another kty or crv: refused, not read as the right key.
    rsa_jwk, ec_jwk = jwk_of(keys["RSA"]), jwk_of(keys["P-256"])
    refused(verifier(), _with_jwk(keys["RSA"], "RS256", {**rsa_jwk, "kty": "EC"}), "dpop_key")
    for crv in ("P-384", "secp256k1", None):
        jwk = {**ec_jwk, "crv": crv} if crv else {k: v for k, v in ec_jwk.items() if k != "crv"}
        refused(verifier(), _with_jwk(keys["P-256"], "ES256", jwk), "dpop_key")


def test_an_rsa_key_shorter_than_2048_bits_is_refused() -> None:
    short = rsa.generate_private_key(65537, 1024)  # too short, on purpose
    refused(verifier(), proof(short, "RS256"), "dpop_key")


def test_rsa_members_with_leading_zero_octets_are_refused(keys: dict[str, Any]) -> None:
    key = keys["RSA"]
    jwk = jwk_of(key)
    numbers = key.public_key().public_numbers()
    # The same numbers, spelled with one more octet: RFC 7518 §6.3.1 wants the shortest.
    for name, value in (("n", numbers.n), ("e", numbers.e)):
        spelled = {
            **jwk,
            name: b64url(b"\x00" + value.to_bytes((value.bit_length() + 7) // 8, "big")),
        }
        refused(verifier(), _with_jwk(key, "RS256", spelled), "dpop_key")


def test_an_rsa_public_exponent_beyond_32_bits_is_refused(keys: dict[str, Any]) -> None:
    key = keys["RSA"]
    jwk = {**jwk_of(key), "e": uint(2**40 + 15)}
    refused(verifier(), _with_jwk(key, "RS256", jwk), "dpop_key")


@pytest.mark.parametrize(
    ("key_name", "alg"), [("P-256", "ES256"), ("P-521", "ES512"), ("Ed25519", "EdDSA")]
)
def test_coordinates_must_be_exactly_the_curves_size(
    keys: dict[str, Any], key_name: str, alg: str
) -> None:
    key = keys[key_name]
    jwk = jwk_of(key)
    # One leading zero octet more: the same point, not the size RFC 7518 §6.2.1.2 asks.
    for name in ("x", "y") if "y" in jwk else ("x",):
        value = base64.urlsafe_b64decode(jwk[name] + "==")
        longer = {**jwk, name: b64url(b"\x00" + value)}
        refused(verifier(), _with_jwk(key, alg, longer), "dpop_key")
        shorter = {**jwk, name: b64url(value[1:])}
        refused(verifier(), _with_jwk(key, alg, shorter), "dpop_key")


def test_a_point_not_on_the_curve_is_refused(keys: dict[str, Any]) -> None:
    key = keys["P-256"]
    jwk = jwk_of(key)
    y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "="), "big")
    refused(verifier(), _with_jwk(key, "ES256", {**jwk, "y": uint(y ^ 1, 32)}), "dpop_key")


@pytest.mark.parametrize(
    "member",
    [
        {"alg": "ES384"},
        {"use": "enc"},
        {"key_ops": ["sign"]},
        {"key_ops": "verify"},
        {"x": "not base64!"},
        {"x": 12},
        {"y": None},
    ],
)
def test_jwk_members_must_allow_this_use(keys: dict[str, Any], member: dict[str, Any]) -> None:
    key = keys["P-256"]
    jwk = {**jwk_of(key), **member}
    refused(verifier(), _with_jwk(key, "ES256", jwk), "dpop_key")


@pytest.mark.parametrize(
    "member",
    [
        {"kty": ["EC"]},
        {"crv": {"P-256": 1}},
        {"alg": ["ES256"]},
        {"use": ["sig"]},
        {"key_ops": ["verify", 1]},
        {"key_ops": ["verify", ["verify"]]},
        {"key_ops": {"verify": 1}},
    ],
)
def test_jwk_members_of_another_json_type_are_refused(
    keys: dict[str, Any], member: dict[str, Any]
) -> None:
    # RFC 7517 §4: kty, alg and use are strings, key_ops an array of strings.
    key = keys["P-256"]
    exc = refused(verifier(), _with_jwk(key, "ES256", {**jwk_of(key), **member}), "dpop_key")
    assert "string" in exc.description


def test_optional_jwk_members_that_allow_this_use_are_accepted(keys: dict[str, Any]) -> None:
    # What WebCrypto exports for an ECDSA public key, with the optional members.
    key = keys["P-256"]
    jwk = {
        **jwk_of(key),
        "ext": True,
        "key_ops": ["verify"],
        "alg": "ES256",
        "use": "sig",
        "kid": "k1",
    }
    verifier().verify([_with_jwk(key, "ES256", jwk)], "GET", URL)


def test_parsed_keys_are_cached_by_their_defining_members(keys: dict[str, Any]) -> None:
    key, other = keys["P-256"], ec.generate_private_key(ec.SECP256R1())
    dpop = verifier()
    # Two spellings of one key (optional members differ): one parsed key.
    dpop.verify([_with_jwk(key, "ES256", {**jwk_of(key), "kid": "a"})], "GET", URL)
    dpop.verify([proof(key, "ES256", jti="2")], "GET", URL)
    assert len(dpop._keys) == 1 and len(dpop._headers) == 2
    # Another key under the same kid is its own key: a cache keyed by kid (or by
    # anything less than the defining members) would check it with the first key.
    result = dpop.verify([_with_jwk(other, "ES256", {**jwk_of(other), "kid": "a"})], "GET", URL)
    assert len(dpop._keys) == 2
    assert result.jkt != dpop.verify([proof(key, jti="3")], "GET", URL).jkt


def test_the_key_caches_are_bounded(keys: dict[str, Any]) -> None:
    dpop = verifier(key_cache_size=2)
    for index in range(4):
        dpop.verify([proof(ec.generate_private_key(ec.SECP256R1()), jti=str(index))], "GET", URL)
    assert len(dpop._keys) == 2 and len(dpop._headers) == 2


# -- the signature ----------------------------------------------------------------


@pytest.mark.parametrize("alg", DEFAULT_ALGORITHMS)
def test_a_signature_by_another_key_is_refused(keys: dict[str, Any], alg: str) -> None:
    key = keys[KEY_OF_ALG[alg]]
    other = {
        "RSA": lambda: rsa.generate_private_key(65537, 2048),
        "P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "P-384": lambda: ec.generate_private_key(ec.SECP384R1()),
        "P-521": lambda: ec.generate_private_key(ec.SECP521R1()),
        "Ed25519": ed25519.Ed25519PrivateKey.generate,
    }[KEY_OF_ALG[alg]]()
    refused(verifier(), _with_jwk(key, alg, jwk_of(key), sign_with=other), "dpop_bad_signature")


def test_changed_claims_break_the_signature(keys: dict[str, Any]) -> None:
    head, _, sig = proof(keys["P-256"]).split(".")
    refused(verifier(), f"{head}.{encode(claims_for(jti='other'))}.{sig}", "dpop_bad_signature")


def test_an_ecdsa_signature_must_be_raw_r_and_s_of_the_curves_size(keys: dict[str, Any]) -> None:
    key = keys["P-256"]
    head, payload, _ = proof(key).split(".")
    data = f"{head}.{payload}".encode()
    der = key.sign(data, ec.ECDSA(hashes.SHA256()))
    refused(verifier(), f"{head}.{payload}.{b64url(der)}", "dpop_bad_signature")
    r, s = decode_dss_signature(der)
    # Other lengths, some of which would still spell r and s if split leniently.
    for raw in (
        r.to_bytes(33, "big") + s.to_bytes(33, "big"),
        r.to_bytes(32, "big") + s.to_bytes(32, "big") + b"\x00",
        r.to_bytes(32, "big") + s.to_bytes(33, "big"),
    ):
        refused(verifier(), f"{head}.{payload}.{b64url(raw)}", "dpop_bad_signature")
    verifier().verify(
        [f"{head}.{payload}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"], "GET", URL
    )


@pytest.mark.parametrize("size", [32, 48, 66])
def test_r_and_s_become_the_der_that_cryptography_writes(size: int) -> None:
    # Leading zero octets dropped, a zero octet before a high bit, and for P-521 a
    # SEQUENCE longer than 127 octets: byte for byte what encode_dss_signature writes.
    edges = [
        bytes(size),
        b"\xff" * size,
        b"\x7f" + b"\xff" * (size - 1),
        bytes(size - 1) + b"\x80",
        bytes(size - 1) + b"\x01",
        b"\x00\x80" + bytes(size - 2),
    ]
    values = edges + [
        hashlib.sha512(bytes([i])).digest()[:size].rjust(size, b"\x01") for i in range(20)
    ]
    for r in values:
        for s in values:
            assert der_signature(r, s) == encode_dss_signature(
                int.from_bytes(r, "big"), int.from_bytes(s, "big")
            )


def test_ecdsa_signatures_whose_r_or_s_starts_with_zero_bits_verify(keys: dict[str, Any]) -> None:
    # About half of all signatures have a high bit to protect, one in 256 a zero octet
    # to drop: sign until both kinds have been seen.
    key, dpop = keys["P-256"], verifier()
    seen: set[str] = set()
    for number in range(2000):
        value = proof(key, jti=f"jti-{number}")
        raw = base64.urlsafe_b64decode(value.rpartition(".")[2] + "==")
        kinds = {
            ("high" if half[0] & 0x80 else "zero" if half[0] == 0 else "other")
            for half in (raw[:32], raw[32:])
        }
        if not kinds & {"high", "zero"} - seen:
            continue
        dpop.verify([value], "GET", URL)
        seen |= kinds
        if {"high", "zero"} <= seen:
            break
    assert {"high", "zero"} <= seen


def test_pss_must_use_a_salt_as_long_as_the_hash(keys: dict[str, Any]) -> None:
    key = keys["RSA"]
    head, payload = encode(header_for(key, "PS256")), encode(claims_for())
    data = f"{head}.{payload}".encode()
    sig = key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 64), hashes.SHA256())
    refused(verifier(), f"{head}.{payload}.{b64url(sig)}", "dpop_bad_signature")


def test_an_rsa_signature_must_be_as_long_as_the_modulus(keys: dict[str, Any]) -> None:
    key = keys["RSA"]
    head, payload, sig = proof(key, "RS256").split(".")
    longer = b64url(b"\x00" + base64.urlsafe_b64decode(sig + "=="))
    refused(verifier(), f"{head}.{payload}.{longer}", "dpop_bad_signature")


# -- the claims ---------------------------------------------------------------------


@pytest.mark.parametrize("jti", [None, "", 17, ["a"], "x" * (MAX_JTI_LENGTH + 1)])
def test_the_jti_must_be_a_short_string(keys: dict[str, Any], jti: Any) -> None:
    refused(verifier(), proof(keys["P-256"], jti=jti), "dpop_claims")  # None: no jti


def test_a_jti_of_the_longest_length_is_accepted(keys: dict[str, Any]) -> None:
    verifier().verify([proof(keys["P-256"], jti="x" * MAX_JTI_LENGTH)], "GET", URL)


def test_a_jti_that_is_not_unicode_text_is_refused(keys: dict[str, Any]) -> None:
    # JSON can spell a lone surrogate ("\ud800"); it cannot key the replay store.
    refused(verifier(), proof(keys["P-256"], jti="a\ud800"), "dpop_claims")
    verifier().verify([proof(keys["P-256"], jti="é\U0001f600")], "GET", URL)


@pytest.mark.parametrize(("htm", "method"), [("POST", "GET"), ("get", "GET"), ("GET", "HEAD")])
def test_the_method_must_be_the_requests(keys: dict[str, Any], htm: str, method: str) -> None:
    refused(verifier(), proof(keys["P-256"], htm=htm), "dpop_method", method=method)


@pytest.mark.parametrize("name", ["htm", "htu", "iat"])
def test_htm_htu_and_iat_are_required(keys: dict[str, Any], name: str) -> None:
    claims = claims_for()
    del claims[name]
    key = keys["P-256"]
    refused(
        verifier(),
        signed(key, encode(header_for(key, "ES256")), encode(claims), "ES256"),
        "dpop_claims",
    )


@pytest.mark.parametrize(
    ("htu", "url"),
    [
        ("https://api.example.com/api/whoami", "https://api.example.com/api/whoami?x=1"),
        ("https://api.example.com/api/whoami?x=1#f", "https://api.example.com/api/whoami"),
        ("HTTPS://API.Example.COM/api/whoami", "https://api.example.com/api/whoami"),
        ("https://api.example.com:443/api/whoami", "https://api.example.com/api/whoami"),
        ("https://api.example.com:/api/whoami", "https://api.example.com/api/whoami"),
        ("http://api.example.com:80/x", "http://api.example.com/x"),
        ("https://api.example.com/%61pi/%7Ewho", "https://api.example.com/api/~who"),
        ("https://api.example.com/a%2fb", "https://api.example.com/a%2Fb"),
        ("https://api.example.com", "https://api.example.com/"),
        ("https://api.example.com/a/./b/../c", "https://api.example.com/a/c"),
        ("https://api.example.com/a/%2E%2E/c", "https://api.example.com/c"),
        ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
    ],
)
def test_the_url_is_compared_after_rfc_3986_normalization(
    keys: dict[str, Any], htu: str, url: str
) -> None:
    verifier().verify([proof(keys["P-256"], htu=htu)], "GET", url)
    verifier().verify([proof(keys["P-256"], htu=url)], "GET", htu)


@pytest.mark.parametrize(
    ("htu", "url"),
    [
        ("https://api.example.com/api/whoami", "https://api.example.com/api/hello"),
        ("https://evil.example.com/api/whoami", "https://api.example.com/api/whoami"),
        ("http://api.example.com/api/whoami", "https://api.example.com/api/whoami"),
        ("https://api.example.com:8443/api/whoami", "https://api.example.com/api/whoami"),
        ("https://api.example.com:80/x", "https://api.example.com/x"),
        ("https://api.example.com/API/whoami", "https://api.example.com/api/whoami"),
        ("https://api.example.com/a%2Fb", "https://api.example.com/a/b"),
        ("https://api.example.com/api/whoami/", "https://api.example.com/api/whoami"),
        ("https://user@api.example.com/x", "https://api.example.com/x"),
        ("ftp://api.example.com/x", "ftp://api.example.com/y"),
        ("/api/whoami", "https://api.example.com/api/whoami"),
        ("https://api.example.com/a b", "https://api.example.com/a%20b"),
        ("https://api.example.com/%zz", "https://api.example.com/%25zz"),
        ("https://api.example.com:99999/x", "https://api.example.com:99999/y"),
    ],
)
def test_a_proof_for_another_url_is_refused(keys: dict[str, Any], htu: str, url: str) -> None:
    refused(verifier(), proof(keys["P-256"], htu=htu), "dpop_url", url=url)


def test_the_requests_url_may_hold_raw_characters(keys: dict[str, Any]) -> None:
    # The server rebuilt the request's URL from raw bytes; the client encoded them.
    verifier().verify(
        [proof(keys["P-256"], htu="https://api.example.com/caf%C3%A9")],
        "GET",
        "https://api.example.com/café",
    )


@pytest.mark.parametrize(
    ("iat", "reason"),
    [
        (NOW - 301, "dpop_stale"),
        (NOW + 61, "dpop_future"),
        ("1700000000", "dpop_claims"),
        (True, "dpop_claims"),
        (None, "dpop_claims"),
        ([NOW], "dpop_claims"),
    ],
)
def test_the_proof_must_be_recent(keys: dict[str, Any], iat: Any, reason: str) -> None:
    claims = claims_for(iat=iat)  # None: no iat at all
    key = keys["P-256"]
    refused(
        verifier(), signed(key, encode(header_for(key, "ES256")), encode(claims), "ES256"), reason
    )


@pytest.mark.parametrize("iat", [NOW - 300, NOW + 60, NOW, NOW - 0.5])
def test_the_edges_of_the_window_are_accepted(keys: dict[str, Any], iat: float) -> None:
    verifier().verify([proof(keys["P-256"], iat=iat)], "GET", URL)


def test_the_window_follows_max_age_and_leeway(keys: dict[str, Any]) -> None:
    dpop = verifier(max_age=10, leeway=0)
    refused(dpop, proof(keys["P-256"], iat=NOW - 11), "dpop_stale")
    refused(dpop, proof(keys["P-256"], iat=NOW + 1), "dpop_future")
    dpop.verify([proof(keys["P-256"], iat=NOW - 10)], "GET", URL)


@pytest.mark.parametrize(
    "options", [{"max_age": -1}, {"leeway": float("inf")}, {"max_age": "300"}, {"leeway": True}]
)
def test_the_window_settings_are_checked(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        DPoPVerifier(**options)


@pytest.mark.parametrize(
    ("ath", "reason"),
    [
        (None, "dpop_claims"),
        (7, "dpop_claims"),
        (b64url(hashlib.sha256(b"another token").digest()), "dpop_token_hash"),
        (b64url(hashlib.sha256(TOKEN.encode()).digest()) + "A", "dpop_token_hash"),
        ("é" * 43, "dpop_token_hash"),
    ],
)
def test_with_a_token_the_proof_must_carry_its_hash(
    keys: dict[str, Any], ath: Any, reason: str
) -> None:
    claims = claims_for(ath=ath)  # None: no ath at all
    key = keys["P-256"]
    refused(
        verifier(),
        signed(key, encode(header_for(key, "ES256")), encode(claims), "ES256"),
        reason,
        access_token=TOKEN,
    )


def test_the_tokens_digest_may_stand_in_for_the_token(keys: dict[str, Any]) -> None:
    # What the token cache computed already (its key), so the token is hashed once.
    key, digest = keys["P-256"], token_digest(TOKEN)
    assert verifier().verify([proof(key)], "GET", URL, access_token_digest=digest)
    refused(
        verifier(),
        proof(key, jti="2"),
        "dpop_token_hash",
        access_token_digest=token_digest(TOKEN + "x"),
    )
    refused(verifier(), proof(key, jti="3", ath=None), "dpop_claims", access_token_digest=digest)


def test_without_a_token_no_hash_is_needed(keys: dict[str, Any]) -> None:
    # At a token endpoint there is no access token yet (RFC 9449 §4.3).
    key = keys["P-256"]
    verifier().verify([proof(key, ath=None)], "GET", URL)
    verifier().verify([proof(key, ath="anything", jti="2")], "GET", URL)


def test_access_token_hash_is_the_base64url_sha256() -> None:
    # RFC 9449 §7.1's example: the token and its ath.
    assert (
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")
        == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )


def test_the_key_must_be_the_one_the_token_is_bound_to(keys: dict[str, Any]) -> None:
    key, other = keys["P-256"], keys["P-384"]
    bound = verifier().verify([proof(key)], "GET", URL).jkt
    refused(verifier(), proof(other, "ES384"), "dpop_key_mismatch", jkt=bound)
    assert verifier().verify([proof(key)], "GET", URL, jkt=bound).jkt == bound


@pytest.mark.parametrize("jkt", [17, {"a": 1}, "é"])
def test_a_token_binding_that_is_not_a_thumbprint_is_the_tokens_fault(
    keys: dict[str, Any], jkt: Any
) -> None:
    with pytest.raises(InvalidToken) as caught:
        verifier().verify([proof(keys["P-256"])], "GET", URL, jkt=jkt)
    assert not isinstance(caught.value, InvalidDPoPProof)


# -- nonces -----------------------------------------------------------------------


def test_without_a_nonce_the_client_is_told_which_to_use(keys: dict[str, Any]) -> None:
    nonces = DPoPNonces(b"s" * 32, clock=lambda: NOW)
    dpop = verifier(nonces=nonces)
    with pytest.raises(UseDPoPNonce) as caught:
        dpop.verify([proof(keys["P-256"])], "GET", URL)
    assert caught.value.nonce == nonces.issue()
    assert caught.value.error == caught.value.reason == "use_dpop_nonce"
    assert caught.value.nonce not in caught.value.description
    result = dpop.verify([proof(keys["P-256"], nonce=caught.value.nonce, jti="2")], "GET", URL)
    assert result.next_nonce is None
    assert result.claims["nonce"] == nonces.issue()


def test_an_expired_or_foreign_nonce_is_answered_with_a_fresh_one(keys: dict[str, Any]) -> None:
    clock = Clock(NOW)
    nonces = DPoPNonces(b"s" * 32, step=60, clock=clock)
    old = nonces.issue()
    clock.now += 120
    dpop = verifier(nonces=nonces, clock=clock)
    for nonce in (old, DPoPNonces(b"t" * 32, step=60, clock=clock).issue(), "", "x"):
        with pytest.raises(UseDPoPNonce) as caught:
            dpop.verify([proof(keys["P-256"], nonce=nonce, iat=clock.now)], "GET", URL)
        assert caught.value.nonce == nonces.issue() != old


def test_a_nonce_of_the_previous_step_passes_and_a_fresh_one_is_offered(
    keys: dict[str, Any],
) -> None:
    clock = Clock(NOW)
    nonces = DPoPNonces(b"s" * 32, step=60, clock=clock)
    previous = nonces.issue()
    clock.now += 60
    result = verifier(nonces=nonces, clock=clock).verify(
        [proof(keys["P-256"], nonce=previous, iat=clock.now)], "GET", URL
    )
    assert result.next_nonce == nonces.issue() != previous


def test_a_nonce_that_is_not_text_is_malformed(keys: dict[str, Any]) -> None:
    nonces = DPoPNonces(b"s" * 32, clock=lambda: NOW)
    refused(verifier(nonces=nonces), proof(keys["P-256"], nonce=12), "dpop_claims")


def test_nonces_are_only_required_when_asked_for(keys: dict[str, Any]) -> None:
    verifier().verify([proof(keys["P-256"], nonce="whatever")], "GET", URL)


# -- replay -------------------------------------------------------------------------


def test_a_proof_is_accepted_once(keys: dict[str, Any]) -> None:
    dpop = verifier()
    value = proof(keys["P-256"])
    dpop.verify([value], "GET", URL)
    refused(dpop, value, "dpop_replayed")
    # A new proof with the same jti is a replay too (RFC 9449 §11.1).
    refused(
        dpop,
        proof(keys["P-256"], htu="https://api.example.com/x"),
        "dpop_replayed",
        url="https://api.example.com/x",
    )


def test_jtis_are_remembered_per_key(keys: dict[str, Any]) -> None:
    dpop = verifier()
    dpop.verify([proof(keys["P-256"], jti="same")], "GET", URL)
    dpop.verify([proof(keys["P-384"], "ES384", jti="same")], "GET", URL)


def test_a_refused_proof_does_not_use_up_its_jti(keys: dict[str, Any]) -> None:
    key = keys["P-256"]
    nonces = DPoPNonces(b"s" * 32, clock=lambda: NOW)
    dpop = verifier(nonces=nonces)
    # Signed by another key, for another URL, without the nonce: each refused...
    refused(
        dpop, _with_jwk(key, "ES256", jwk_of(key), sign_with=keys["P-384"]), "dpop_bad_signature"
    )
    refused(dpop, proof(key, htu="https://api.example.com/x", nonce=nonces.issue()), "dpop_url")
    with pytest.raises(UseDPoPNonce):
        dpop.verify([proof(key)], "GET", URL)
    # ... and the jti is still free for the real proof.
    dpop.verify([proof(key, nonce=nonces.issue())], "GET", URL)


def test_the_replay_store_can_be_shared_between_verifiers(keys: dict[str, Any]) -> None:
    store = InMemoryReplayStore(clock=lambda: NOW)
    value = proof(keys["P-256"])
    verifier(replay_store=store).verify([value], "GET", URL)
    refused(verifier(replay_store=store), value, "dpop_replayed")


def test_a_jti_is_remembered_as_long_as_its_proof_is_acceptable(keys: dict[str, Any]) -> None:
    clock = Clock(NOW)
    store = InMemoryReplayStore(clock=clock)
    dpop = verifier(replay_store=store, clock=clock, max_age=300, leeway=60)
    value = proof(keys["P-256"], iat=NOW)
    dpop.verify([value], "GET", URL)
    clock.now = NOW + 300  # the last moment iat is accepted: still remembered
    refused(dpop, value, "dpop_replayed")
    clock.now = NOW + 301
    refused(dpop, value, "dpop_stale")
    # Kept the leeway longer, for a process (sharing the store) whose clock is behind.
    clock.now = NOW + 360
    dpop.verify([proof(keys["P-256"], iat=clock.now, jti="new")], "GET", URL)
    assert len(store) == 2
    clock.now = NOW + 361
    dpop.verify([proof(keys["P-256"], iat=clock.now, jti="newer")], "GET", URL)
    assert len(store) == 2  # the old jti was forgotten when the window and leeway closed


def test_concurrent_replays_are_accepted_once(keys: dict[str, Any]) -> None:
    dpop = verifier()
    value = proof(keys["P-256"])
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            dpop.verify([value], "GET", URL)
            outcomes.append("accepted")
        except InvalidDPoPProof as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["accepted"] + ["dpop_replayed"] * 7


# -- making proofs -------------------------------------------------------------------


@pytest.mark.parametrize("alg", DEFAULT_ALGORITHMS)
def test_make_proof_signs_what_the_checker_accepts(keys: dict[str, Any], alg: str) -> None:
    key = keys[KEY_OF_ALG[alg]]
    value = make_proof(
        key,
        "POST",
        "https://api.example.com/items?page=2#top",
        access_token=TOKEN,
        nonce="n-1",
        iat=NOW,
        jti="j-1",
        alg=alg,
    )
    head, payload, _ = value.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    assert header == {"typ": "dpop+jwt", "alg": alg, "jwk": jwk_of(key)}
    assert claims == {
        "jti": "j-1",
        "htm": "POST",
        "htu": "https://api.example.com/items",
        "iat": NOW,
        "ath": access_token_hash(TOKEN),
        "nonce": "n-1",
    }
    verifier().verify([value], "POST", "https://api.example.com/items", access_token=TOKEN)


def test_make_proof_picks_the_algorithm_and_a_fresh_jti(keys: dict[str, Any]) -> None:
    algs = {}
    for name in ("RSA", "P-256", "P-384", "P-521", "Ed25519"):
        value = make_proof(keys[name], "GET", URL)
        algs[name] = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))["alg"]
    assert algs == {
        "RSA": "RS256",
        "P-256": "ES256",
        "P-384": "ES384",
        "P-521": "ES512",
        "Ed25519": "EdDSA",
    }
    jtis = {
        json.loads(
            base64.urlsafe_b64decode(make_proof(keys["P-256"], "GET", URL).split(".")[1] + "==")
        )["jti"]
        for _ in range(5)
    }
    assert len(jtis) == 5
    with pytest.raises(ValueError):
        make_proof(keys["P-256"], "GET", URL, alg="HS256")
