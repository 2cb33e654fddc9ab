"""DPoP proofs (RFC 9449): check the proof a client sends with a request, or make one.

This module knows nothing of Pyramid; it is used on its own like this::

    dpop = DPoPVerifier()                       # or DPoPVerifier(nonces=DPoPNonces(secret))
    proof = dpop.verify(request_dpop_headers, "GET", "https://api.example.com/orders",
                        access_token=token, jkt=claims["cnf"]["jkt"])
    proof.jkt, proof.claims, proof.next_nonce   # or it raised InvalidDPoPProof / UseDPoPNonce

What :meth:`DPoPVerifier.verify` checks, cheapest first (RFC 9449 §4.3, §7.1):

1. exactly one ``DPoP`` header, at most :data:`MAX_PROOF_LENGTH` characters, holding
   one compact JWS of strict base64url (RFC 7515 §7.1, RFC 4648 §5 and §3.5);
2. the JOSE header: a JSON object without repeated names; ``typ`` is ``dpop+jwt``
   (compared as a media type: case-insensitive, ``application/`` optional, RFC 7515
   §4.1.9); ``alg`` is one of the verifier's asymmetric algorithms; no ``crit``;
   ``jwk`` is a public key of the type ``alg`` needs (:mod:`._jwk`). Accepted
   headers are remembered by their exact text, parsed keys by their RFC 7638
   thumbprint input, both in bounded caches;
3. the key's RFC 7638 SHA-256 thumbprint equals the token's ``cnf.jkt`` (when given);
4. the claims: a JSON object without repeated names; ``jti`` a string of at most
   :data:`MAX_JTI_LENGTH` characters; ``htm`` the request method; ``htu`` the request
   URL, query and fragment ignored, both normalized (:func:`~.urls.normalize_url`); ``iat``
   no older than ``max_age`` and no more than ``leeway`` in the future; ``ath`` the
   base64url SHA-256 of the access token (when one is given);
5. the signature, with the proof's own key;
6. the nonce, when the verifier requires them: an absent or expired one raises
   :class:`UseDPoPNonce` carrying the nonce to use (RFC 9449 §9);
7. last, so that only otherwise valid proofs take room in it: ``jti`` has not been
   seen with this key while the proof's ``iat`` is acceptable, to any process whose
   clock is within ``leeway`` of this one's (RFC 9449 §11.1).

Failures raise :class:`InvalidDPoPProof` (error code ``invalid_dpop_proof``) with one
of these ``reason`` values: ``dpop_missing``, ``dpop_multiple``, ``dpop_malformed``,
``dpop_type``, ``dpop_algorithm``, ``dpop_key``, ``dpop_key_mismatch``,
``dpop_claims``, ``dpop_method``, ``dpop_url``, ``dpop_stale``, ``dpop_future``,
``dpop_token_hash``, ``dpop_bad_signature``, ``dpop_replayed``; or
:class:`UseDPoPNonce` (``use_dpop_nonce``), or :class:`~.replay.ReplayStoreFull`.
No description ever contains the proof, a claim of it, or the access token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ._jwk import (
    ALGORITHMS as SUPPORTED_ALGORITHMS,
)
from ._jwk import (
    LRU,
    Algorithm,
    BadSignature,
    UnacceptableKey,
    load_key,
    public_jwk,
    thumbprint,
    thumbprint_input,
)
from ._jws import b64url_encode, decode_json_object, decode_segment
from .exceptions import InvalidToken, MalformedToken
from .nonces import DPoPNonces
from .replay import InMemoryReplayStore, ReplayStore, ReplayStoreFull
from .urls import normalize_url

__all__ = [
    "DEFAULT_ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "DPoPNonces",
    "DPoPProof",
    "DPoPVerifier",
    "InMemoryReplayStore",
    "InvalidDPoPProof",
    "ReplayStore",
    "ReplayStoreFull",
    "UseDPoPNonce",
    "access_token_hash",
    "make_proof",
]

log = logging.getLogger(__name__)

#: What Okta accepts in DPoP proofs, and EdDSA (Ed25519).
DEFAULT_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
#: A proof with an 8192-bit RSA key is under 3 KiB; anything longer is refused unread.
MAX_PROOF_LENGTH = 8 * 1024
#: Clients send UUIDs or 16 to 32 random bytes in base64url.
MAX_JTI_LENGTH = 256
DEFAULT_MAX_AGE = 300
DEFAULT_LEEWAY = 60
DEFAULT_KEY_CACHE_SIZE = 1024

# RFC 7515 §7.1: three base64url parts; the alphabet is checked here, once.
_COMPACT_JWS = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
_DPOP_TYPES = frozenset({"dpop+jwt", "application/dpop+jwt"})


class InvalidDPoPProof(InvalidToken):
    """The DPoP proof was judged and refused (RFC 9449 §7.1, ``invalid_dpop_proof``).

    ``reason`` says which check refused it (listed in the module's documentation).
    """

    reason = "invalid_dpop_proof"
    #: The error code of the ``WWW-Authenticate: DPoP`` challenge (RFC 9449 §12.2).
    error = "invalid_dpop_proof"

    def __init__(self, description: str, reason: str | None = None) -> None:
        super().__init__(description)
        if reason is not None:
            self.reason = reason


class UseDPoPNonce(InvalidToken):
    """The proof carries no nonce, or one that is no longer accepted (RFC 9449 §9).

    ``nonce`` is the one to send in the ``DPoP-Nonce`` response header.
    """

    reason = "use_dpop_nonce"
    error = "use_dpop_nonce"

    def __init__(self, description: str, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce


class DPoPProof:
    """A proof that passed every check."""

    __slots__ = ("alg", "claims", "jkt", "next_nonce")

    def __init__(
        self, jkt: str, alg: str, claims: dict[str, Any], next_nonce: str | None = None
    ) -> None:
        #: The RFC 7638 SHA-256 thumbprint of the proof's key, base64url: what a token
        #: bound to this key carries as ``cnf.jkt`` (RFC 9449 §6.1).
        self.jkt = jkt
        self.alg = alg
        #: The proof's claims (a new dictionary for every proof).
        self.claims = claims
        #: A nonce to send proactively in ``DPoP-Nonce``: set when nonces are required
        #: and this proof's nonce expires at the end of the current step.
        self.next_nonce = next_nonce

    def __repr__(self) -> str:
        # The claims stay out of it: the ath and nonce are nobody's business in a log.
        return f"DPoPProof(jkt={self.jkt!r}, alg={self.alg!r})"

    @property
    def jti(self) -> str:
        jti: str = self.claims["jti"]
        return jti

    @property
    def iat(self) -> float:
        iat: float = self.claims["iat"]
        return iat


class _Header(NamedTuple):
    alg: Algorithm
    key: Any
    jkt: str
    #: SHA-256 that has read ``jkt + "\n"``: a proof's replay key continues from a copy.
    replay_prefix: Any


class DPoPVerifier:
    """Checks DPoP proofs. One instance serves every request (it is thread-safe) and
    holds the caches, the replay store and the nonce policy.

    - ``algorithms``: accepted ``alg`` values, from :data:`DEFAULT_ALGORITHMS`;
    - ``max_age``: seconds a proof is accepted after its ``iat``;
    - ``leeway``: seconds a proof's ``iat`` may be ahead of this server's clock;
    - ``replay_store``: where used proofs are remembered; by default a new
      :class:`InMemoryReplayStore` (replay detection cannot be turned off);
    - ``nonces``: when given, every proof must carry one of its nonces.
    """

    def __init__(
        self,
        *,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        max_age: float = DEFAULT_MAX_AGE,
        leeway: float = DEFAULT_LEEWAY,
        replay_store: ReplayStore | None = None,
        nonces: DPoPNonces | None = None,
        clock: Callable[[], float] = time.time,
        key_cache_size: int = DEFAULT_KEY_CACHE_SIZE,
    ) -> None:
        names = tuple(dict.fromkeys(algorithms))
        unknown = [name for name in names if name not in SUPPORTED_ALGORITHMS]
        if unknown or not names:
            raise ValueError(
                f"algorithms: {', '.join(map(repr, unknown)) or 'none given'}; a DPoP proof "
                f"needs an asymmetric algorithm among {', '.join(SUPPORTED_ALGORITHMS)}"
            )
        for name, value in (("max_age", max_age), ("leeway", leeway)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value >= 0)
            ):
                raise ValueError(f"{name} must be a number of seconds >= 0")
        #: The accepted algorithms, in the order given (for ``algs`` in a challenge).
        self.algorithms = names
        self._algorithms = {name: SUPPORTED_ALGORITHMS[name] for name in names}
        self.max_age = max_age
        self.leeway = leeway
        # The store forgets a proof by this clock's time, so it must share the clock.
        self.replay_store: ReplayStore = (
            replay_store if replay_store is not None else InMemoryReplayStore(clock=clock)
        )
        self.nonces = nonces
        self.clock = clock
        # Accepted JOSE headers by their base64url text: a client sends the same one
        # with every proof. Keys by their RFC 7638 thumbprint input.
        self._headers: LRU[str, _Header] = LRU(key_cache_size)
        self._keys: LRU[str, tuple[Any, str]] = LRU(key_cache_size)
        # The last access token digest seen and its ath (base64url).
        self._last_ath: tuple[bytes, str] = (b"", "")

    def verify(
        self,
        headers: Sequence[str] | str,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        jkt: str | None = None,
        access_token_digest: bytes | None = None,
    ) -> DPoPProof:
        """Check the proof in ``headers`` (every ``DPoP`` header value of the request)
        for a request of ``method`` to ``url`` (as the client saw it).

        With ``access_token``, the proof must carry its hash (``ath``); with ``jkt``
        (the token's ``cnf.jkt``), its key must have that thumbprint.
        ``access_token_digest``, the SHA-256 of the access token's text (what
        :func:`okta_pyramid.tokens.cache.token_digest` returns), may stand in for
        ``access_token`` when the caller has it already: it spares hashing the token
        twice.
        """
        if isinstance(headers, str):
            headers = (headers,)
        if not headers:
            raise InvalidDPoPProof("the request has no DPoP header", "dpop_missing")
        if len(headers) != 1:
            raise InvalidDPoPProof("the request has more than one DPoP header", "dpop_multiple")
        proof = headers[0]
        if not isinstance(proof, str) or len(proof) > MAX_PROOF_LENGTH + 64:
            raise InvalidDPoPProof(
                f"the DPoP proof is longer than {MAX_PROOF_LENGTH} characters", "dpop_malformed"
            )
        proof = proof.strip(" \t")
        if len(proof) > MAX_PROOF_LENGTH:
            raise InvalidDPoPProof(
                f"the DPoP proof is longer than {MAX_PROOF_LENGTH} characters", "dpop_malformed"
            )
        jws = _COMPACT_JWS.fullmatch(proof)
        if jws is None:
            # Also two headers that a server joined with a comma (RFC 9110 §5.3).
            raise InvalidDPoPProof(
                "the DPoP proof is not one compact JWS in base64url", "dpop_malformed"
            )
        header_b64, payload_b64, signature_b64 = jws.groups()
        header = self._headers.get(header_b64)
        if header is None:
            header = self._header(header_b64)
            self._headers.put(header_b64, header)
        alg, key, proof_jkt, replay_prefix = header
        if jkt is not None:
            self._validate_jkt(proof_jkt, jkt)

        claims = _json_object(payload_b64, "proof claims")
        now = self.clock()
        get = claims.get
        jti = self._validate_jti(get("jti"))
        self._validate_htm(get("htm"), method)
        self._validate_htu(get("htu"), url)
        iat = self._validate_iat(get("iat"), now)
        if access_token_digest is None and access_token is not None:
            access_token_digest = hashlib.sha256(access_token.encode("utf-8")).digest()
        if access_token_digest is not None:
            self._validate_ath(get("ath"), access_token_digest)
        nonce = get("nonce")
        if nonce is not None and not isinstance(nonce, str):
            raise InvalidDPoPProof("the DPoP proof's nonce is not a string", "dpop_claims")

        try:
            alg.verify(key, decode_segment(signature_b64), proof[: jws.end(2)].encode("ascii"))
        except MalformedToken:
            raise InvalidDPoPProof(
                "the DPoP proof's signature is not canonical base64url", "dpop_malformed"
            ) from None
        except BadSignature:
            raise InvalidDPoPProof(
                "the DPoP proof's signature does not verify", "dpop_bad_signature"
            ) from None

        next_nonce = None
        if self.nonces is not None:
            next_nonce = self._validate_nonce(nonce)

        # Last: an invalid proof must never take room in the store. The key is
        # SHA-256(jkt "\n" jti), cut to 16 octets; the jkt part was hashed once per key.
        replay_hash = replay_prefix.copy()
        replay_hash.update(jti.encode("utf-8"))
        # Remembered past this clock's window by the leeway: a process sharing the
        # store whose clock is up to ``leeway`` behind accepts the iat that much longer.
        expires_at = iat + self.max_age + self.leeway
        if not self.replay_store.add_if_absent(replay_hash.digest()[:16], expires_at, proof_jkt):
            raise InvalidDPoPProof("the DPoP proof was already used (jti)", "dpop_replayed")
        return DPoPProof(proof_jkt, alg.name, claims, next_nonce)

    # -- the header ----------------------------------------------------------------

    def _header(self, header_b64: str) -> _Header:
        header = _json_object(header_b64, "proof header")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _DPOP_TYPES:
            raise InvalidDPoPProof("the DPoP proof's type (typ) is not dpop+jwt", "dpop_type")
        # Only a string names an algorithm; any other JSON value (an array is not even
        # hashable) is refused here rather than looked up.
        alg_name = header.get("alg")
        alg = self._algorithms.get(alg_name) if type(alg_name) is str else None
        if alg is None:
            raise InvalidDPoPProof(
                "the DPoP proof's algorithm is not accepted; accepted: "
                + " ".join(self.algorithms),
                "dpop_algorithm",
            )
        if "crit" in header:
            # RFC 7515 §4.1.11: no extension is understood, so none may be critical.
            raise InvalidDPoPProof(
                "the DPoP proof uses a critical header extension (crit)", "dpop_malformed"
            )
        try:
            canonical = thumbprint_input(header.get("jwk"), alg)
            cached = self._keys.get(canonical)
            if cached is None:
                cached = (load_key(canonical), thumbprint(canonical))
                self._keys.put(canonical, cached)
        except UnacceptableKey as exc:
            raise InvalidDPoPProof(str(exc), "dpop_key") from None
        key, jkt = cached
        return _Header(alg, key, jkt, hashlib.sha256(f"{jkt}\n".encode("ascii")))

    # -- the claims, one check each --------------------------------------------------

    def _validate_jkt(self, proof_jkt: str, token_jkt: Any) -> None:
        if not isinstance(token_jkt, str) or not token_jkt.isascii():
            # The token's binding is unusable: the token's fault, not the proof's.
            raise InvalidToken("the access token's cnf.jkt is not a thumbprint")
        if not hmac.compare_digest(proof_jkt, token_jkt):
            raise InvalidDPoPProof(
                "the DPoP proof is signed with another key than the one "
                "the access token is bound to (cnf.jkt)",
                "dpop_key_mismatch",
            )

    def _validate_jti(self, jti: Any) -> str:
        if not isinstance(jti, str) or not jti:
            raise InvalidDPoPProof("the DPoP proof has no jti", "dpop_claims")
        if len(jti) > MAX_JTI_LENGTH:
            raise InvalidDPoPProof(
                f"the DPoP proof's jti is longer than {MAX_JTI_LENGTH} characters", "dpop_claims"
            )
        if not jti.isascii():
            try:
                jti.encode("utf-8")
            except UnicodeEncodeError:
                # A lone surrogate (JSON allows "\ud800", RFC 8259 §8.2) is no text
                # to remember the proof by.
                raise InvalidDPoPProof(
                    "the DPoP proof's jti is not Unicode text", "dpop_claims"
                ) from None
        return jti

    def _validate_htm(self, htm: Any, method: str) -> None:
        # RFC 9110 §9.1: methods are case-sensitive. Only a string equals the method.
        if htm != method:
            if type(htm) is not str:
                raise InvalidDPoPProof("the DPoP proof has no htm", "dpop_claims")
            raise InvalidDPoPProof("the DPoP proof is for another HTTP method (htm)", "dpop_method")

    def _validate_htu(self, htu: Any, url: str) -> None:
        if not isinstance(htu, str):
            raise InvalidDPoPProof("the DPoP proof has no htu", "dpop_claims")
        # Most clients send exactly the URL they called: equal text needs no parsing.
        if htu == url or _without_query(htu) == _without_query(url):
            return
        normalized = _normalized(_without_query(htu), False)
        if normalized is None or normalized != _normalized(_without_query(url), True):
            raise InvalidDPoPProof("the DPoP proof is for another URL (htu)", "dpop_url")

    def _validate_iat(self, iat: Any, now: float) -> float:
        # JSON numbers are int or float; a bool is neither a NumericDate nor an int here.
        if type(iat) is not int and (type(iat) is not float or not math.isfinite(iat)):
            raise InvalidDPoPProof("the DPoP proof has no iat NumericDate", "dpop_claims")
        if iat > now + self.leeway:
            raise InvalidDPoPProof("the DPoP proof was issued in the future (iat)", "dpop_future")
        if iat < now - self.max_age:
            raise InvalidDPoPProof("the DPoP proof is too old (iat)", "dpop_stale")
        return iat

    def _validate_ath(self, ath: Any, token_digest: bytes) -> None:
        if not isinstance(ath, str):
            raise InvalidDPoPProof("the DPoP proof has no ath for the access token", "dpop_claims")
        # A client sends one token with many proofs, and a cached token hands out the
        # same digest object each time: its ath is encoded once. Compared by identity,
        # so no timing says anything of another token's digest; the pair is replaced
        # whole, so threads never see one token's digest with another's ath.
        last_digest, expected = self._last_ath
        if last_digest is not token_digest:
            expected = b64url_encode(token_digest)
            self._last_ath = (token_digest, expected)
        if not (ath.isascii() and hmac.compare_digest(ath, expected)):
            raise InvalidDPoPProof(
                "the DPoP proof is for another access token (ath)", "dpop_token_hash"
            )

    def _validate_nonce(self, nonce: str | None) -> str | None:
        nonces = self.nonces
        assert nonces is not None  # noqa: S101  # called only when nonces are required
        if nonce is None or not nonces.check(nonce):
            raise UseDPoPNonce(
                "this API requires a DPoP nonce: sign a new proof with the "
                "nonce of the DPoP-Nonce header",
                nonces.issue(),
            )
        return None if nonces.is_current(nonce) else nonces.issue()


# -- JSON and base64url (strict, as for access tokens: ._jws) -------------------------


def _json_object(segment: str, part: str) -> dict[str, Any]:
    try:
        return decode_json_object(segment, part)[1]
    except MalformedToken as exc:
        raise InvalidDPoPProof(str(exc), "dpop_malformed") from None


def access_token_hash(access_token: str) -> str:
    """``ath``: the base64url SHA-256 of the access token's ASCII text (RFC 9449 §4.2)."""
    return b64url_encode(hashlib.sha256(access_token.encode("utf-8")).digest())


# -- htu: compared once normalized (RFC 3986 §6.2.2 and §6.2.3, .urls) --------------


def _without_query(url: str) -> str:
    return url.partition("#")[0].partition("?")[0]


@functools.lru_cache(maxsize=256)
def _normalized(url: str, lenient: bool) -> str | None:
    # A client whose htu differs from the request URL in spelling only (an explicit
    # default port, a host in capitals) sends the same text with every proof.
    # Callers drop the query first: it never needs remembering.
    try:
        return normalize_url(url, lenient=lenient)
    except ValueError:
        return None


# -- making proofs (clients, the development issuer, tests) --------------------------


def make_proof(
    private_key: Any,
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    nonce: str | None = None,
    iat: float | None = None,
    jti: str | None = None,
    alg: str | None = None,
) -> str:
    """A DPoP proof (RFC 9449 §4.2) for a request of ``method`` to ``url``, signed with
    ``private_key`` (cryptography RSA, EC P-256/384/521 or Ed25519).

    ``alg`` defaults to RS256, ES256/ES384/ES512 by curve, or EdDSA; ``jti`` to 16
    random bytes; ``iat`` to now. ``htu`` is ``url`` without query and fragment;
    ``ath`` is set when ``access_token`` is given.
    """
    if alg is None:
        alg = _default_alg(private_key)
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": public_jwk(private_key)}
    claims: dict[str, Any] = {
        "jti": jti if jti is not None else b64url_encode(secrets.token_bytes(16)),
        "htm": method,
        "htu": _without_query(url),
        "iat": int(time.time()) if iat is None else iat,
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    signing_input = ".".join(
        b64url_encode(json.dumps(part, separators=(",", ":")).encode("utf-8"))
        for part in (header, claims)
    )
    signature = _sign(private_key, alg, signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


def _default_alg(private_key: Any) -> str:
    if isinstance(private_key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}[private_key.curve.key_size]
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise ValueError(f"{type(private_key).__name__} keys cannot sign DPoP proofs")


def _sign(private_key: Any, alg: str, data: bytes) -> bytes:
    if alg not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"{alg!r} is not a DPoP algorithm")
    signature: bytes
    if alg == "EdDSA":
        signature = private_key.sign(data)
        return signature
    hash_ = _HASHES[alg[2:]]()
    if alg.startswith("RS"):
        signature = private_key.sign(data, padding.PKCS1v15(), hash_)
        return signature
    if alg.startswith("PS"):
        signature = private_key.sign(
            data, padding.PSS(mgf=padding.MGF1(hash_), salt_length=hash_.digest_size), hash_
        )
        return signature
    size = (private_key.curve.key_size + 7) // 8
    r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hash_)))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")
