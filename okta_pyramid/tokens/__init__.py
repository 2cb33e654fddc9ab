"""Verify OAuth 2.0 access tokens (JWTs) from Okta or any RFC 8414 issuer.

This package knows nothing of Pyramid and can be used on its own::

    from okta_pyramid.tokens import AccessTokenVerifier, VerificationError

    verifier = AccessTokenVerifier("https://dev-123456.okta.com/oauth2/default",
                                   audience="api://orders")
    claims = verifier.verify(token)   # or raises a VerificationError

What is checked, and why, is in docs/validation.md.
"""

from __future__ import annotations

from .capacity import CallSlots
from .client_auth import ClientSecretBasic, ClientSecretPost, PrivateKeyJWT
from .discovery import IssuerClient
from .dpop import DPoPProof, DPoPVerifier, InvalidDPoPProof, UseDPoPNonce, make_proof
from .exceptions import (
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaims,
    InvalidIssuer,
    InvalidSignature,
    InvalidToken,
    IssuerUnavailable,
    MalformedRequest,
    MalformedToken,
    RequiredClaimNotMet,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
    VerificationError,
)
from .introspection import (
    InactiveToken,
    IntrospectingVerifier,
    IntrospectionUnavailable,
    TokenIntrospector,
)
from .issuers import MultiIssuerVerifier
from .judge import LiveTokenJudge, TokenJudge
from .jwks import KeySet
from .nonces import DPoPNonces
from .refresher import KeyRefresher
from .replay import InMemoryReplayStore, ReplayQuotaExceeded, ReplayStore, ReplayStoreFull
from .schemes import (
    BindingMismatch,
    Credentials,
    RequestVerifier,
    SchemeNotAccepted,
    VerifiedRequest,
    read_authorization,
)
from .shared import RedisStore, SharedStoreUnavailable
from .verifier import AccessTokenVerifier, VerifiedToken

__all__ = [
    "AccessTokenVerifier",
    "BindingMismatch",
    "CallSlots",
    "ClientSecretBasic",
    "ClientSecretPost",
    "Credentials",
    "DPoPNonces",
    "DPoPProof",
    "DPoPVerifier",
    "ExpiredToken",
    "ImmatureToken",
    "InMemoryReplayStore",
    "InactiveToken",
    "IntrospectingVerifier",
    "IntrospectionUnavailable",
    "InvalidAudience",
    "InvalidClaims",
    "InvalidDPoPProof",
    "InvalidIssuer",
    "InvalidSignature",
    "InvalidToken",
    "IssuerClient",
    "IssuerUnavailable",
    "KeyRefresher",
    "KeySet",
    "LiveTokenJudge",
    "MalformedRequest",
    "MalformedToken",
    "MultiIssuerVerifier",
    "PrivateKeyJWT",
    "RedisStore",
    "ReplayQuotaExceeded",
    "ReplayStore",
    "ReplayStoreFull",
    "RequestVerifier",
    "RequiredClaimNotMet",
    "SchemeNotAccepted",
    "SharedStoreUnavailable",
    "TokenIntrospector",
    "TokenJudge",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "UnsupportedHeader",
    "UseDPoPNonce",
    "VerificationError",
    "VerifiedRequest",
    "VerifiedToken",
    "make_proof",
    "read_authorization",
]
