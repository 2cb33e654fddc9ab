"""Public JSON Web Keys carried by a signed message (RFC 7517, RFC 7518 §6, RFC 8037).

A DPoP proof names its own key in its ``jwk`` header, so the key is attacker
input until its signature verifies. This module turns such a JWK into a key
only after it passed every cheap check:

- the key type and curve match the algorithm (RFC 7518 §6.1, RFC 8037 §2);
- no private or symmetric member is present (``d``, ``p``, ``q``, ``dp``, ``dq``,
  ``qi``, ``oth``, ``k``);
- the members are strict base64url (:func:`._jws.b64url_decode`) with
  minimal encodings: ``n`` and ``e`` without leading zero octets
  (RFC 7518 §6.3.1), EC coordinates and ``x`` of OKP keys exactly the size of the
  curve's field (RFC 7518 §6.2.1.2, RFC 8037 §2);
- RSA moduli of 2048 to 8192 bits (RFC 8725 §3.5) with a public exponent below
  2**32, so one verification costs a bounded amount of work;
- ``alg``, ``use`` and ``key_ops``, when present, allow this algorithm.

Keys are identified by their RFC 7638 thumbprint input (the required members in
lexicographic order, no whitespace), which is also the key of the parsed-key
cache: two JWKs that differ only in optional members are one key.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from ._jws import b64url_decode, b64url_encode
from .exceptions import MalformedToken

#: RFC 8725 §3.5: shorter RSA keys are not trusted; longer ones only cost time.
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
#: Members that only a private or symmetric key has (RFC 7518 §6.3.2, §6.2.2, §6.4).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# Members read here that must be strings (the key's own, n/e/x/y, are checked as base64url).
_STRING_MEMBERS = ("kty", "crv", "alg", "use")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class UnacceptableKey(ValueError):
    """The JWK is not an acceptable public key for the algorithm (the message says why)."""


class BadSignature(Exception):
    """The signature does not verify under the key."""


# -- algorithms --------------------------------------------------------------------

Verify = Callable[[Any, bytes, bytes], None]


@dataclass(frozen=True)
class Algorithm:
    """A JWS algorithm (RFC 7518 §3, RFC 8037 §3.1) and the key it needs."""

    name: str
    kty: str
    #: the ``crv`` an EC or OKP key must name; ``None`` for RSA
    crv: str | None
    verify: Verify


def _rsa(pad: padding.AsymmetricPadding, hash_: hashes.HashAlgorithm) -> Verify:
    def verify(key: rsa.RSAPublicKey, signature: bytes, data: bytes) -> None:
        # RFC 8017 §8.2.2 step 1 and §8.1.2 step 1: the signature is exactly as long
        # as the modulus.
        if len(signature) != (key.key_size + 7) // 8:
            raise BadSignature
        try:
            key.verify(signature, data, pad, hash_)
        except _CryptoInvalidSignature:
            raise BadSignature from None

    return verify


def _rsa_pkcs1(hash_: hashes.HashAlgorithm) -> Verify:
    return _rsa(padding.PKCS1v15(), hash_)


def _rsa_pss(hash_: hashes.HashAlgorithm) -> Verify:
    # RFC 7518 §3.5: MGF1 with the same hash, and a salt as long as the hash output.
    return _rsa(padding.PSS(mgf=padding.MGF1(hash_), salt_length=hash_.digest_size), hash_)


def _ecdsa(hash_: hashes.HashAlgorithm, size: int) -> Verify:
    ecdsa = ec.ECDSA(hash_)

    def verify(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> None:
        # RFC 7518 §3.4: R and S as fixed-size big-endian octets, concatenated;
        # cryptography wants the DER SEQUENCE of two INTEGERs.
        if len(signature) != 2 * size:
            raise BadSignature
        try:
            key.verify(der_signature(signature[:size], signature[size:]), data, ecdsa)
        except _CryptoInvalidSignature:
            raise BadSignature from None

    return verify


def der_signature(r: bytes, s: bytes) -> bytes:
    """The DER ``Ecdsa-Sig-Value`` (RFC 3279 §2.2.3) of the big-endian ``r`` and ``s``.

    What ``encode_dss_signature(int(r), int(s))`` returns, built from the octets at
    half its cost: a proof check does this once per request.
    """
    # A DER INTEGER is minimal two's complement: no leading zero octets, but one
    # zero octet in front of a high bit, which would otherwise make it negative.
    r = r.lstrip(b"\0")
    s = s.lstrip(b"\0")
    if not r or r[0] & 0x80:
        r = b"\0" + r
    if not s or s[0] & 0x80:
        s = b"\0" + s
    body = b"\x02%c%b\x02%c%b" % (len(r), r, len(s), s)
    if len(body) < 0x80:
        return b"\x30%c%b" % (len(body), body)
    # P-521: up to 138 octets, one length octet after 0x81 (X.690 §8.1.3.5).
    return b"\x30\x81%c%b" % (len(body), body)


def _eddsa(key: ed25519.Ed25519PublicKey, signature: bytes, data: bytes) -> None:
    if len(signature) != 64:
        raise BadSignature
    try:
        key.verify(signature, data)
    except _CryptoInvalidSignature:
        raise BadSignature from None


_SHA256, _SHA384, _SHA512 = hashes.SHA256(), hashes.SHA384(), hashes.SHA512()
_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}

#: Every asymmetric algorithm this module can verify. ``none`` and the HMAC
#: algorithms are absent on purpose: a proof of possession needs a public key.
ALGORITHMS: Mapping[str, Algorithm] = {
    alg.name: alg
    for alg in (
        Algorithm("RS256", "RSA", None, _rsa_pkcs1(_SHA256)),
        Algorithm("RS384", "RSA", None, _rsa_pkcs1(_SHA384)),
        Algorithm("RS512", "RSA", None, _rsa_pkcs1(_SHA512)),
        Algorithm("PS256", "RSA", None, _rsa_pss(_SHA256)),
        Algorithm("PS384", "RSA", None, _rsa_pss(_SHA384)),
        Algorithm("PS512", "RSA", None, _rsa_pss(_SHA512)),
        Algorithm("ES256", "EC", "P-256", _ecdsa(_SHA256, 32)),
        Algorithm("ES384", "EC", "P-384", _ecdsa(_SHA384, 48)),
        Algorithm("ES512", "EC", "P-521", _ecdsa(_SHA512, 66)),
        # RFC 8037 §3.1; Ed25519 only (Ed448 is not offered by the clients we serve).
        Algorithm("EdDSA", "OKP", "Ed25519", _eddsa),
    )
}


# -- JWK -> key ---------------------------------------------------------------------


def thumbprint_input(jwk: Any, alg: Algorithm) -> str:
    """Check that ``jwk`` is a public key fit for ``alg``; return its RFC 7638 §3
    thumbprint input (the required members, sorted, as compact JSON).

    Raises :class:`UnacceptableKey` naming the first problem. Nothing expensive happens
    here: the key itself is built by :func:`load_key`.
    """
    if not isinstance(jwk, dict):
        raise UnacceptableKey("the jwk header is not a JSON object")
    if not PRIVATE_MEMBERS.isdisjoint(jwk):
        raise UnacceptableKey("the jwk header holds private or symmetric key material")
    # RFC 7517 §4 and RFC 7518 §6: these members are strings, key_ops an array of
    # strings; a key whose members have other types is refused, never compared.
    for name in _STRING_MEMBERS:
        if name in jwk and type(jwk[name]) is not str:
            raise UnacceptableKey(f"the jwk header's '{name}' member is not a string")
    ops = jwk.get("key_ops")
    if ops is not None and (type(ops) is not list or not all(type(op) is str for op in ops)):
        raise UnacceptableKey("the jwk header's key_ops is not an array of strings")
    if jwk.get("kty") != alg.kty:
        raise UnacceptableKey(f"the jwk header is not an {alg.kty} key, as {alg.name} needs")
    if "alg" in jwk and jwk["alg"] != alg.name:
        raise UnacceptableKey("the jwk header's alg member names another algorithm")
    if "use" in jwk and jwk["use"] != "sig":
        raise UnacceptableKey("the jwk header's key is not meant for signatures (use)")
    if ops is not None and "verify" not in ops:
        raise UnacceptableKey("the jwk header's key_ops does not allow verify")
    if alg.kty == "RSA":
        n = _member(jwk, "n")
        e = _member(jwk, "e")
        if not n or n[0] == 0 or not e or e[0] == 0:
            raise UnacceptableKey(
                "the jwk header's n or e has leading zero octets (RFC 7518 §6.3.1)"
            )
        bits = int.from_bytes(n, "big").bit_length()
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise UnacceptableKey(
                f"the jwk header's RSA key has {bits} bits; "
                f"{MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
            )
        if len(e) > 4:
            raise UnacceptableKey("the jwk header's RSA public exponent is too large")
        members = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}
    else:
        if jwk.get("crv") != alg.crv:
            raise UnacceptableKey(f"the jwk header's curve is not {alg.crv}, as {alg.name} needs")
        # An EC algorithm always names its curve (crv is None only for RSA).
        size = _CURVES[cast(str, alg.crv)][1] if alg.kty == "EC" else 32
        if len(_member(jwk, "x")) != size:
            raise UnacceptableKey("the jwk header's x is not the size of the curve's coordinates")
        members = {"crv": alg.crv, "kty": alg.kty, "x": jwk["x"]}
        if alg.kty == "EC":
            if len(_member(jwk, "y")) != size:
                raise UnacceptableKey(
                    "the jwk header's y is not the size of the curve's coordinates"
                )
            members["y"] = jwk["y"]
    # The values are base64url text (checked above), so no escaping can differ.
    return json.dumps(members, separators=(",", ":"), sort_keys=True)


def _member(jwk: dict[str, Any], name: str) -> bytes:
    try:
        return b64url_decode(jwk[name])
    except (KeyError, MalformedToken):
        raise UnacceptableKey(
            f"the jwk header's '{name}' member is missing or not base64url"
        ) from None


def load_key(canonical: str) -> Any:
    """The public key whose RFC 7638 thumbprint input is ``canonical`` (as returned by
    :func:`thumbprint_input`). Raises :class:`UnacceptableKey` if it is not a valid key,
    for example an EC point that is not on its curve."""
    members = json.loads(canonical)
    kty = members["kty"]
    try:
        if kty == "RSA":
            return rsa.RSAPublicNumbers(
                int.from_bytes(b64url_decode(members["e"]), "big"),
                int.from_bytes(b64url_decode(members["n"]), "big"),
            ).public_key()
        if kty == "EC":
            curve = _CURVES[members["crv"]][0]
            return ec.EllipticCurvePublicNumbers(
                int.from_bytes(b64url_decode(members["x"]), "big"),
                int.from_bytes(b64url_decode(members["y"]), "big"),
                curve,
            ).public_key()
        return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(members["x"]))
    except ValueError:
        raise UnacceptableKey("the jwk header is not a valid public key") from None


def thumbprint(canonical: str) -> str:
    """The RFC 7638 SHA-256 thumbprint, base64url-encoded (RFC 9449 §6.1 ``jkt``)."""
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(key: Any) -> dict[str, str]:
    """The public JWK of a cryptography key (private or public): RSA, EC P-256/384/521
    or Ed25519. Used to sign proofs and to compute expected thumbprints."""
    if hasattr(key, "public_key"):
        key = key.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        for crv, (curve, size) in _CURVES.items():
            if curve.name == key.curve.name:
                point = key.public_numbers()
                return {
                    "kty": "EC",
                    "crv": crv,
                    "x": _uint(point.x, size),
                    "y": _uint(point.y, size),
                }
        raise ValueError(f"the curve {key.curve.name} is not supported")
    if isinstance(key, ed25519.Ed25519PublicKey):
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url_encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)),
        }
    raise ValueError(f"{type(key).__name__} keys are not supported")


def _uint(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(length, "big"))


class LRU(Generic[K, V]):
    """A small thread-safe least-recently-used map with a fixed number of entries."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        # No lock on the hot path: each OrderedDict call is atomic under the GIL, and
        # an entry evicted between the two calls only misses its move to the end.
        value = self._entries.get(key)
        if value is not None:
            # try costs nothing when nothing is raised; suppress() would build an
            # object on every DPoP request.
            try:  # noqa: SIM105
                self._entries.move_to_end(key)
            except KeyError:
                pass
        return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
