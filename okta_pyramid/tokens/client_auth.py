"""How the API proves its client identity to the issuer (RFC 6749 §2.3.1,
RFC 7523 §2.2): HTTP Basic or the form with a client secret, or a client assertion
signed with the client's private key. Introspection (:mod:`.introspection`)
authenticates its calls with one of these.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol, cast
from urllib.parse import quote_plus

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .jwks import MIN_RSA_BITS

#: The client authentication methods (RFC 8414 ``*_auth_methods_supported`` names).
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
#: Seconds a private_key_jwt client assertion is valid (RFC 7523 §3: short).
ASSERTION_LIFETIME = 60
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class ClientAuthentication(Protocol):
    """How the API proves its client identity to the introspection endpoint."""

    client_id: str
    method: str

    def apply(self, endpoint: str, form: dict[str, str], headers: dict[str, str]) -> None:
        """Add the credentials to a request to ``endpoint``."""


class ClientSecretBasic:
    """HTTP Basic with the client id and secret, each form-urlencoded first
    (RFC 6749 §2.3.1): Okta's default, and the default here."""

    method = "client_secret_basic"

    def __init__(self, client_id: str, secret: str) -> None:
        self.client_id = client_id
        credentials = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
        self._header = "Basic " + base64.b64encode(credentials).decode("ascii")

    def __repr__(self) -> str:  # never the secret
        return f"<ClientSecretBasic client_id={self.client_id!r}>"

    def apply(self, endpoint: str, form: dict[str, str], headers: dict[str, str]) -> None:
        headers["Authorization"] = self._header


class ClientSecretPost:
    """The client id and secret in the request body (RFC 6749 §2.3.1)."""

    method = "client_secret_post"

    def __init__(self, client_id: str, secret: str) -> None:
        self.client_id = client_id
        self._secret = secret

    def __repr__(self) -> str:  # never the secret
        return f"<ClientSecretPost client_id={self.client_id!r}>"

    def apply(self, endpoint: str, form: dict[str, str], headers: dict[str, str]) -> None:
        form["client_id"] = self.client_id
        form["client_secret"] = self._secret


class PrivateKeyJWT:
    """A client assertion signed with the client's private key (RFC 7523 §2.2 and
    §3, OpenID Connect Core §9): ``iss`` and ``sub`` are the client id, ``aud`` the
    endpoint, with a fresh ``jti`` and a short ``exp``. Okta recommends it for
    service applications: no shared secret leaves the API."""

    method = "private_key_jwt"

    def __init__(
        self,
        client_id: str,
        private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        *,
        key_id: str | None = None,
        lifetime: int = ASSERTION_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.algorithm = signing_algorithm(private_key)
        self.key_id = key_id
        self.lifetime = lifetime
        self.clock = clock
        self._key = private_key

    def __repr__(self) -> str:  # never the key
        return f"<PrivateKeyJWT client_id={self.client_id!r} alg={self.algorithm}>"

    def assertion(self, audience: str) -> str:
        now = int(self.clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": secrets.token_urlsafe(24),
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def apply(self, endpoint: str, form: dict[str, str], headers: dict[str, str]) -> None:
        form["client_assertion_type"] = JWT_BEARER
        form["client_assertion"] = self.assertion(endpoint)


def signing_algorithm(key: Any) -> str:
    """The JWS algorithm for a client's private key: RS256 for RSA (at least
    2048 bits), ES256/384/512 for the NIST curves; ``ValueError`` otherwise."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(
                f"the RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are needed"
            )
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        return _CURVES[key.curve.name]
    raise ValueError("the key must be an RSA key or an EC key on P-256, P-384 or P-521")


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """The unencrypted PEM private key of a private_key_jwt client; ``ValueError``,
    whose message never quotes the key, for anything else."""
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ValueError(
            "it is not an unencrypted PEM private key (PKCS #8, as `openssl genpkey` writes it)"
        ) from None
    signing_algorithm(key)  # refuses every other kind of key
    return cast("rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey", key)
