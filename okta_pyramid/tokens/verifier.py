"""Validate OAuth 2.0 access tokens (JWTs) issued by Okta or any RFC 8414 issuer.

This module knows nothing of Pyramid and can be used on its own::

    verifier = AccessTokenVerifier("https://dev-123456.okta.com/oauth2/default",
                                   audience="api://default")
    claims = verifier.verify(token)   # or raises okta_pyramid.tokens.exceptions.VerificationError

What is checked, in order (RFC 7515, RFC 7519, RFC 8725, RFC 9068):

1. the token is a compact JWS of bounded size whose header is a JSON object;
2. ``alg`` is in the allowlist (RS256 only) before anything else is looked at;
3. ``crit`` and ``b64`` are refused (no extensions are understood, RFC 7515 §4.1.11),
   ``typ``, when present, must be ``at+jwt`` (RFC 9068 §4) or, a deliberate relaxation
   for issuers that send it on access tokens, ``JWT`` (RFC 8725 §3.11);
4. ``kid`` selects the key from the issuer's JWKS; ``jwk``, ``jku``, ``x5u`` and ``x5c``
   are ignored, so a token can never choose its own key or make us fetch anything;
5. the signature;
6. the claims: ``iss`` exactly, ``aud`` (string or list) contains an accepted audience,
   ``exp`` and ``iat`` present, ``exp``/``nbf``/``iat`` within the leeway, registered
   claims of the right JSON type (a NumericDate is a number), ``cid`` in the allowlist;
7. the required claims of ``required_claims``: present, and equal to (or, for an
   array claim, containing) the required value.

A token that passed all of this is remembered (:mod:`okta_pyramid.tokens.cache`), so
the same token seen again costs a lookup plus the recheck of ``exp``/``nbf``/``iat``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, cast

import requests

from . import _jws
from .cache import VerifiedTokenCache, token_digest
from .discovery import IssuerClient
from .exceptions import (
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaims,
    InvalidIssuer,
    MalformedToken,
    RequiredClaimNotMet,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
)
from .fetch import DEFAULT_HTTP_TIMEOUT
from .jwks import DEFAULT_JWKS_REFETCH_COOLDOWN, DEFAULT_MAX_WAITERS, KeySet

#: Okta's default authorization server gives its tokens this audience.
DEFAULT_AUDIENCE = "api://default"
#: Seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``.
DEFAULT_LEEWAY = 60
#: Verified tokens kept in memory (each costs about its payload, ~1 KiB at Okta).
DEFAULT_TOKEN_CACHE_SIZE = 4096
#: Okta signs access tokens with RS256 only; RFC 8725 §3.1: accept an explicit allowlist.
ALGORITHMS = ("RS256",)
#: Larger tokens are refused before any decoding. Okta tokens with large groups
#: claims stay well below this.
MAX_TOKEN_LENGTH = 16 * 1024
#: ``typ`` values accepted on an access token. RFC 9068 §4 asks for at+jwt only, but
#: Okta sends no typ and Keycloak and Azure AD send JWT: those are tolerated on purpose.
ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt", "jwt", "application/jwt"})
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat")
#: A ``typ`` claim (not the header's) naming another kind of token, lower case:
#: Keycloak's ID, refresh, offline and logout tokens carry the header ``typ`` of an
#: access token, ``JWT``, and say what they are here.
OTHER_TOKEN_TYPS = frozenset({"refresh", "refresh_token", "offline", "id", "id_token", "logout"})
#: ``token_use`` values of an access token: Amazon Cognito's ``access`` (its ID
#: tokens say ``id``), Ory Hydra's ``access_token`` in introspection answers.
ACCESS_TOKEN_USES = frozenset({"access", "access_token"})

#: Distinct accepted token headers remembered (an issuer uses one per signing key).
_MAX_HEADERS = 64


class VerifiedToken:
    """An access token that passed every check, and what is derived from its claims.

    While the token is cached, every request presenting it gets this same object:
    it never hands out its own claims dictionary (:meth:`claims` returns a fresh
    one), and what it derives from them is computed once and then shared.
    """

    __slots__ = (
        "_claims",
        "_principals",
        "bound",
        "digest",
        "issuer",
        "jkt",
        "not_after",
        "not_before",
        "payload",
    )

    def __init__(
        self,
        payload: bytes,
        claims: dict[str, Any],
        *,
        not_before: float,
        not_after: float,
        digest: bytes | None = None,
        issuer: str | None = None,
    ) -> None:
        #: The claims as the issuer signed them: a UTF-8 JSON object with no repeated
        #: names, ready to be sent as it is.
        self.payload = payload
        #: The token is acceptable while ``not_before <= now < not_after`` (leeway included).
        self.not_before = not_before
        self.not_after = not_after
        # Read once per token, not per request: a cached token answers from here.
        cnf = claims.get("cnf")
        #: True when the token is sender-constrained (it has a ``cnf`` claim, RFC 7800):
        #: it must never be accepted as a plain bearer token (RFC 9449 §7.2).
        self.bound = cnf is not None
        #: The thumbprint of the key the token is bound to (``cnf.jkt``, RFC 9449 §6.1),
        #: or ``None`` when it is not bound to a DPoP key. Not checked here: the DPoP
        #: verifier refuses one that is not a string.
        self.jkt: Any = cnf.get("jkt") if isinstance(cnf, dict) else None
        #: The SHA-256 of the token's text (its cache key, :func:`.cache.token_digest`),
        #: or ``None`` when the verifier keeps no cache. A DPoP proof's ``ath`` is this
        #: digest in base64url (RFC 9449 §4.2): handing it on spares hashing the token
        #: twice per request.
        self.digest = digest
        #: The issuer that vouched for the token (the verifier's, or the introspecting
        #: issuer's), or ``None`` when not known.
        self.issuer = issuer
        self._claims: dict[str, Any] | None = claims
        self._principals: tuple[Callable[..., Any], tuple[str, ...]] | None = None

    @property
    def size(self) -> int:
        """About the memory it holds once cached: the payload and the principals
        derived from it (the parsed claims are let go once those are known)."""
        return 2 * len(self.payload)

    def claims(self) -> dict[str, Any]:
        """The claims, as a new dictionary the caller may change."""
        claims: dict[str, Any] = _jws.loads(self.payload)
        return claims

    def principals(self, mapping: Callable[[Mapping[str, Any]], Iterable[str]]) -> tuple[str, ...]:
        """The principals ``mapping`` finds in the claims, computed once per token.

        The result is shared by every request that presents the token, so
        ``mapping`` must depend on the claims alone, as the security policy's
        claims-to-principals function does (``okta.principals_callback``). It reads
        the claims through a read-only mapping.
        """
        memo = self._principals
        if memo is None or memo[0] is not mapping:
            claims = self._claims
            if claims is None:
                claims = _jws.loads(self.payload)
            result = tuple(mapping(MappingProxyType(claims)))
            memo = self._principals = (mapping, result)
            # The parsed claims were kept for this moment; a cached token holds only
            # its payload and principals from now on.
            self._claims = None
        return memo[1]


class AccessTokenVerifier:
    """Verify access tokens against one issuer and a set of accepted audiences."""

    def __init__(
        self,
        issuer: str,
        audience: str | Iterable[str] = DEFAULT_AUDIENCE,
        *,
        client_ids: Iterable[str] = (),
        leeway: int = DEFAULT_LEEWAY,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        jwks_refetch_cooldown: float = DEFAULT_JWKS_REFETCH_COOLDOWN,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        required_claims: Iterable[tuple[str, str | None]] = (),
        token_cache_size: int = DEFAULT_TOKEN_CACHE_SIZE,
        key_waiters: int = DEFAULT_MAX_WAITERS,
    ) -> None:
        self.issuer = issuer
        self.audiences = frozenset([audience] if isinstance(audience, str) else audience)
        if not self.audiences:
            raise ValueError("at least one audience is required")
        self.client_ids = frozenset(client_ids)
        #: ``(name, value)`` pairs; a ``None`` value only requires the claim's presence.
        self.required_claims = tuple(required_claims)
        self.leeway = leeway
        self.clock = clock
        self.keys = KeySet(
            IssuerClient(issuer, http_timeout=http_timeout, session=session),
            refetch_cooldown=jwks_refetch_cooldown,
            max_waiters=key_waiters,
        )
        #: Tokens that passed every check; ``None`` when ``token_cache_size`` is 0.
        self.token_cache = VerifiedTokenCache(token_cache_size) if token_cache_size > 0 else None
        #: Accepted JOSE headers (their base64url text) and the key id each names.
        self._header_kids: dict[str, str] = {}

    def verify(self, token: str) -> dict[str, Any]:
        """Return the token's claims, or raise a :class:`VerificationError`."""
        return self.verify_token(token).claims()

    def verify_token(self, token: str) -> VerifiedToken:
        """Return the token as a :class:`VerifiedToken`, or raise a
        :class:`VerificationError`.

        While the token is in the verified-token cache, every call returns the same
        object, so what is derived from its claims (the caller's principals) is
        computed once per token rather than once per request.
        """
        # check_token_text, inlined: this is the path of every request.
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise MalformedToken(f"the token is longer than {MAX_TOKEN_LENGTH} characters")
        if not token.isascii():
            raise MalformedToken("the token contains characters that are not ASCII")
        cache = self.token_cache
        digest = None
        if cache is not None:
            digest = token_digest(token)
            cached: VerifiedToken | None = cache.get(digest, self.clock(), self.keys.generation)
            if cached is not None:
                return cached  # the cache rechecked the time window
        return self.verify_new(token, digest)

    def cached_token(self, digest: bytes) -> VerifiedToken | None:
        """The verified token whose digest (:func:`.cache.token_digest`) is ``digest``,
        if it is in the cache and still acceptable; ``None`` otherwise."""
        cache = self.token_cache
        if cache is None:
            return None
        cached: VerifiedToken | None = cache.get(digest, self.clock(), self.keys.generation)
        return cached

    def verify_new(self, token: str, digest: bytes | None) -> VerifiedToken:
        """Verify ``token`` in full, without asking the cache first (the caller did,
        with ``digest``, or keeps no cache); cache it once it passed."""
        cache = self.token_cache
        if cache is not None and digest is None:
            digest = token_digest(token)
        header_b64, payload_b64, signature_b64, signing_input = _jws.split(token)
        kid = self._kid(header_b64)
        # The generation is read before the key: a cache entry is served only while
        # the key set it was verified under is current.
        generation = self.keys.generation
        key = self.keys.get(kid)
        if self.keys.generation != generation:
            # The key set was (re)loaded during the lookup (the first request, or an
            # unknown kid): take the key again from the set now current.
            generation = self.keys.generation
            key = self.keys.get(kid)
        _jws.check_rs256(key, _jws.decode_segment(signature_b64), signing_input)
        payload, claims = _jws.decode_json_object(payload_b64, "claims")
        self._validate_claims(claims)
        # The window mirrors _validate_exp, _validate_iat and _validate_nbf: valid
        # while max(iat, nbf) - leeway <= now < exp + leeway.
        starts = max(claims["iat"], claims.get("nbf", claims["iat"]))
        verified = VerifiedToken(
            payload,
            claims,
            not_before=starts - self.leeway,
            not_after=claims["exp"] + self.leeway,
            digest=digest,
            issuer=self.issuer,
        )
        if cache is not None:
            # Only now, after every check passed.
            cache.put(
                cast(bytes, digest),  # computed above whenever there is a cache
                verified,
                size=verified.size,
                not_before=verified.not_before,
                not_after=verified.not_after,
                generation=generation,
                now=self.clock(),
            )
        return verified

    def _kid(self, header_b64: str) -> str:
        # An issuer signs every token with one of a few headers, so the verdict on a
        # header is remembered by its exact base64url text; a flood of distinct
        # headers only ever keeps the last _MAX_HEADERS.
        kid = self._header_kids.get(header_b64)
        if kid is None:
            kid = self._header(header_b64)["kid"]
            if len(self._header_kids) >= _MAX_HEADERS:
                self._header_kids.clear()
            self._header_kids[header_b64] = kid
        return kid

    def _header(self, header_b64: str) -> dict[str, Any]:
        header = _jws.decode_json_object(header_b64, "header")[1]
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise UnsupportedAlgorithm(
                f"the token's algorithm {str(alg)[:20]!r} is not accepted; expected RS256"
            )
        if "crit" in header or "b64" in header:
            raise UnsupportedHeader(
                "the token uses a critical header extension (crit) that is not supported"
            )
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPES):
            raise UnsupportedHeader("the token's type (typ) is not an access token")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise UnknownKey("the token has no key id (kid)")
        return header

    # -- claims, one check each ---------------------------------------------------

    def _validate_claims(self, claims: dict[str, Any]) -> None:
        self.validate_claims(claims)

    def validate_claims(
        self,
        claims: Mapping[str, Any],
        *,
        required: Iterable[str] = REQUIRED_CLAIMS,
        required_claims: Iterable[tuple[str, str | None]] | None = None,
        client_required: bool = True,
    ) -> None:
        """Check ``claims`` as a token's: the names in ``required`` must be present;
        ``iss``, ``aud``, ``exp``, ``iat`` and ``nbf`` are checked when present, then
        the claim types, the kind of token (``typ``, ``token_use``), the client
        (``okta.client_ids``; with ``client_required`` false, only when the claims
        name one) and ``required_claims`` (the verifier's own unless given).

        An introspection answer (RFC 7662 §2.2) goes through the same rules with
        nothing ``required``: it may leave out what a JWT must carry.
        """
        for name in required:
            if name not in claims:
                raise InvalidClaims(f"the token has no '{name}' claim")
        now = self.clock()
        if "iss" in claims:
            self._validate_iss(claims["iss"])
        if "aud" in claims:
            self._validate_aud(claims["aud"])
        if "exp" in claims:
            self._validate_exp(claims["exp"], now)
        if "iat" in claims:
            self._validate_iat(claims["iat"], now)
        if "nbf" in claims:
            self._validate_nbf(claims["nbf"], now)
        for name in ("sub", "cid", "client_id", "jti"):
            if name in claims and not isinstance(claims[name], str):
                raise InvalidClaims(f"the token's '{name}' claim is not a string")
        # An ID or refresh token whose audience happens to be this API's (an API
        # registered as the client, its id as the audience) must not open it.
        typ = claims.get("typ")
        if isinstance(typ, str) and typ.lower() in OTHER_TOKEN_TYPS:
            raise InvalidClaims("the token is not an access token (typ)")
        token_use = claims.get("token_use", "access")
        if not isinstance(token_use, str) or token_use not in ACCESS_TOKEN_USES:
            raise InvalidClaims("the token is not an access token (token_use)")
        if self.client_ids and (client_required or "cid" in claims or "client_id" in claims):
            # Okta's JWTs name the client in cid; RFC 9068 and introspection answers
            # (RFC 7662 §2.2) in client_id, which an answer may leave out.
            self._validate_cid(claims["cid"] if "cid" in claims else claims.get("client_id"))
        if required_claims is None:
            required_claims = self.required_claims
        for name, value in required_claims:
            self._validate_required(claims, name, value)

    def _validate_iss(self, iss: Any) -> None:
        if iss != self.issuer:
            raise InvalidIssuer("the token was issued by another authorization server")

    def _validate_aud(self, aud: Any) -> None:
        if isinstance(aud, str):
            aud = [aud]
        elif not isinstance(aud, list) or not all(isinstance(a, str) for a in aud):
            raise InvalidClaims("the token's 'aud' claim is not a string or list of strings")
        if self.audiences.isdisjoint(aud):
            raise InvalidAudience("the token is not meant for this API (wrong audience)")

    def _validate_exp(self, exp: Any, now: float) -> None:
        if _numeric_date(exp, "exp") <= now - self.leeway:
            raise ExpiredToken("the token has expired")

    def _validate_iat(self, iat: Any, now: float) -> None:
        if _numeric_date(iat, "iat") > now + self.leeway:
            raise ImmatureToken("the token was issued in the future (iat)")

    def _validate_nbf(self, nbf: Any, now: float) -> None:
        if _numeric_date(nbf, "nbf") > now + self.leeway:
            raise ImmatureToken("the token is not valid yet (nbf)")

    def _validate_cid(self, cid: Any) -> None:
        if cid not in self.client_ids:
            raise InvalidClaims("the token was issued to a client that is not allowed (cid)")

    def _validate_required(self, claims: Mapping[str, Any], name: str, value: str | None) -> None:
        # Like assertClaims of Okta's verifiers: a policy of this API, not of RFC 7519.
        if name not in claims or claims[name] is None:
            raise RequiredClaimNotMet(f"the token has no '{name}' claim, which this API requires")
        if value is not None and not claim_matches(claims[name], value):
            raise RequiredClaimNotMet(
                f"the token's '{name}' claim does not have the value this API requires"
            )


def check_token_text(token: Any) -> None:
    """Refuse what cannot be a token before anything else is done with it: not text,
    longer than :data:`MAX_TOKEN_LENGTH`, or not ASCII (so it can be hashed as such)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise MalformedToken(f"the token is longer than {MAX_TOKEN_LENGTH} characters")
    if not token.isascii():
        raise MalformedToken("the token contains characters that are not ASCII")


def claim_matches(claim: Any, value: str) -> bool:
    """True if ``claim`` is ``value``, or an array containing it.

    ``value`` comes from configuration, so it is text: it matches a string claim
    equal to it, or a number or boolean claim whose JSON literal it is
    (``1``, ``true``). Objects never match.
    """
    if isinstance(claim, list):
        return any(_scalar_matches(item, value) for item in claim)
    return _scalar_matches(claim, value)


def _scalar_matches(claim: Any, value: str) -> bool:
    if isinstance(claim, str):
        return claim == value
    if isinstance(claim, (bool, int, float)):
        return json.dumps(claim) == value
    return False


def _numeric_date(value: Any, name: str) -> float:
    # RFC 7519 §2: a NumericDate is a JSON number; booleans and strings are not.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise InvalidClaims(f"the token's '{name}' claim is not a NumericDate")
    return value
