"""AccessTokenVerifier against a real issuer on loopback: every rule, every attack."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from okta_pyramid.tokens import exceptions as exc
from okta_pyramid.tokens.verifier import MAX_TOKEN_LENGTH, AccessTokenVerifier

from ..helpers import b64url
from ..issuer import DROP, LoopbackIssuer, SigningKey, public_jwk, rsa_key


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"sig") -> str:
    return f"{b64url(header)}.{b64url(claims)}.{b64url(signature)}"


def test_valid_token_returns_its_claims(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    claims = verifier.verify(issuer.mint(sub="bob@example.com"))
    assert claims["sub"] == "bob@example.com"
    assert claims["iss"] == issuer.issuer


def test_audience_list_needs_one_accepted_entry(issuer: LoopbackIssuer) -> None:
    verifier = AccessTokenVerifier(issuer.issuer, ["api://other", "api://default"])
    assert verifier.verify(issuer.mint(aud=["api://x", "api://default"]))
    with pytest.raises(exc.InvalidAudience):
        verifier.verify(issuer.mint(aud=["api://x", "api://y"]))


@pytest.mark.parametrize(
    ("claims", "error", "text"),
    [
        ({"exp": int(time.time()) - 61}, exc.ExpiredToken, "expired"),
        # Far enough ahead that the minutes between collection and the test don't matter.
        ({"nbf": int(time.time()) + 3600}, exc.ImmatureToken, "not valid yet"),
        ({"iat": int(time.time()) + 3600}, exc.ImmatureToken, "issued in the future"),
        ({"iss": "https://evil.example.com/oauth2/default"}, exc.InvalidIssuer, "another"),
        ({"aud": "api://someone-else"}, exc.InvalidAudience, "wrong audience"),
        ({"aud": []}, exc.InvalidAudience, "wrong audience"),
        ({"exp": DROP}, exc.InvalidClaims, "'exp'"),
        ({"iat": DROP}, exc.InvalidClaims, "'iat'"),
        ({"iss": DROP}, exc.InvalidClaims, "'iss'"),
        ({"aud": DROP}, exc.InvalidClaims, "'aud'"),
        # RFC 7519 §2: NumericDate is a JSON number, not a string or a boolean.
        ({"exp": str(int(time.time()) + 600)}, exc.InvalidClaims, "NumericDate"),
        ({"exp": True}, exc.InvalidClaims, "NumericDate"),
        ({"nbf": "0"}, exc.InvalidClaims, "NumericDate"),
        ({"iat": None}, exc.InvalidClaims, "NumericDate"),
        ({"aud": 42}, exc.InvalidClaims, "'aud'"),
        ({"aud": ["api://default", 1]}, exc.InvalidClaims, "'aud'"),
        ({"iss": ["x"]}, exc.InvalidIssuer, "another"),
        ({"sub": 12}, exc.InvalidClaims, "'sub'"),
        ({"cid": ["a"]}, exc.InvalidClaims, "'cid'"),
    ],
)
def test_claims_are_checked(
    issuer: LoopbackIssuer,
    verifier: AccessTokenVerifier,
    claims: dict[str, Any],
    error: type,
    text: str,
) -> None:
    with pytest.raises(error) as info:
        verifier.verify(issuer.mint(**claims))
    assert text in str(info.value)


def test_leeway_tolerates_small_clock_skew(issuer: LoopbackIssuer) -> None:
    now = int(time.time())
    lenient = AccessTokenVerifier(issuer.issuer, leeway=60)
    strict = AccessTokenVerifier(issuer.issuer, leeway=0)
    token = issuer.mint(exp=now - 30, nbf=now + 30, iat=now + 30)
    assert lenient.verify(token)
    with pytest.raises(exc.ExpiredToken):
        strict.verify(token)


def test_non_finite_dates_are_refused(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    # Python's json accepts these; JSON (RFC 8259) does not.
    payload = b64url(issuer.claims()).encode()
    for bad in (b'"exp": Infinity', b'"exp": NaN'):
        claims = (
            json.dumps(issuer.claims())
            .encode()
            .replace(b'"exp": ' + str(issuer.claims()["exp"]).encode(), bad)
        )
        token = issuer.sign(claims)
        assert b64url(claims).encode() != payload
        with pytest.raises(exc.MalformedToken):
            verifier.verify(token)
    huge = issuer.sign(
        json.dumps({**issuer.claims(), "exp": 10**400 // 10**399 * 10**300}).encode()
    )
    assert verifier.verify(huge)  # a very large integer is a valid, far-future NumericDate


def test_client_id_allowlist(issuer: LoopbackIssuer) -> None:
    verifier = AccessTokenVerifier(issuer.issuer, client_ids=["0oa-allowed"])
    assert verifier.verify(issuer.mint(cid="0oa-allowed"))
    for cid in ("0oa-other", DROP):
        with pytest.raises(exc.InvalidClaims, match="cid"):
            verifier.verify(issuer.mint(cid=cid))


# -- header and signature attacks (RFC 8725 §2, §3) ------------------------------


def test_alg_none_is_refused(issuer: LoopbackIssuer, verifier: AccessTokenVerifier) -> None:
    token = f"{b64url({'alg': 'none', 'kid': 'key-1'})}.{b64url(issuer.claims())}."
    with pytest.raises(exc.UnsupportedAlgorithm):
        verifier.verify(token)
    assert issuer.hits == {}  # refused before any key was looked up


def test_hs256_keyed_with_the_public_key_is_refused(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    pem = (
        issuer.keys[0]
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "kid": "key-1", "typ": "JWT"}
    signing_input = f"{b64url(header)}.{b64url(issuer.claims())}".encode()
    import hmac

    signature = hmac.new(pem, signing_input, hashlib.sha256).digest()
    with pytest.raises(exc.UnsupportedAlgorithm):
        verifier.verify(f"{signing_input.decode()}.{b64url(signature)}")


@pytest.mark.parametrize(
    "alg", ["RS384", "RS512", "PS256", "ES256", "HS512", "EdDSA", "rs256", "", None, 256, ["RS256"]]
)
def test_only_rs256_is_accepted(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier, alg: Any
) -> None:
    with pytest.raises(exc.UnsupportedAlgorithm):
        verifier.verify(forge({"alg": alg, "kid": "key-1"}, issuer.claims()))


def test_embedded_jwk_is_ignored(issuer: LoopbackIssuer, verifier: AccessTokenVerifier) -> None:
    # The attacker signs with their own key and embeds its public half (CVE-2018-0114 style).
    attacker = rsa_key(9)
    token = jwt.encode(
        issuer.claims(),
        attacker,
        algorithm="RS256",
        headers={"kid": "key-1", "jwk": public_jwk(attacker, "key-1")},
    )
    with pytest.raises(exc.InvalidSignature):
        verifier.verify(token)


@pytest.mark.parametrize("param", ["jku", "x5u"])
def test_key_urls_in_the_token_are_never_fetched(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier, param: str
) -> None:
    attacker = rsa_key(9)
    url = f"{issuer.base_url}/attacker/keys"
    token = jwt.encode(
        issuer.claims(), attacker, algorithm="RS256", headers={"kid": "attacker-key", param: url}
    )
    with pytest.raises(exc.UnknownKey):
        verifier.verify(token)
    assert "/attacker/keys" not in issuer.hits
    assert set(issuer.hits) <= {
        "/oauth2/default/.well-known/oauth-authorization-server",
        "/oauth2/default/v1/keys",
    }


def test_x5c_chain_is_ignored(issuer: LoopbackIssuer, verifier: AccessTokenVerifier) -> None:
    token = jwt.encode(
        issuer.claims(), rsa_key(9), algorithm="RS256", headers={"kid": "key-1", "x5c": ["MIIB"]}
    )
    with pytest.raises(exc.InvalidSignature):
        verifier.verify(token)


def test_foreign_key_with_a_known_kid_is_refused(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    impostor = SigningKey("key-1", rsa_key(9))
    with pytest.raises(exc.InvalidSignature):
        verifier.verify(issuer.mint(key=impostor))


def test_tampered_payload_is_refused(issuer: LoopbackIssuer, verifier: AccessTokenVerifier) -> None:
    header, _, signature = issuer.mint().split(".")
    tampered = b64url(issuer.claims(sub="admin@example.com"))
    with pytest.raises(exc.InvalidSignature):
        verifier.verify(f"{header}.{tampered}.{signature}")


def test_missing_kid_is_refused(issuer: LoopbackIssuer, verifier: AccessTokenVerifier) -> None:
    token = jwt.encode(issuer.claims(), issuer.keys[0].private_key, algorithm="RS256")
    with pytest.raises(exc.UnknownKey, match="no key id"):
        verifier.verify(token)


@pytest.mark.parametrize(
    "header",
    [
        {"crit": ["exp"]},
        {"crit": ["b64"], "b64": False},
        {"b64": True},
    ],
)
def test_critical_extensions_are_refused(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier, header: dict[str, Any]
) -> None:
    # RFC 7515 §4.1.11: a recipient that does not understand a crit extension rejects.
    token = forge({"alg": "RS256", "kid": "key-1", **header}, issuer.claims())
    with pytest.raises(exc.UnsupportedHeader, match="crit"):
        verifier.verify(token)


@pytest.mark.parametrize(
    ("typ", "accepted"),
    [
        ("at+jwt", True),
        ("application/at+JWT", True),
        ("JWT", True),
        ("secevent+jwt", False),
        ("dpop+jwt", False),
        (1, False),
    ],
)
def test_explicit_type(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier, typ: Any, accepted: bool
) -> None:
    # RFC 8725 §3.11 / RFC 9068 §4: a JWT of another kind is not an access token.
    token = issuer.mint(headers={"typ": typ})
    if accepted:
        assert verifier.verify(token)
    else:
        with pytest.raises(exc.UnsupportedHeader, match="typ"):
            verifier.verify(token)


@pytest.mark.parametrize(
    ("claims", "accepted"),
    [
        ({"typ": "ID"}, False),
        ({"typ": "Refresh"}, False),
        ({"typ": "Logout"}, False),
        ({"typ": "Offline"}, False),
        ({"token_use": "id"}, False),
        ({"token_use": "refresh_token"}, False),
        ({"token_use": ["access"]}, False),
        ({"typ": "Bearer"}, True),
        ({"token_use": "access"}, True),
    ],
    ids=[
        "keycloak-id",
        "keycloak-refresh",
        "keycloak-logout",
        "keycloak-offline",
        "cognito-id",
        "hydra-refresh",
        "not-a-string",
        "keycloak-access",
        "cognito-access",
    ],
)
def test_a_token_that_says_it_is_another_kind_is_refused(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier, claims: dict[str, Any], accepted: bool
) -> None:
    # Keycloak's ID and refresh tokens carry the header typ of an access token
    # (JWT) and say what they are in the typ claim; Cognito's ID token in token_use.
    # The audience alone does not tell them apart where the API's audience is a
    # client id, which an ID token is issued for.
    token = issuer.mint(headers={"typ": "JWT"}, **claims)
    if accepted:
        assert verifier.verify(token)
    else:
        with pytest.raises(exc.InvalidClaims, match="not an access token"):
            verifier.verify(token)


def test_id_token_is_not_an_access_token(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    # An Okta ID token: same issuer and keys, but its audience is the client id.
    id_token = issuer.mint(
        aud="0oa-test-client",
        nonce="n-0S6_WzA2Mj",
        amr=["pwd"],
        auth_time=int(time.time()),
        cid=DROP,
        scp=DROP,
    )
    with pytest.raises(exc.InvalidAudience):
        verifier.verify(id_token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "...",
        "..",
        "e30.e30.",
        "!!!.@@@.###",
        "eyJhbGciOiJSUzI1NiJ9",
        "\u00e9.\u00e9.\u00e9",
        "a" * (MAX_TOKEN_LENGTH + 1),
    ],
)
def test_garbage_is_malformed(verifier: AccessTokenVerifier, token: str) -> None:
    with pytest.raises(exc.InvalidToken):
        verifier.verify(token)


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a_segment_of_impossible_length_is_malformed(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier, part: int
) -> None:
    # 4n + 1 base64url characters encode no whole number of bytes.
    parts = issuer.mint().split(".")
    parts[part] += "A" * ((1 - len(parts[part])) % 4)
    assert len(parts[part]) % 4 == 1
    if part < 2:  # signed as it is, so that the signature is not what refuses it
        signing_input = f"{parts[0]}.{parts[1]}".encode()
        parts[2] = b64url(issuer.signature(signing_input))
    with pytest.raises(exc.MalformedToken, match="base64url"):
        verifier.verify(".".join(parts))


@pytest.mark.parametrize(
    ("header", "claims"),
    [
        (b"not json", {}),
        (b"[1, 2]", {}),
        (b'"RS256"', {}),
        (b"{" * 100000, {}),
        ({"alg": "RS256", "kid": "key-1"}, b"not json"),
        ({"alg": "RS256", "kid": "key-1"}, b"[]"),
        ({"alg": "RS256", "kid": ["key-1"]}, {}),
        ({"alg": "RS256", "kid": ""}, {}),
    ],
)
def test_malformed_segments(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier, header: Any, claims: Any
) -> None:
    if isinstance(claims, bytes):  # a correctly signed token with a broken payload
        token = issuer.sign(claims)
    else:
        token = f"{b64url(header)}.{b64url(claims)}.{b64url(b'x')}"
    with pytest.raises(exc.InvalidToken):
        verifier.verify(token)


@pytest.mark.parametrize(
    "respell",
    [
        lambda sig: sig.replace("-", "+").replace("_", "/"),
        lambda sig: sig + "~~~~",
        lambda sig: sig + "==",
        lambda sig: sig[:10] + " " + sig[10:],
    ],
)
def test_one_signed_token_has_one_spelling(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier, respell: Any
) -> None:
    # RFC 7515 §2: base64url, no padding. Deny-lists keyed on the token must hold.
    token = issuer.mint()
    header, payload, signature = token.split(".")
    while "-" not in signature and "_" not in signature:
        token = issuer.mint()
        header, payload, signature = token.split(".")
    assert verifier.verify(token)
    with pytest.raises(exc.MalformedToken, match="base64url"):
        verifier.verify(f"{header}.{payload}.{respell(signature)}")


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def spellings_with_spare_bits(segment: str) -> list[str]:
    """The other texts that a lenient decoder reads as the same octets: the last
    character with its unused low bits (4 after 4n+2 characters, 2 after 4n+3) set."""
    spare = {2: 16, 3: 4}[len(segment) % 4]
    value = BASE64URL.index(segment[-1])
    assert value % spare == 0  # an encoder writes them as zero
    return [segment[:-1] + BASE64URL[value | bits] for bits in range(1, spare)]


def lenient(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@pytest.mark.parametrize(
    ("part", "rest"),
    [
        ("header", 2),
        ("header", 3),
        ("payload", 2),
        ("payload", 3),
        ("signature", 2),
    ],
)
def test_spare_bits_give_no_second_spelling(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier, part: str, rest: int
) -> None:
    # RFC 4648 §3.5, RFC 7515 §2: a segment whose unused bits are not zero is not
    # base64url. Otherwise up to 16 texts verify as one token and each is a separate
    # cache entry, and a deny-list keyed on the token text can be walked around.
    index = ("header", "payload", "signature").index(part)
    for padding_length in range(8):
        token = issuer.mint(headers={"x": "x" * padding_length}, note="n" * padding_length)
        segments = token.split(".")
        if len(segments[index]) % 4 == rest:
            break
    assert len(segments[index]) % 4 == rest
    assert verifier.verify(token)
    respellings = spellings_with_spare_bits(segments[index])
    assert len(respellings) == {2: 15, 3: 3}[rest]
    for respelled in respellings:
        assert lenient(respelled) == lenient(segments[index])
        parts = list(segments)
        parts[index] = respelled
        if index < 2:  # signed as it is, so that the signature is not what refuses it
            parts[2] = b64url(issuer.signature(f"{parts[0]}.{parts[1]}".encode()))
        with pytest.raises(exc.MalformedToken, match="base64url"):
            verifier.verify(".".join(parts))


def test_infinite_dates_are_refused(issuer: LoopbackIssuer, verifier: AccessTokenVerifier) -> None:
    # 1e400 is valid JSON and parses to float("inf"): a token that never expires.
    claims = issuer.claims()
    raw = (
        json.dumps(claims)
        .encode()
        .replace(b'"exp": ' + str(claims["exp"]).encode(), b'"exp": 1e400')
    )
    assert b"1e400" in raw
    token = issuer.sign(raw)
    with pytest.raises(exc.InvalidClaims, match="NumericDate"):
        verifier.verify(token)


def test_exceptions_never_contain_the_token(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    for token in (
        issuer.mint(exp=1),
        issuer.mint(aud="x"),
        issuer.mint(key=SigningKey("key-1", rsa_key(9))),
        issuer.mint(headers={"kid": "nope"}),
    ):
        with pytest.raises(exc.VerificationError) as info:
            verifier.verify(token)
        for part in token.split("."):
            assert part not in str(info.value)


def sign_raw(
    issuer: LoopbackIssuer, header: dict[str, Any], payload: bytes, encoded_message: bytes
) -> str:
    """A token whose signature is the RSA private operation on ``encoded_message``
    (the PKCS #1 v1.5 padding is added here), with the issuer's first key."""
    numbers = issuer.keys[0].private_key.private_numbers()
    size = (numbers.public_numbers.n.bit_length() + 7) // 8
    padded = b"\x00\x01" + b"\xff" * (size - len(encoded_message) - 3) + b"\x00" + encoded_message
    signature = pow(int.from_bytes(padded, "big"), numbers.d, numbers.public_numbers.n)
    signing_input = f"{b64url(header)}.{b64url(payload)}"
    return f"{signing_input}.{b64url(signature.to_bytes(size, 'big'))}"


SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def test_the_signature_is_rsassa_pkcs1_v1_5_with_sha256(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    # RFC 7518 §3.3 and RFC 8017 §8.2.2: the signature opens to the DigestInfo of the
    # SHA-256 of the signing input, and to nothing else.
    header = {"alg": "RS256", "kid": "key-1"}
    payload = json.dumps(issuer.claims()).encode()
    signing_input = f"{b64url(header)}.{b64url(payload)}".encode()
    digest = hashlib.sha256(signing_input).digest()
    assert verifier.verify(sign_raw(issuer, header, payload, SHA256_DIGEST_INFO + digest))
    for forged in (
        digest,  # the bare digest, no DigestInfo
        SHA256_DIGEST_INFO + hashlib.sha256(b"other").digest(),  # another message
        SHA256_DIGEST_INFO + digest[:-1] + bytes([digest[-1] ^ 1]),  # one bit off
        bytes.fromhex("3051300d060960864801650304020305000440")  # SHA-512's DigestInfo
        + hashlib.sha512(signing_input).digest(),
    ):
        with pytest.raises(exc.InvalidSignature):
            verifier.verify(sign_raw(issuer, header, payload, forged))


def test_an_rs512_signature_under_an_rs256_header_is_refused(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    header = {"alg": "RS256", "kid": "key-1"}
    signing_input = f"{b64url(header)}.{b64url(issuer.claims())}".encode()
    signature = issuer.keys[0].private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA512())
    with pytest.raises(exc.InvalidSignature):
        verifier.verify(f"{signing_input.decode()}.{b64url(signature)}")


@pytest.mark.parametrize("part", ["claims", "header"])
def test_duplicate_names_are_refused(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier, part: str
) -> None:
    # RFC 7519 §4 and RFC 7515 §4: reject, rather than let two readers of one token
    # see different values ("sub" first as alice, last as root).
    claims = json.dumps(issuer.claims()).encode()
    header = b'{"alg": "RS256", "kid": "key-1"}'
    if part == "claims":
        claims = claims[:-1] + b', "sub": "root@example.com"}'
    else:
        header = b'{"alg": "RS256", "kid": "key-1", "kid": "key-1"}'
    signing_input = f"{b64url(header)}.{b64url(claims)}".encode()
    signature = issuer.signature(signing_input)
    with pytest.raises(exc.MalformedToken, match="twice"):
        verifier.verify(f"{signing_input.decode()}.{b64url(signature)}")


def test_duplicate_names_inside_a_claim_are_refused(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    raw = (
        json.dumps(issuer.claims(ext={"role": "user"}))
        .encode()
        .replace(b'{"role": "user"}', b'{"role": "user", "role": "admin"}')
    )
    token = issuer.sign(raw)
    with pytest.raises(exc.MalformedToken, match="twice"):
        verifier.verify(token)


def test_a_repeated_token_is_one_shared_verified_token(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    token = issuer.mint()
    first = verifier.verify_token(token)
    assert verifier.verify_token(token) is first
    assert first.payload == base64.urlsafe_b64decode(token.split(".")[1] + "==")
    claims = first.claims()
    claims["sub"] = "mallory"
    assert first.claims()["sub"] == "alice@example.com"  # a fresh dict each time


def test_principals_are_computed_once_per_token_from_read_only_claims(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    calls: list[Any] = []

    def mapping(claims: Any) -> list[str]:
        calls.append(claims)
        with pytest.raises(TypeError):
            claims["sub"] = "root"  # the shared claims cannot be changed
        return [f"user:{claims['sub']}"]

    token = verifier.verify_token(issuer.mint())
    assert token.principals(mapping) == ("user:alice@example.com",)
    assert token.principals(mapping) == ("user:alice@example.com",)
    assert len(calls) == 1
    assert token.principals(lambda claims: ["other"]) == ("other",)  # another mapping


def test_accepted_headers_are_remembered_within_a_bound(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier
) -> None:
    for n in range(200):
        assert verifier.verify(issuer.mint(headers={"n": n}))
    assert 0 < len(verifier._header_kids) <= 64
    # A refused header is never remembered, and is refused every time.
    bad = forge({"alg": "none", "kid": "key-1"}, issuer.claims())
    for _ in range(2):
        with pytest.raises(exc.UnsupportedAlgorithm):
            verifier.verify(bad)
    assert bad.split(".")[0] not in verifier._header_kids
