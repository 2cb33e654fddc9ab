"""DPoP (RFC 9449) at the development issuer's token endpoint, and the client's keys.

The token endpoint judges proofs with the resource server's own checker
(:class:`~okta_pyramid.tokens.dpop.DPoPVerifier`), as Okta does at its ``/v1/token``:

- a proof is for ``POST`` to the token endpoint's URL as the client called it, and
  carries no ``ath`` (there is no access token yet, RFC 9449 §4.2);
- every proof must hold a nonce the issuer handed out (RFC 9449 §8): the first
  request is answered 400 ``use_dpop_nonce`` with a ``DPoP-Nonce`` header;
- a valid proof binds the token to its key: ``token_type`` ``DPoP`` and the claim
  ``cnf: {"jkt": <RFC 7638 thumbprint>}`` (RFC 9449 §5, §6.1).

The key helpers serve the command-line tools, which sign proofs with a private key
kept in a PEM file.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ..tokens._jwk import public_jwk, thumbprint
from ..tokens.dpop import DEFAULT_ALGORITHMS, DPoPNonces, DPoPVerifier

__all__ = [
    "TOKEN_TYPE",
    "KeyFileError",
    "generate_key_file",
    "key_thumbprint",
    "load_key_file",
    "token_endpoint_verifier",
]

#: The ``token_type`` of a DPoP-bound access token (RFC 9449 §5).
TOKEN_TYPE = "DPoP"  # noqa: S105 - a token type's name, not a secret
#: A PEM private key is a few kilobytes at most; a larger file is not one.
MAX_KEY_FILE_BYTES = 64 * 1024
# RFC 7638 §3.2: the members that identify a key of each type.
_REQUIRED_MEMBERS = ("crv", "e", "kty", "n", "x", "y")
_PRIVATE_KEY_TYPES = (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)


class KeyFileError(ValueError):
    """A key file that cannot be read or used; the message names the file, never its
    content."""


def token_endpoint_verifier() -> DPoPVerifier:
    """The proof checker of the token endpoint: Okta's algorithms (and EdDSA), and a
    nonce required in every proof, from a secret of this process.

    One process serves the development issuer, so a per-process secret is enough;
    its replay store remembers each proof's ``jti`` while the proof could be
    accepted (RFC 9449 §11.1)."""
    return DPoPVerifier(algorithms=DEFAULT_ALGORITHMS, nonces=DPoPNonces())


def key_thumbprint(key: Any) -> str:
    """The RFC 7638 SHA-256 thumbprint of ``key`` (private or public): the ``jkt``
    a token bound to it carries."""
    jwk = public_jwk(key)
    members = {name: jwk[name] for name in _REQUIRED_MEMBERS if name in jwk}
    return thumbprint(json.dumps(members, separators=(",", ":"), sort_keys=True))


def load_key_file(path: str) -> Any:
    """The private key in the PEM file ``path``: EC P-256/384/521, RSA or Ed25519,
    unencrypted."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path} is not a PEM private key (it is too large)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(
            f"{path} holds an encrypted key; give an unencrypted one, "
            "as okta-pyramid-dpop keygen writes"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if b"-----BEGIN PUBLIC KEY-----" in data:
            raise KeyFileError(
                f"{path} holds a public key; proofs are signed with the private key"
            ) from None
        # cryptography's message may quote the file: say only what was expected.
        raise KeyFileError(f"{path} is not a PEM private key") from None
    if not isinstance(key, _PRIVATE_KEY_TYPES):
        raise KeyFileError(
            f"{path} holds a {type(key).__name__}; DPoP proofs need an "
            "EC (P-256, P-384, P-521), RSA or Ed25519 key"
        )
    try:
        public_jwk(key)
    except ValueError:
        raise KeyFileError(
            f"{path} holds a key on a curve DPoP proofs do not use; use P-256, P-384 or P-521"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise KeyFileError(
            f"{path} holds a {key.key_size}-bit RSA key; DPoP proofs need 2048 bits or more"
        )
    return key


def generate_key_file(path: str) -> ec.EllipticCurvePrivateKey:
    """Make an EC P-256 key (for ES256 proofs) and write it to ``path`` as an
    unencrypted PKCS #8 PEM that only its owner may read (mode 0600).

    An existing file is never overwritten: it may be the key a token is bound to."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        # O_EXCL: created here, so no other process holds it open; 0600 from the start,
        # so the key is never readable by others, not even for a moment.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{path} already exists; remove it or choose another file "
            "(it may be the key a token is bound to)"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    return key
