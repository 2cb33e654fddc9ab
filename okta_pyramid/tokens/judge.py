"""What judges an access token: the interface the core's judges share.

:class:`~.verifier.AccessTokenVerifier` (the local check),
:class:`~.introspection.IntrospectingVerifier` (with introspection) and
:class:`~.issuers.MultiIssuerVerifier` (several issuers) each stand where the
others would: a :class:`~.schemes.RequestVerifier`'s ``tokens``, the add-on's
judge. :class:`TokenJudge` is what they have in common.
"""

from __future__ import annotations

from typing import Protocol

from .verifier import VerifiedToken

__all__ = ["LiveTokenJudge", "TokenJudge"]


class TokenJudge(Protocol):
    """Judges the text of an access token, whatever its issuer and however it is
    checked (locally, by introspection, or both)."""

    @property
    def leeway(self) -> float:
        """Seconds of clock skew allowed when ``exp``, ``nbf`` and ``iat`` are checked."""
        ...

    def verify_token(self, token: str) -> VerifiedToken:
        """The token, judged; or a :class:`~.exceptions.VerificationError`."""
        ...


class LiveTokenJudge(TokenJudge, Protocol):
    """A judge that can also ask the issuer whether a token is still active
    (introspection, RFC 7662): :class:`~.introspection.IntrospectingVerifier` and
    :class:`~.issuers.MultiIssuerVerifier`."""

    def confirm(self, token: str, verified: VerifiedToken) -> VerifiedToken:
        """``verified``, once the issuer has said ``token`` is active; or a
        :class:`~.exceptions.VerificationError`."""
        ...
