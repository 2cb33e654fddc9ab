"""The development issuer's signing keys, generated here and kept on disk.

Keys live in one JSON file in a folder of their own (``devissuer.keys_dir``,
git-ignored), so tokens stay valid across restarts and the console command can
sign with the same keys as the running app. The first key signs; the others are
still published in the JWKS so that tokens signed before a rotation keep
verifying until they expire (how Okta rotates, too).

Every reader checks the file's modification stamp, so a rotation made by another
process (``okta-pyramid-token --rotate``) is served without a restart.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; writes stay atomic
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

KEYS_FILE = "keys.json"
LOCK_FILE = ".lock"
#: Okta's signing keys are 2048-bit RSA (RS256).
KEY_BITS = 2048


def _b64url_uint(value: int) -> str:
    data = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(e: str, n: str) -> str:
    """The RFC 7638 SHA-256 thumbprint of an RSA public key: a stable ``kid``."""
    canonical = json.dumps(
        {"e": e, "kty": "RSA", "n": n}, separators=(",", ":"), sort_keys=True
    ).encode("ascii")
    digest = hashlib.sha256(canonical).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """One RSA key pair with its ``kid``."""

    kid: str
    private_key: rsa.RSAPrivateKey
    created: int

    def __repr__(self) -> str:  # no key material in logs or tracebacks
        return f"SigningKey(kid={self.kid!r}, created={self.created})"

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        numbers = key.public_key().public_numbers()
        kid = jwk_thumbprint(_b64url_uint(numbers.e), _b64url_uint(numbers.n))
        return cls(kid, key, int(time.time()))

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK (RFC 7517), as Okta publishes it."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "kid": self.kid,
            "use": "sig",
            "e": _b64url_uint(numbers.e),
            "n": _b64url_uint(numbers.n),
        }

    def to_record(self) -> dict[str, Any]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {"kid": self.kid, "created": self.created, "private_key": pem.decode("ascii")}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SigningKey:
        key = serialization.load_pem_private_key(record["private_key"].encode("ascii"), None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("not an RSA private key")
        return cls(str(record["kid"]), key, int(record["created"]))


class KeyStoreError(Exception):
    """The keys folder cannot be read or written."""


class KeyStore:
    """The signing keys in ``folder``: created on first use, rotated on demand."""

    def __init__(self, folder: str, *, keep: int = 2) -> None:
        self.folder = folder
        self.keep = keep
        self._path = os.path.join(folder, KEYS_FILE)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: tuple[SigningKey, ...] = ()

    # -- reading ------------------------------------------------------------

    def keys(self) -> tuple[SigningKey, ...]:
        """The keys, newest (signing) first; generates the first key if there is none."""
        with self._lock:
            stamp = self._file_stamp()
            if stamp is None:
                with self._exclusive():
                    if self._file_stamp() is None:  # nobody created it meanwhile
                        self._write([SigningKey.generate()])
                        log.warning(
                            "development issuer: generated a signing key in %s", self.folder
                        )
                stamp = self._file_stamp()
            if stamp != self._stamp:
                self._keys = self._read()
                self._stamp = stamp
            return self._keys

    @property
    def signing_key(self) -> SigningKey:
        return self.keys()[0]

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        """The public half of the published key ``kid``, or ``None`` for a key never
        held or already withdrawn by a rotation."""
        for key in self.keys():
            if key.kid == kid:
                return key.private_key.public_key()
        return None

    def jwks(self) -> dict[str, Any]:
        """The JWK Set (RFC 7517 §5) served at ``/v1/keys``: public halves only."""
        return {"keys": [key.public_jwk for key in self.keys()]}

    # -- writing ------------------------------------------------------------

    def rotate(self) -> SigningKey:
        """Make a new key the signing key; keep the previous ``keep - 1`` published."""
        new = SigningKey.generate()
        with self._lock, self._exclusive():
            current = list(self._read()) if self._file_stamp() is not None else []
            self._write([new, *current][: self.keep])
        log.info("development issuer: rotated signing keys; new kid %s", new.kid)
        return new

    # -- files --------------------------------------------------------------

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self._path)
        except FileNotFoundError:
            return None
        return info.st_mtime_ns, info.st_ino

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Serialise writers across processes (the app and the console command)."""
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            ignore = os.path.join(self.folder, ".gitignore")
            if not os.path.exists(ignore):
                # Private keys must never be committed, wherever the folder is.
                with open(ignore, "w", encoding="ascii") as out:
                    out.write("*\n")
            # Closed by the `with` below, once the open cannot fail any more.
            handle = open(os.path.join(self.folder, LOCK_FILE), "a")  # noqa: SIM115
        except OSError as exc:
            raise KeyStoreError(f"cannot use the keys folder {self.folder}: {exc}") from None
        with handle:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _read(self) -> tuple[SigningKey, ...]:
        try:
            with open(self._path, encoding="utf-8") as handle:
                document = json.load(handle)
            keys = tuple(SigningKey.from_record(r) for r in document["keys"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(
                f"cannot read the signing keys in {self._path} ({type(exc).__name__}); "
                "delete the folder to start with new keys"
            ) from None
        if not keys:
            raise KeyStoreError(f"{self._path} holds no keys; delete it to start afresh")
        return keys

    def _write(self, keys: list[SigningKey]) -> None:
        document = {"keys": [key.to_record() for key in keys]}
        # Write a private temporary file, then rename: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".keys-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=1)
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
