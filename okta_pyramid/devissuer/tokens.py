"""Access tokens shaped like those of an Okta custom authorization server.

Okta's access tokens are RS256 JWTs whose header has ``kid`` and ``alg`` only and
whose claims are ``ver``, ``jti``, ``iss``, ``aud``, ``iat``, ``exp``, ``cid``,
``scp`` and ``sub`` (plus ``uid``, ``auth_time``, ``acr``, ``amr`` and any custom
claims such as ``groups`` when a user signed in). A token bound to a DPoP key also
carries ``cnf: {"jkt": ...}`` (RFC 9449 §6.1).
"""

from __future__ import annotations

import base64
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
        acr: str | None = None,
        amr: Iterable[str] | None = None,
        auth_time: int | None = None,
    ) -> str:
        """A token as if ``subject`` had signed in to ``client_id`` (bound to the DPoP
        key whose thumbprint is ``jkt``, if given), at ``auth_time`` with the
        authentication context ``acr`` and methods ``amr`` (OIDC Core §2, as Okta
        puts them in access tokens too)."""
        return self.sign(
            self.user_claims(
                subject,
                client_id=client_id,
                scopes=scopes,
                uid=uid,
                groups=groups,
                lifetime=lifetime,
                jkt=jkt,
                acr=acr,
                amr=amr,
                auth_time=auth_time,
            )
        )

    def user_claims(
        self,
        subject: str,
        *,
        client_id: str,
        scopes: Iterable[str],
        uid: str | None = None,
        groups: Iterable[str] | None = None,
        lifetime: int | None = None,
        jkt: str | None = None,
        acr: str | None = None,
        amr: Iterable[str] | None = None,
        auth_time: int | None = None,
    ) -> dict[str, Any]:
        """The claims of :meth:`user_token` (which signs them)."""
        extra: dict[str, Any] = {"uid": uid or user_id(subject)}
        if auth_time is not None:
            extra["auth_time"] = auth_time
        if acr is not None:
            extra["acr"] = acr
        if amr is not None:
            extra["amr"] = list(amr)
        if groups is not None:
            extra["groups"] = list(groups)
        return self.claims(
            client_id=client_id, subject=subject, scopes=scopes, lifetime=lifetime, jkt=jkt, **extra
        )

    def id_token(
        self,
        username: str,
        *,
        client_id: str,
        scopes: Iterable[str],
        auth_time: int,
        acr: str,
        amr: Iterable[str],
        access_token: str,
        nonce: str | None = None,
        groups: Iterable[str] | None = None,
    ) -> str:
        """An ID token (OIDC Core §2, §3.1.3.6) as Okta shapes it: RS256, ``sub`` the
        user's id, ``aud`` the client, ``nonce`` from the authorization request, and
        ``at_hash`` of the access token issued with it. ``profile`` adds ``name`` and
        ``preferred_username``; ``email`` adds ``email`` (the username, if it looks
        like one)."""
        granted = set(scopes)
        now = int(self.clock())
        claims: dict[str, Any] = {
            "sub": user_id(username),
            "ver": 1,
            "iss": self.settings.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "jti": "ID." + secrets.token_urlsafe(32),
            "amr": list(amr),
            "idp": IDP,
            "auth_time": auth_time,
            "acr": acr,
            "at_hash": at_hash(access_token),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if "profile" in granted:
            claims["name"] = username
            claims["preferred_username"] = username
        if "email" in granted and "@" in username:
            claims["email"] = username
            claims["email_verified"] = True
        if groups is not None and "groups" in granted:
            claims["groups"] = list(groups)
        return self.sign(claims)


#: Okta's ID tokens live one hour.
ID_TOKEN_LIFETIME = 3600
#: The ``idp`` claim: Okta names the org's own identity provider; here, a fixed id.
IDP = "00odevissuer0000000"


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: the base64url of the left half of the SHA-256 of the access
    token's ASCII text (RS256 uses SHA-256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def user_id(subject: str) -> str:
    """A stable Okta-style user id (``00u`` + 17 characters) for a subject."""
    return "00u" + hashlib.sha256(subject.encode("utf-8")).hexdigest()[:17]
