"""The issuer's metadata: RFC 8414 and OpenID Connect discovery.

The JWKS URI always comes from the issuer's metadata, never from a token:
nothing is fetched because a token asked for it (RFC 8725 §3.10).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from .fetch import DEFAULT_HTTP_TIMEOUT, Fetcher, FetchError
from .jwks import parse_jwks
from .urls import is_loopback_host

log = logging.getLogger(__name__)


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


def _allowed_url(url: Any, issuer: str) -> TypeGuard[str]:
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
    #: Where tokens are introspected (RFC 7662 §2, RFC 8414 §2), if the issuer says,
    #: and only at an address :func:`_allowed_url` accepts.
    introspection_endpoint: str | None = None


class IssuerClient(Fetcher):
    """Fetches the issuer's metadata and key set over HTTP, with hard limits
    (see :class:`~.fetch.Fetcher`)."""

    def __init__(
        self,
        issuer: str,
        *,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        session: requests.Session | None = None,
        keep_alive: bool = False,
    ) -> None:
        self.issuer = issuer
        super().__init__(http_timeout=http_timeout, session=session, keep_alive=keep_alive)
        self._metadata: IssuerMetadata | None = None

    def metadata(self, *, deadline: float | None = None) -> IssuerMetadata:
        """The issuer's metadata, discovered once and then kept."""
        if self._metadata is not None:
            return self._metadata
        if deadline is None:
            deadline = time.monotonic() + self.http_timeout
        last: FetchError | None = None
        for url in discovery_urls(self.issuer):
            try:
                document = self.get_json(url, deadline=deadline)
            except FetchError as exc:
                last = exc
                if exc.status is not None and 400 <= exc.status < 500:
                    continue  # not served here; try the next well-known location
                raise
            self._metadata = self._check_metadata(url, document)
            return self._metadata
        assert last is not None  # noqa: S101  # discovery_urls never returns an empty list
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
        introspection = document.get("introspection_endpoint")
        if introspection is not None and not _allowed_url(introspection, self.issuer):
            log.warning("%s: introspection_endpoint is not an https URL; not used", url)
            introspection = None
        return IssuerMetadata(self.issuer, jwks_uri, introspection)

    def fetch_keys(self, *, deadline: float | None = None) -> tuple[dict[str, RSAPublicKey], str]:
        """Fetch the key set; return the usable keys by ``kid`` and a fingerprint.

        One deadline (``http_timeout`` from now by default) covers discovery and the
        key set together.
        """
        if deadline is None:
            deadline = time.monotonic() + self.http_timeout
        document = self.get_json(self.metadata(deadline=deadline).jwks_uri, deadline=deadline)
        return parse_jwks(document)
