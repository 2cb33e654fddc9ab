"""The compact JWS serialization (RFC 7515 §7.1), parsed by hand, and the RS256 check.

PyJWT's ``PyJWS.decode`` does the same job at about half the speed, and it reads
base64url leniently (spare bits, and ``+``/``/`` once padded): here one signed
token has exactly one spelling. A property test holds this module to refusing at
least everything ``PyJWS`` refuses.

The strict base64url and strict JSON readers here are the only ones of the token
package: access tokens, DPoP proofs and the keys proofs carry all go through them.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from .exceptions import InvalidSignature, MalformedToken

# RFC 7515 §7.1: the compact serialization, three base64url parts (§2: no padding).
_COMPACT_JWS = re.compile(r"([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_STANDARD_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# RFC 4648 §3.5 and RFC 7515 §2: the bits after the last whole octet are zero. By
# length mod 4, the characters a segment may end with: 4n+2 characters carry 4 spare
# bits in the last one, 4n+3 carry 2, 4n carry none, and 4n+1 is no whole octet.
_FINAL_CHARACTERS: tuple[frozenset[str] | None, ...] = (
    None,
    frozenset(),
    frozenset(_BASE64URL[::16]),
    frozenset(_BASE64URL[::4]),
)
# By length mod 4, the padding that completes the last group (4n+1 never gets here).
_PADDING = (b"", b"", b"==", b"=")
_a2b_base64 = binascii.a2b_base64
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()

# What a part is called when it is refused: (not canonical base64url, a name twice,
# not JSON, not an object). The access token's parts, and a DPoP proof's.
_REFUSALS = {
    "header": (
        "the token is not canonical base64url-encoded",
        "the token's header names a parameter twice",
        "the token's header is not JSON",
        "the token's header is not a JSON object",
    ),
    "claims": (
        "the token is not canonical base64url-encoded",
        "the token's claims name a claim twice",
        "the token's claims are not JSON",
        "the token's claims are not a JSON object",
    ),
    "proof header": (
        "the DPoP proof's header is not canonical base64url",
        "the DPoP proof's header names a member twice",
        "the DPoP proof's header is not JSON",
        "the DPoP proof's header is not a JSON object",
    ),
    "proof claims": (
        "the DPoP proof's claims are not canonical base64url",
        "the DPoP proof's claims name a member twice",
        "the DPoP proof's claims are not JSON",
        "the DPoP proof's claims are not a JSON object",
    ),
}


class DuplicateName(ValueError):
    """A JSON object names a member twice."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 §4 and RFC 7519 §4: a parser must reject duplicate names or keep the
    # last one. Rejecting means no two readers of one token can see different claims.
    members = dict(pairs)
    if len(members) != len(pairs):
        raise DuplicateName("a JSON object names a member twice")
    return members


# NaN and Infinity are not JSON (RFC 8259 §6); Python would accept them. One decoder
# for the process: json.loads with an option builds a new one on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_members)
# The decoder's scanner, called directly: ``decode`` wraps it in two whitespace
# matches and two Python calls, which cost as much as scanning a small object.
# (An attribute JSONDecoder.__init__ sets, which typeshed does not declare.)
_scan_once: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def loads(data: bytes) -> Any:
    """Strict JSON: UTF-8 (RFC 8259 §8.1, RFC 7515 §5.2), no NaN, no repeated names.

    Raises :class:`DuplicateName`, another :class:`ValueError`, or
    :class:`RecursionError` for a deeply nested value.
    """
    text = data.decode("utf-8")
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        end = -1  # leading whitespace, or not JSON: the full decoder says which
    if end != len(text):
        # Whitespace around the value is allowed (RFC 8259 §2); anything else after
        # it is not. Rare enough to read it all again.
        return _DECODER.decode(text)
    return value


def split(token: str) -> tuple[str, str, str, bytes]:
    """The header, payload and signature segments, and the signing input.

    ``token`` is ASCII. Anything but three base64url segments is :class:`MalformedToken`.
    """
    jws = _COMPACT_JWS.fullmatch(token)
    if jws is None:
        if token.count(".") != 2:
            raise MalformedToken("the token is not a JWT (expected three dot-separated parts)")
        # RFC 7515 §2: base64url without padding. A lenient decoder would accept
        # many spellings of one signed token (+ and /, stray characters).
        raise MalformedToken("the token is not base64url-encoded")
    header, payload, signature = jws.groups()
    return header, payload, signature, token[: jws.end(2)].encode("ascii")


def decode_segment(segment: str) -> bytes:
    """The octets of a segment that :func:`split` returned; refuses any spelling of
    them but the one canonical base64url text."""
    rest = len(segment) & 3
    final = _FINAL_CHARACTERS[rest]
    if final is not None and segment[-1] not in final:
        # Either no whole number of octets, or spare bits set: 16 (or 4) texts
        # would otherwise decode to the same segment.
        raise MalformedToken("the token is not canonical base64url-encoded")
    # Every character is in the alphabet (split checked it) and the padding is ours.
    return _a2b_base64(segment.encode("ascii").translate(_URLSAFE_TO_STANDARD) + _PADDING[rest])


def b64url_decode(text: str) -> bytes:
    """Any text as strict base64url: the URL-safe alphabet, no padding, canonical spare
    bits (RFC 7515 §2, RFC 4648 §5 and §3.5), so a value has exactly one spelling.

    Raises :class:`MalformedToken` on anything else (its callers say what was malformed).
    """
    if not isinstance(text, str) or _B64URL.fullmatch(text) is None:
        raise MalformedToken("the token is not base64url-encoded")
    return decode_segment(text)


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return (
        binascii.b2a_base64(data, newline=False)
        .rstrip(b"=")
        .translate(_STANDARD_TO_URLSAFE)
        .decode("ascii")
    )


def decode_json_object(segment: str, part: str) -> tuple[bytes, dict[str, Any]]:
    """The octets of a segment and the JSON object they hold; ``part`` (a key of
    ``_REFUSALS``: ``header``, ``claims``, ``proof header``, ``proof claims``) names
    the segment in the :class:`MalformedToken` raised for anything else."""
    not_canonical, twice, not_json, not_object = _REFUSALS[part]
    try:
        data = decode_segment(segment)
        value = loads(data)
    except MalformedToken:
        raise MalformedToken(not_canonical) from None
    except DuplicateName:
        raise MalformedToken(twice) from None
    except (ValueError, RecursionError):
        raise MalformedToken(not_json) from None
    if not isinstance(value, dict):
        raise MalformedToken(not_object)
    return data, value


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a compact JWS, read without verifying anything: only to decide
    who judges it. Raises :class:`MalformedToken`."""
    return decode_json_object(split(token)[1], "claims")[1]


def check_rs256(key: RSAPublicKey, signature: bytes, signing_input: bytes) -> None:
    """RS256 (RFC 7518 §3.3): RSASSA-PKCS1-v1_5 with SHA-256, verified as RFC 8017
    §8.2.2 does it: OpenSSL opens the signature with the public key and checks its
    padding and its DigestInfo for SHA-256, and the digest it carries must equal the
    SHA-256 of the signing input.

    This is ``key.verify()`` in two steps, for speed: ``verify`` lets go of the GIL
    for the 20 µs of arithmetic and must then win it back, which in a threaded
    server costs more in thread switches than the check itself. Recovery keeps it
    (measured with cryptography 50 on OpenSSL 4.0; docs/validation.md).
    """
    try:
        digest = key.recover_data_from_signature(signature, _PKCS1, _SHA256)
    except _CryptoInvalidSignature:
        raise InvalidSignature("the token's signature does not verify") from None
    if not hmac.compare_digest(digest, hashlib.sha256(signing_input).digest()):
        raise InvalidSignature("the token's signature does not verify")
