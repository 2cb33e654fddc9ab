"""Issuer metadata (RFC 8414) and the cache of the issuer's signing keys.

The JWKS URI always comes from the issuer's metadata, never from a token:
nothing is fetched because a token asked for it (RFC 8725 §3.10).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

import requests
import urllib3
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from .exceptions import IssuerUnavailable, UnknownKey

log = logging.getLogger(__name__)

# Okta's documents are a few KiB; anything this large is not a key set.
MAX_DOCUMENT_BYTES = 512 * 1024
# RFC 8725 §3.5 / NIST SP 800-131A: RSA keys shorter than this are not trusted.
MIN_RSA_BITS = 2048
# After a failed fetch, wait this long before asking the issuer again.
DEFAULT_FAILURE_BACKOFF = 5.0
#: Seconds allowed for one exchange with the issuer.
DEFAULT_HTTP_TIMEOUT = 5.0
#: An unknown ``kid`` refetches the key set at most this often (seconds).
DEFAULT_JWKS_REFETCH_COOLDOWN = 30.0


class FetchError(Exception):
    """A document could not be fetched or did not make sense."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def discovery_urls(issuer: str) -> list[str]:
    """Where the issuer's metadata may live, in the order they are tried.

    Okta serves RFC 8414 metadata at ``{issuer}/.well-known/oauth-authorization-server``;
    OpenID Connect Discovery 1.0 §4 uses ``{issuer}/.well-known/openid-configuration``;
    RFC 8414 §3.1 inserts the well-known segment between host and path.
    """
    base = issuer.rstrip("/")
    parts = urlsplit(issuer)
    urls = [
        f"{base}/.well-known/oauth-authorization-server",
        f"{base}/.well-known/openid-configuration",
    ]
    path = parts.path.rstrip("/")
    if path:
        urls.append(f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{path}")
    return urls


def _allowed_url(url: Any, issuer: str) -> bool:
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        if parts.port is not None and not parts.port:
            return False
    except ValueError:  # "https://[::1/keys", a port out of range...
        return False
    if parts.scheme == "https" and parts.hostname:
        return True
    # http only where the issuer itself is a loopback http URL (development, tests).
    return (
        parts.scheme == "http"
        and is_loopback_host(parts.hostname)
        and urlsplit(issuer).scheme == "http"
    )


@dataclass(frozen=True)
class IssuerMetadata:
    """The parts of RFC 8414 authorization-server metadata a resource server uses."""

    issuer: str
    jwks_uri: str


class IssuerClient:
    """Fetches the issuer's metadata and key set over HTTP, with hard limits."""

    def __init__(
        self,
        issuer: str,
        *,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.issuer = issuer
        self.http_timeout = http_timeout
        self.session = session or requests.Session()
        self._metadata: IssuerMetadata | None = None

    def get_json(self, url: str) -> Any:
        """GET ``url`` and parse its JSON body; raise :class:`FetchError` on anything odd."""
        deadline = time.monotonic() + self.http_timeout
        try:
            # Redirects are not followed: the metadata names the URLs to use.
            with self.session.get(
                url,
                timeout=(self.http_timeout, self.http_timeout),
                stream=True,
                allow_redirects=False,
                headers={"Accept": "application/json"},
            ) as response:
                if response.status_code != 200:
                    raise FetchError(f"{url} answered HTTP {response.status_code}",
                                     status=response.status_code)
                body = bytearray()
                while True:
                    # read1 returns what has arrived, so the deadline is checked even
                    # when a server drips its answer a byte at a time.
                    chunk = response.raw.read1(16384, decode_content=True)
                    if not chunk:
                        break
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise FetchError(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError(f"{url} took longer than {self.http_timeout:g}s")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise FetchError(f"{url} could not be fetched ({type(exc).__name__})") from None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise FetchError(f"{url} did not return JSON") from None

    def metadata(self) -> IssuerMetadata:
        """The issuer's metadata, discovered once and then kept."""
        if self._metadata is not None:
            return self._metadata
        last: FetchError | None = None
        for url in discovery_urls(self.issuer):
            try:
                document = self.get_json(url)
            except FetchError as exc:
                last = exc
                if exc.status is not None and 400 <= exc.status < 500:
                    continue  # not served here; try the next well-known location
                raise
            self._metadata = self._check_metadata(url, document)
            return self._metadata
        assert last is not None
        raise FetchError(f"no metadata found for issuer {self.issuer} (last: {last})")

    def _check_metadata(self, url: str, document: Any) -> IssuerMetadata:
        if not isinstance(document, dict):
            raise FetchError(f"{url} is not a JSON object")
        # RFC 8414 §3.3: the issuer in the metadata must be identical to the one expected.
        if document.get("issuer") != self.issuer:
            raise FetchError(
                f"{url} names issuer {str(document.get('issuer'))[:200]!r}, "
                f"expected exactly {self.issuer!r}"
            )
        jwks_uri = document.get("jwks_uri")
        if not _allowed_url(jwks_uri, self.issuer):
            raise FetchError(f"{url} has no usable https jwks_uri")
        return IssuerMetadata(self.issuer, jwks_uri)

    def fetch_keys(self) -> tuple[dict[str, RSAPublicKey], str]:
        """Fetch the key set; return the usable keys by ``kid`` and a fingerprint."""
        document = self.get_json(self.metadata().jwks_uri)
        return parse_jwks(document)


def parse_jwks(document: Any) -> tuple[dict[str, RSAPublicKey], str]:
    """Keep the RSA signature keys of a JWK Set (RFC 7517) that can verify RS256."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise FetchError("the key set is not a JSON object with a 'keys' array")
    keys: dict[str, RSAPublicKey] = {}
    used: list[dict[str, Any]] = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or kid in keys:
            continue
        if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
            continue
        if jwk.get("alg", "RS256") != "RS256":
            continue
        ops = jwk.get("key_ops")
        if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
            continue
        if "d" in jwk:
            # A private key published by mistake: refuse to rely on it.
            log.warning("issuer key set: key %r carries private material; ignored", kid[:64])
            continue
        try:
            key = PyJWK({"kty": "RSA", "n": jwk.get("n"), "e": jwk.get("e")}, "RS256").key
        except (PyJWTError, ValueError, TypeError):
            continue
        if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
            continue
        keys[kid] = key
        used.append({"kid": kid, "n": jwk["n"], "e": jwk["e"]})
    if not keys:
        # No key could verify any token: keep the keys held (stale rather than
        # failing) and answer 503, rather than refuse every valid token as 401.
        raise FetchError("the key set has no usable RS256 signing key")
    fingerprint = json.dumps(used, sort_keys=True)
    return keys, fingerprint


class KeySet:
    """The issuer's signing keys by ``kid``, held in memory.

    - A known ``kid`` is a dictionary lookup: no lock, no I/O.
    - An unknown ``kid`` causes at most one refetch per ``refetch_cooldown``, so made-up
      ``kid`` values cannot make us hammer the issuer; a rotated-in key is found that way.
    - Concurrent callers that need a fetch share one (single flight).
    - A failed fetch keeps the keys already held (stale rather than failing) and is not
      retried for ``failure_backoff`` seconds.
    """

    def __init__(
        self,
        client: IssuerClient,
        *,
        refetch_cooldown: float = DEFAULT_JWKS_REFETCH_COOLDOWN,
        failure_backoff: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.refetch_cooldown = refetch_cooldown
        self.failure_backoff = (
            min(DEFAULT_FAILURE_BACKOFF, refetch_cooldown)
            if failure_backoff is None else failure_backoff
        )
        self._clock = clock
        self._keys: dict[str, RSAPublicKey] = {}
        self._fingerprint: str | None = None
        self._lock = threading.Lock()
        self._attempts = 0
        self._last_attempt: float | None = None
        self._last_error: str | None = None
        self.loaded_at: float | None = None
        #: Increases whenever the set of keys changes (a key added or removed).
        self.generation = 0

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def age(self) -> float | None:
        """Seconds since the key set was last fetched successfully; ``None`` if never."""
        loaded_at = self.loaded_at
        return None if loaded_at is None else max(0.0, self._clock() - loaded_at)

    def get(self, kid: str) -> RSAPublicKey:
        """The key for ``kid``; raises :class:`UnknownKey` or :class:`IssuerUnavailable`."""
        attempt = self._attempts
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._lock.locked() or self._time_until_due() <= 0:
            # Due for a refetch, or one is under way (the warm-up, say): share it
            # rather than call unknown a key it may be bringing.
            self._refresh(attempt)
            key = self._keys.get(kid)
            if key is not None:
                return key
        if self._last_error is not None:
            raise self._unavailable(self._time_until_due())
        raise UnknownKey("the token's key id (kid) is not in the issuer's key set")

    def refresh(self) -> bool:
        """Fetch the key set now (single flight); True if keys are held afterwards."""
        return self._refresh(self._attempts)

    def _refresh(self, attempt: int) -> bool:
        with self._lock:
            if self._attempts == attempt:
                self._fetch()
            # else: another thread fetched since `attempt` was read; use its result.
        return bool(self._keys)

    def _fetch(self) -> None:
        self._last_attempt = self._clock()
        try:
            keys, fingerprint = self.client.fetch_keys()
        except FetchError as exc:
            self._last_error = str(exc)
            log.warning("could not fetch the issuer's keys: %s; keeping %d held key(s)",
                        exc, len(self._keys))
            return
        finally:
            self._attempts += 1
        if fingerprint != self._fingerprint:
            if self._fingerprint is not None:
                log.info("issuer key set changed: %d key(s) now", len(keys))
            self._keys = keys
            self._fingerprint = fingerprint
            self.generation += 1
        self._last_error = None
        self.loaded_at = self._clock()

    def _time_until_due(self) -> float:
        if self._last_attempt is None:
            return 0.0
        interval = self.failure_backoff if self._last_error else self.refetch_cooldown
        return self._last_attempt + interval - self._clock()

    def _unavailable(self, wait: float) -> IssuerUnavailable:
        return IssuerUnavailable(
            "the issuer's signing keys could not be fetched; try again shortly",
            retry_after=int(wait) + 1 if wait > 0 else int(self.failure_backoff) or 1,
        )
