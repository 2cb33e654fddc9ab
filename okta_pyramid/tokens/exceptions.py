"""Exceptions raised by :mod:`okta_pyramid.tokens.verifier`.

``VerificationError``
├── ``InvalidToken``            the token must be refused (HTTP 401, RFC 6750 §3.1)
│   ├── ``MalformedToken``      not a compact JWS with JSON header and claims
│   ├── ``UnsupportedAlgorithm``
│   ├── ``UnsupportedHeader``   ``crit``, ``b64`` or a ``typ`` that is not an access token
│   ├── ``UnknownKey``          ``kid`` missing or not in the issuer's key set
│   ├── ``InvalidSignature``
│   └── ``InvalidClaims``       a claim is missing, mistyped or has the wrong value
│       ├── ``ExpiredToken``
│       ├── ``ImmatureToken``   ``nbf`` or ``iat`` in the future
│       ├── ``InvalidIssuer``
│       ├── ``InvalidAudience``
│       └── ``RequiredClaimNotMet``  a claim of ``required_claims`` is absent or differs
├── ``IssuerUnavailable``       no key could be obtained to judge the token (HTTP 503);
│                               the token itself may be fine
└── ``MalformedRequest``        the credentials are sent in a way RFC 6750 does not
                                allow: not judged at all (HTTP 400)

Every exception carries ``reason``, a short stable code for logs and metrics,
and a message fit for a developer: it never contains the token.
"""

from __future__ import annotations


class VerificationError(Exception):
    """Base class of everything :meth:`AccessTokenVerifier.verify` raises."""

    reason = "verification_error"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidToken(VerificationError):
    """The token was judged and refused."""

    reason = "invalid_token"


class MalformedToken(InvalidToken):
    reason = "malformed"


class UnsupportedAlgorithm(InvalidToken):
    reason = "unsupported_algorithm"


class UnsupportedHeader(InvalidToken):
    reason = "unsupported_header"


class UnknownKey(InvalidToken):
    reason = "unknown_key"


class InvalidSignature(InvalidToken):
    reason = "bad_signature"


class InvalidClaims(InvalidToken):
    reason = "invalid_claims"


class ExpiredToken(InvalidClaims):
    reason = "expired"


class ImmatureToken(InvalidClaims):
    reason = "not_yet_valid"


class InvalidIssuer(InvalidClaims):
    reason = "wrong_issuer"


class InvalidAudience(InvalidClaims):
    reason = "wrong_audience"


class RequiredClaimNotMet(InvalidClaims):
    """A claim the API requires (``okta.required_claims``) is absent or has another value."""

    reason = "required_claim"


class MalformedRequest(VerificationError):
    """The request carries its credentials in a way RFC 6750 does not allow (HTTP
    400, ``invalid_request``): a token in the query string, an ``Authorization``
    header that is not ``<scheme> <token>``, or more than one of them."""

    reason = "invalid_request"


class IssuerUnavailable(VerificationError):
    """No signing key could be obtained from the issuer.

    ``retry_after`` is a hint, in whole seconds, for when trying again makes sense.
    """

    reason = "issuer_unavailable"

    def __init__(self, description: str, retry_after: int = 5) -> None:
        super().__init__(description)
        self.retry_after = max(1, int(retry_after))
