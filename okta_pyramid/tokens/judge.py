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

__all__ = ["TokenJudge"]


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
