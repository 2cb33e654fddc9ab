"""Access tokens shaped like those of an Okta custom authorization server.

Okta's access tokens are RS256 JWTs whose header has ``kid`` and ``alg`` only and
whose claims are ``ver``, ``jti``, ``iss``, ``aud``, ``iat``, ``exp``, ``cid``,
``scp`` and ``sub`` (plus ``uid`` and any custom claims such as ``groups`` when a
user signed in). A token bound to a DPoP key also carries ``cnf: {"jkt": ...}``
(RFC 9449 §6.1).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

import jwt

from .config import DevIssuerSettings
from .keys import KeyStore


class TokenFactory:
    """Signs access tokens with the key store's current key."""

    def __init__(
        self, settings: DevIssuerSettings, keys: KeyStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.clock = clock

    def claims(
        self,
        *,
        client_id: str,
        subject: str,
        scopes: Iterable[str],
        lifetime: int | None = None,
        jkt: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "ver": 1,
            "jti": "AT." + secrets.token_urlsafe(32),
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "iat": now,
            "exp": now + (lifetime or self.settings.token_lifetime),
            "cid": client_id,
        }
        claims.update(extra)
        claims["scp"] = list(scopes)
        claims["sub"] = subject
        if jkt is not None:
            # RFC 9449 §6.1: the SHA-256 thumbprint of the key the client proved it holds.
            claims["cnf"] = {"jkt": jkt}
        return claims

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.keys.signing_key
        # Okta's header carries only kid and alg; PyJWT would add typ=JWT otherwise.
        return jwt.encode(
            claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": None}
        )

    def client_token(self, client_id: str, scopes: Iterable[str], *, jkt: str | None = None) -> str:
        """The client-credentials token: ``sub`` is the client id, as with Okta;
        bound to the DPoP key whose thumbprint is ``jkt``, if given."""
        return self.sign(
            self.claims(client_id=client_id, subject=client_id, scopes=scopes, jkt=jkt)
        )

    def user_token(
        self,
        subject: str,
        *,
        client_id: str,
        scopes: Iterable[str],
        uid: str | None = None,
        groups: Iterable[str] | None = None,
        lifetime: int | None = None,
        jkt: str | None = None,
    ) -> str:
        """A token as if ``subject`` had signed in to ``client_id`` (bound to the DPoP
        key whose thumbprint is ``jkt``, if given)."""
        extra: dict[str, Any] = {"uid": uid or user_id(subject)}
        if groups is not None:
            extra["groups"] = list(groups)
        return self.sign(
            self.claims(
                client_id=client_id,
                subject=subject,
                scopes=scopes,
                lifetime=lifetime,
                jkt=jkt,
                **extra,
            )
        )


def user_id(subject: str) -> str:
    """A stable Okta-style user id (``00u`` + 17 characters) for a subject."""
    return "00u" + hashlib.sha256(subject.encode("utf-8")).hexdigest()[:17]
