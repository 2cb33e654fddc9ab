"""Judging the development issuer's own tokens, for introspection (RFC 7662) and
revocation (RFC 7009).

The issuer keeps no record of the tokens it mints: a token is one of its own when
it is a compact JWS signed RS256 with a key it still publishes, for its issuer,
with the claims it puts in every access token. A token is *active* when it is one
of its own, inside its time window with no leeway (the issuer's clock is the one
that minted it), and not revoked. The strict JWS reader is the resource server's
(:mod:`okta_pyramid.tokens._jws`), so both agree on what a well-formed token is.
"""

from __future__ import annotations

import math
from typing import Any

from ..tokens import _jws
from ..tokens.exceptions import (
    ExpiredToken,
    ImmatureToken,
    InvalidClaims,
    InvalidIssuer,
    InvalidToken,
    MalformedToken,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
)
from ..tokens.verifier import MAX_TOKEN_LENGTH
from .dpop import TOKEN_TYPE
from .keys import KeyStore
from .revocation import RevokedTokens

__all__ = ["RevokedToken", "active_claims", "introspection_response"]


class RevokedToken(InvalidToken):
    """The token's ``jti`` is on the revocation list."""

    reason = "revoked"


def active_claims(
    token: str, *, issuer: str, keys: KeyStore, revoked: RevokedTokens, now: float
) -> dict[str, Any]:
    """The claims of ``token`` if it is an active token of this issuer.

    Raises an :class:`~okta_pyramid.tokens.exceptions.InvalidToken` whose
    ``reason`` says why not (for the log: the caller only learns ``active: false``).
    """
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise MalformedToken("the token is too long or not ASCII")
    header_b64, payload_b64, signature_b64, signing_input = _jws.split(token)
    header = _jws.decode_json_object(header_b64, "header")[1]
    if header.get("alg") != "RS256":
        raise UnsupportedAlgorithm("the issuer signs with RS256 only")
    if "crit" in header:
        raise UnsupportedHeader("the issuer sets no critical header extensions")
    kid = header.get("kid")
    key = keys.public_key(kid) if isinstance(kid, str) else None
    if key is None:
        # Never held, or withdrawn by a rotation: the issuer no longer vouches for it.
        raise UnknownKey("the token's key is not one the issuer publishes")
    _jws.check_rs256(key, _jws.decode_segment(signature_b64), signing_input)
    claims = _jws.decode_json_object(payload_b64, "claims")[1]
    _check_claims(claims, issuer, now)
    if claims["jti"] in revoked:
        raise RevokedToken("the token was revoked")
    return claims


def _check_claims(claims: dict[str, Any], issuer: str, now: float) -> None:
    if claims.get("iss") != issuer:
        raise InvalidIssuer("the token was issued by another authorization server")
    # Every access token this issuer mints carries these (see .tokens).
    for name in ("jti", "cid", "sub"):
        if not isinstance(claims.get(name), str):
            raise InvalidClaims(f"the token has no '{name}' string claim")
    scp = claims.get("scp")
    if not isinstance(scp, list) or not all(isinstance(s, str) for s in scp):
        raise InvalidClaims("the token has no 'scp' list of scopes")
    if _numeric_date(claims, "exp") <= now:
        raise ExpiredToken("the token has expired")
    if _numeric_date(claims, "iat") > now:
        raise ImmatureToken("the token was issued in the future")
    if "nbf" in claims and _numeric_date(claims, "nbf") > now:
        raise ImmatureToken("the token is not valid yet")


def _numeric_date(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    # RFC 7519 §2: a NumericDate is a JSON number; booleans and strings are not.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise InvalidClaims(f"the token's '{name}' claim is not a NumericDate")
    return value


def introspection_response(claims: dict[str, Any]) -> dict[str, Any]:
    """The answer for an active token, with the members an Okta custom authorization
    server sends (RFC 7662 §2.2), and ``cnf`` for a DPoP-bound token (RFC 9449 §6.2).
    """
    cnf = claims.get("cnf")
    bound = isinstance(cnf, dict) and "jkt" in cnf
    answer: dict[str, Any] = {
        "active": True,
        # RFC 9449 §6.2: a token bound to a DPoP key is of type DPoP, not Bearer.
        "token_type": TOKEN_TYPE if bound else "Bearer",
        "scope": " ".join(claims["scp"]),
        "client_id": claims["cid"],
    }
    if "uid" in claims:
        # Okta names the user of a user's token; a client's token has no user.
        answer["username"] = claims["sub"]
    for name in ("exp", "iat", "nbf", "sub", "aud", "iss", "jti", "uid", "groups"):
        if name in claims:
            answer[name] = claims[name]
    if isinstance(cnf, dict) and "jkt" in cnf:
        answer["cnf"] = {"jkt": cnf["jkt"]}
    return answer
