"""Issuer metadata (RFC 8414) and the cache of the issuer's signing keys.

The JWKS URI always comes from the issuer's metadata, never from a token:
nothing is fetched because a token asked for it (RFC 8725 §3.10).
"""

from __future__ import annotations

import functools
import heapq
import ipaddress
import itertools
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from requests.adapters import DEFAULT_CA_BUNDLE_PATH, HTTPAdapter
from urllib3.util.ssl_ import create_urllib3_context

from . import _jws
from ._jws import b64url_decode
from .capacity import Progress
from .exceptions import IssuerUnavailable, MalformedToken, UnknownKey

log = logging.getLogger(__name__)

# Okta's documents are a few KiB; anything this large is not a key set.
MAX_DOCUMENT_BYTES = 512 * 1024
# RFC 8725 §3.5 / NIST SP 800-131A: RSA keys shorter than this are not trusted.
MIN_RSA_BITS = 2048
# FIPS 186-5 §A.1.1 / NIST SP 800-56B §6.2: the public exponent is odd and above 2**16.
MIN_RSA_EXPONENT = 65537
# After a failed fetch, wait this long before asking the issuer again.
DEFAULT_FAILURE_BACKOFF = 5.0
# At most this many requests wait for a fetch of the keys under way however long it
# runs; the others wait while it runs its normal time (see KeySet), so a stalled
# issuer never holds every server thread. Sized for waitress's default of four.
DEFAULT_MAX_WAITERS = 2
# A request waiting for a fetch under way gives the fetch this long past its deadline
# to hand over its result (the watchdog needs a moment to cut the connection).
_HANDOVER = 0.1
#: Seconds allowed for one exchange with the issuer.
DEFAULT_HTTP_TIMEOUT = 5.0
#: An unknown ``kid`` refetches the key set at most this often (seconds).
DEFAULT_JWKS_REFETCH_COOLDOWN = 30.0


class FetchError(Exception):
    """A document could not be fetched or did not make sense."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Unanswered(FetchError):
    """The exchange failed before the deadline without an answer (a refused or
    broken connection)."""


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
    #: Where tokens are introspected (RFC 7662 §2, RFC 8414 §2), if the issuer says,
    #: and only at an address :func:`_allowed_url` accepts.
    introspection_endpoint: str | None = None


# -- one deadline over a whole exchange with the issuer ----------------------------
#
# Socket timeouts bound each read, not the exchange: a server (or an egress proxy)
# that sends its status line and then a header line every second never trips them,
# nor does one that drips its body. Checking a clock between reads cannot help while
# http.client is still inside the headers. So each connection opened for a fetch is
# registered with a watchdog timer that shuts the connection down at the deadline;
# every read then ends at once, whatever the phase (TLS handshake, headers, body) and
# whatever the server does. The watchdog holds a duplicate of the socket: TLS wrapping
# detaches the original socket object, and a bare descriptor number could name
# another connection once this one is closed. Connections are never reused between
# fetches, so every exchange goes through a connection the watchdog knows.
# Name resolution happens before there is a socket; it is bounded by the system
# resolver's own limits, and waiting requests are bounded regardless (KeySet).

_exchange = threading.local()


class _Watchdog:
    """Shuts down the connections of one fetch when its deadline passes."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.closed = False
        self._sockets: list[socket.socket] = []
        self._fds: set[int] = set()
        self._lock = threading.Lock()
        _SCHEDULE.add(self)

    def watch(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        with self._lock:
            if fd in self._fds:
                return  # the same connection, seen again once TLS wrapped it
            self._fds.add(fd)
            # A plain socket on a duplicate of the descriptor: an SSLSocket (a kept
            # https connection) cannot be dup()ed, and shutting the TCP connection
            # down ends its TLS reads too.
            watched = socket.fromfd(fd, sock.family, sock.type)
            self._sockets.append(watched)
            if self.expired:
                _shut(watched)

    def expire(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


class _Schedule:
    """One thread that expires every fetch's watchdog at its deadline.

    A timer thread per fetch would cost a thread start (milliseconds on a busy
    machine) on every exchange, and introspection makes many.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Watchdog]] = []
        self._order = itertools.count()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, watchdog: _Watchdog) -> None:
        with self._wakeup:
            heapq.heappush(self._heap, (watchdog.deadline, next(self._order), watchdog))
            thread = self._thread
            if thread is None or not thread.is_alive():
                # The first fetch, or the first in a forked child (threads do not
                # survive a fork).
                thread = self._thread = threading.Thread(
                    target=self._run, name="okta-pyramid-fetch-watchdog", daemon=True
                )
                thread.start()
            elif self._heap[0][2] is watchdog:
                self._wakeup.notify()

    def _run(self) -> None:
        with self._wakeup:
            while True:
                while self._heap and self._heap[0][2].closed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wakeup.wait()
                    continue
                deadline, _, watchdog = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._wakeup.wait(wait)
                    continue
                heapq.heappop(self._heap)
                watchdog.expire()


_SCHEDULE = _Schedule()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side


class _Watched:
    """Mixed into urllib3 connection classes: register each connection's socket with
    the watchdog of the exchange that uses it, when it is opened and, for a kept-alive
    connection an earlier exchange opened, when it is used again."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        watchdog = getattr(_exchange, "watchdog", None)
        if watchdog is not None:
            watchdog.watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        sock = getattr(self, "sock", None)
        watchdog = getattr(_exchange, "watchdog", None)
        if sock is not None and watchdog is not None:
            watchdog.watch(sock)
        return super().request(*args, **kwargs)  # type: ignore[misc]


@functools.cache
def _watched_pool(pool: type) -> type:
    connection = type(f"Watched{pool.ConnectionCls.__name__}", (_Watched, pool.ConnectionCls), {})
    return type(f"Watched{pool.__name__}", (pool,), {"ConnectionCls": connection})


def _watch_pools(manager: Any) -> Any:
    # Plain, https and SOCKS pools alike: the mix-in only adds the registration.
    manager.pool_classes_by_scheme = {
        scheme: _watched_pool(pool) for scheme, pool in manager.pool_classes_by_scheme.items()
    }
    return manager


def tls_context(verify: bool | str, cert: Any = None) -> ssl.SSLContext:
    """The TLS settings requests would apply for ``verify`` and ``cert``, as one
    context: the trusted authorities (requests' bundle, or the file or folder
    ``verify`` names) and the client certificate. Loading a bundle of authorities
    takes milliseconds of CPU, which requests spends on every new connection; a
    fetch opens new connections, so the client builds this once and reuses it."""
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    where = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
    if os.path.isdir(where):
        context.load_verify_locations(capath=where)
    else:
        context.load_verify_locations(cafile=where)
    if cert:
        if isinstance(cert, (tuple, list)):
            context.load_cert_chain(cert[0], cert[1])
        else:
            context.load_cert_chain(cert)
    return context


class _FetchAdapter(HTTPAdapter):
    """requests' adapter, with connections the watchdog knows; one per fetch.

    With ``tls``, https connections use that context (see :func:`tls_context`)
    instead of loading the authorities again; urllib3 still checks the server's
    certificate and host name with it.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        super().__init__()

    def build_connection_pool_key_attributes(
        self, request: Any, verify: Any, cert: Any = None
    ) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if self.tls is not None and host_params["scheme"] == "https":
            for name in ("ca_certs", "ca_cert_dir", "cert_file", "key_file"):
                pool_kwargs.pop(name, None)
            pool_kwargs["ssl_context"] = self.tls
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if self.tls is None or not url.lower().startswith("https"):
            super().cert_verify(conn, url, verify, cert)
        # else: the context carries the authorities and the client certificate.

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        if proxy in self.proxy_manager:
            return self.proxy_manager[proxy]
        return _watch_pools(super().proxy_manager_for(proxy, **kwargs))


class IssuerClient:
    """Fetches the issuer's metadata and key set over HTTP, with hard limits.

    ``http_timeout`` bounds a whole fetch: connecting, TLS, the status line, the
    headers and the body of every request it makes (discovery included), whatever
    the server does. ``session`` supplies the HTTP settings (proxies, CA bundle,
    client certificate, headers); the connections themselves are always opened here.

    With ``keep_alive`` (introspection, which asks often), connections are kept
    between exchanges: a call then costs one round trip instead of a new TCP and TLS
    handshake each time. The deadline still covers every exchange (a kept connection
    is watched by the exchange that uses it), a failed exchange drops the kept
    connections, and one that failed on a kept connection before any answer (the
    server had closed it) is tried once more on a new one, within the same deadline.
    """

    def __init__(
        self,
        issuer: str,
        *,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        session: requests.Session | None = None,
        keep_alive: bool = False,
    ) -> None:
        self.issuer = issuer
        self.http_timeout = http_timeout
        self.session = session or requests.Session()
        self.keep_alive = keep_alive
        self._kept: _FetchAdapter | None = None
        self._kept_lock = threading.Lock()
        self._metadata: IssuerMetadata | None = None
        #: TLS contexts built for the session's settings (normally one).
        self._tls: dict[tuple[Any, Any], ssl.SSLContext] = {}

    def get_json(self, url: str, *, deadline: float | None = None) -> Any:
        """GET ``url`` and parse its JSON body; raise :class:`FetchError` on anything odd.

        ``deadline`` (``time.monotonic()``) defaults to ``http_timeout`` from now.
        """
        return self.exchange("GET", url, deadline=deadline)

    def post_form(
        self,
        url: str,
        form: Mapping[str, str],
        *,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> Any:
        """POST ``form`` (``application/x-www-form-urlencoded``) to ``url`` and parse the
        JSON answer, with the limits of :meth:`get_json`, and as strictly as a token's
        claims: no NaN or Infinity (not JSON, RFC 8259 §6), no name given twice."""
        # The answer becomes a token's claims (an introspection answer), which are
        # re-read strictly later: what passes here must pass there, and a repeated
        # "active" must not be read as its last value.
        return self.exchange(
            "POST", url, form=form, headers=headers, deadline=deadline, strict=True
        )

    def exchange(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        strict: bool = False,
    ) -> Any:
        """One request to the issuer, and its JSON answer: HTTP 200 only, redirects
        not followed, at most :data:`MAX_DOCUMENT_BYTES`, all of it before
        ``deadline``; with ``strict``, JSON as :func:`._jws.loads` reads it. Raises
        :class:`FetchError`, whose message never holds the request's form or headers
        (they may carry a token or a secret)."""
        if deadline is None:
            deadline = time.monotonic() + self.http_timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"{url} not fetched: took longer than {self.http_timeout:g}s")
        session = self.session
        # Redirects are not followed: the metadata names the URLs to use.
        request = session.prepare_request(
            requests.Request(
                method,
                url,
                headers={"Accept": "application/json", **(headers or {})},
                data=dict(form) if form is not None else None,
            )
        )
        # None, not True: the session's own verify (a CA bundle, say) then applies.
        env = session.merge_environment_settings(request.url, {}, None, None, None)
        tls = self._tls_for(env["verify"], env["cert"])
        watchdog = _exchange.watchdog = _Watchdog(deadline)
        try:
            if not self.keep_alive:
                adapter = _FetchAdapter(tls)
                try:
                    body = self._send(adapter, request, env, deadline, url, watchdog)
                finally:
                    adapter.close()
            else:
                body = self._send_kept(tls, request, env, deadline, url, watchdog)
        finally:
            _exchange.watchdog = None
            watchdog.close()
        if watchdog.expired:
            # The watchdog's shutdown can read as the end of the body: it is not the whole.
            raise FetchError(f"{url} took longer than {self.http_timeout:g}s")
        try:
            return _jws.loads(bytes(body)) if strict else json.loads(body)
        except (ValueError, RecursionError):
            raise FetchError(f"{url} did not return JSON") from None

    def _send(
        self,
        adapter: _FetchAdapter,
        request: Any,
        env: dict[str, Any],
        deadline: float,
        url: str,
        watchdog: _Watchdog,
    ) -> bytearray:
        """The body of a 200 answer to ``request``, or :class:`FetchError`."""
        remaining = max(0.001, deadline - time.monotonic())
        body = bytearray()
        try:
            with adapter.send(
                request,
                stream=True,
                timeout=(remaining, remaining),
                verify=env["verify"],
                cert=env["cert"],
                proxies=env["proxies"],
            ) as response:
                if response.status_code != 200:
                    raise FetchError(
                        f"{url} answered HTTP {response.status_code}", status=response.status_code
                    )
                while True:
                    chunk = response.raw.read1(16384, decode_content=True)
                    if not chunk:
                        break
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise FetchError(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,
        ) as exc:
            if watchdog.expired:
                raise FetchError(f"{url} took longer than {self.http_timeout:g}s") from None
            raise _Unanswered(f"{url} could not be fetched ({type(exc).__name__})") from None
        return body

    def _send_kept(
        self,
        tls: ssl.SSLContext | None,
        request: Any,
        env: dict[str, Any],
        deadline: float,
        url: str,
        watchdog: _Watchdog,
    ) -> bytearray:
        for attempt in (1, 2):
            with self._kept_lock:
                adapter = self._kept
                reused = adapter is not None and adapter.tls is tls
                if not reused:
                    if adapter is not None:
                        adapter.close()
                    adapter = self._kept = _FetchAdapter(tls)
            try:
                return self._send(adapter, request, env, deadline, url, watchdog)
            except FetchError as exc:
                # Whatever failed, nothing of it is kept: the next exchange starts anew.
                with self._kept_lock:
                    if self._kept is adapter:
                        self._kept = None
                adapter.close()
                if attempt == 2 or not reused or not isinstance(exc, _Unanswered):
                    raise
                # A kept connection the server had closed: once more on a new one.
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connections kept between exchanges (``keep_alive``)."""
        with self._kept_lock:
            adapter, self._kept = self._kept, None
        if adapter is not None:
            adapter.close()

    def _tls_for(self, verify: Any, cert: Any) -> ssl.SSLContext | None:
        if verify is False:
            return None  # the session turned verification off: requests' own way
        key = (verify, tuple(cert) if isinstance(cert, list) else cert)
        context = self._tls.get(key)
        if context is None:
            try:
                context = self._tls[key] = tls_context(verify, cert)
            except (OSError, ssl.SSLError, ValueError):
                return None  # requests reports the unreadable file on the fetch
        return context

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


def parse_jwks(document: Any) -> tuple[dict[str, RSAPublicKey], str]:
    """Keep the RSA signature keys of a JWK Set (RFC 7517) that can verify RS256."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise FetchError("the key set is not a JSON object with a 'keys' array")
    keys: dict[str, RSAPublicKey] = {}
    used: list[dict[str, Any]] = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            # A token names its key; one without a name could verify none.
            log.warning("issuer key set: an RSA key has no kid; ignored")
            continue
        if kid in keys:
            log.warning("issuer key set: key %r is listed twice; the first is used", kid[:64])
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
        problem, key = _rsa_public_key(jwk.get("n"), jwk.get("e"))
        if key is None:
            log.warning("issuer key set: key %r %s; ignored", kid[:64], problem)
            continue
        keys[kid] = key
        used.append({"kid": kid, "n": jwk["n"], "e": jwk["e"]})
    if not keys:
        # No key could verify any token: keep the keys held (stale rather than
        # failing) and answer 503, rather than refuse every valid token as 401.
        raise FetchError("the key set has no usable RS256 signing key")
    fingerprint = json.dumps(used, sort_keys=True)
    return keys, fingerprint


def _uint(value: Any) -> int | None:
    """A Base64urlUInt (RFC 7518 §2): base64url without padding, in its one canonical
    spelling (RFC 4648 §3.5: spare bits zero), of a minimal big-endian integer (no
    leading zero octet, RFC 7518 §6.3.1.1). ``None`` for anything else."""
    try:
        octets = b64url_decode(value)
    except MalformedToken:
        return None
    if not octets or octets[0] == 0:
        return None
    return int.from_bytes(octets, "big")


def _rsa_public_key(n_text: Any, e_text: Any) -> tuple[str, RSAPublicKey | None]:
    """The RSA public key of ``n`` and ``e``, or why it is not trusted."""
    n, e = _uint(n_text), _uint(e_text)
    if n is None or e is None:
        return "has a modulus or exponent that is not a minimal base64url integer", None
    if n.bit_length() < MIN_RSA_BITS:
        return f"is shorter than {MIN_RSA_BITS} bits", None
    # An even modulus is not a product of two large primes; a small or even exponent
    # is not one a sound key generator produces (RFC 8017 §3.1, NIST SP 800-56B).
    if n % 2 == 0:
        return "has an even modulus", None
    if e % 2 == 0:
        return "has an even exponent", None
    if e < MIN_RSA_EXPONENT or e >= n:
        return f"has an exponent below {MIN_RSA_EXPONENT} (or not below the modulus)", None
    try:
        return "", RSAPublicNumbers(e, n).public_key()
    except ValueError:
        return "is not a valid RSA public key", None


class KeySet:
    """The issuer's signing keys by ``kid``, held in memory.

    - A known ``kid`` is a dictionary lookup: no lock, no I/O.
    - An unknown ``kid`` causes at most one refetch per ``refetch_cooldown``, so made-up
      ``kid`` values cannot make us hammer the issuer; a rotated-in key is found that way.
    - Concurrent callers that need a fetch share one (single flight). A fetch ends by
      its deadline (the client's ``http_timeout``), and nobody waits for it past that
      deadline. Every caller waits for a fetch that runs its normal time (its
      :class:`~.capacity.Progress` patience: a quarter of the timeout, or more for an
      issuer whose fetches are slower); once it runs longer, only ``max_waiters``
      callers go on waiting, so a stalled issuer holds a few server threads, never
      all of them. The others are answered then: :class:`IssuerUnavailable`, or
      :class:`UnknownKey` where the ``kid`` is certainly unknown (see
      :meth:`_certainly_unknown`).
    - A failed fetch keeps the keys already held (stale rather than failing) and is not
      retried for ``failure_backoff`` seconds.
    """

    def __init__(
        self,
        client: IssuerClient,
        *,
        refetch_cooldown: float = DEFAULT_JWKS_REFETCH_COOLDOWN,
        failure_backoff: float | None = None,
        max_waiters: int = DEFAULT_MAX_WAITERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.refetch_cooldown = refetch_cooldown
        self.failure_backoff = (
            min(DEFAULT_FAILURE_BACKOFF, refetch_cooldown)
            if failure_backoff is None
            else failure_backoff
        )
        self.max_waiters = max_waiters
        self._clock = clock
        self._keys: dict[str, RSAPublicKey] = {}
        self._fingerprint: str | None = None
        self._lock = threading.Lock()
        #: Callers waiting for a fetch however long it runs (at most ``max_waiters``).
        self._waiting = 0
        self._waiting_lock = threading.Lock()
        #: ``time.monotonic()`` by which the fetch holding ``_lock`` ends.
        self._fetch_deadline = 0.0
        #: How long fetches take, and when the one under way counts as running long.
        self.progress = Progress(client.http_timeout)
        self._attempts = 0
        self._last_attempt: float | None = None
        self._loaded_attempt: float | None = None
        self._last_error: str | None = None
        self.loaded_at: float | None = None
        #: Increases whenever the set of keys changes (a key added or removed).
        self.generation = 0
        #: Key set fetches attempted, and those that failed (for metrics).
        self.fetches = 0
        self.fetch_failures = 0

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
            shared = self._refresh(attempt, limited=True)
            key = self._keys.get(kid)
            if key is not None:
                return key
            if not shared:
                if self._certainly_unknown():
                    raise UnknownKey("the token's key id (kid) is not in the issuer's key set")
                raise self._unavailable(self._fetch_deadline - time.monotonic())
        if self._last_error is not None:
            raise self._unavailable(self._time_until_due())
        raise UnknownKey("the token's key id (kid) is not in the issuer's key set")

    def refresh(self) -> bool:
        """Fetch the key set now (single flight); True if keys are held afterwards
        and the fetch (this one, or the one under way it shared) ended in time."""
        return self._refresh(self._attempts, limited=False) and bool(self._keys)

    def _refresh(self, attempt: int, *, limited: bool) -> bool:
        """Fetch, unless a fetch has ended since ``attempt`` was read; False when a
        fetch under way could not be waited for (too many waiting, or past its end)."""
        if not self._lock.acquire(blocking=False) and not self._wait_for_fetch(limited):
            return False
        try:
            if self._attempts == attempt:
                self._fetch()
            # else: another thread fetched since `attempt` was read; use its result.
        finally:
            self._lock.release()
        return True

    def _wait_for_fetch(self, limited: bool) -> bool:
        """Wait for the fetch under way, never past its deadline; True with the lock
        held. With ``limited``, a caller beyond ``max_waiters`` waits only while the
        fetch runs its normal time."""
        with self._waiting_lock:
            patient = not limited or self._waiting < self.max_waiters
            if patient:
                self._waiting += 1
        try:
            now = time.monotonic()
            # The fetch's own deadline, or, before its thread has set it (or when it
            # overran it, resolving a name say), at most a whole timeout from now.
            until = self._fetch_deadline
            if until <= now:
                until = now + self.client.http_timeout
            if not patient:
                until = min(until, self.progress.stalled_at())
                if until <= now:
                    return False
            return self._lock.acquire(timeout=until - now + (_HANDOVER if patient else 0))
        finally:
            if patient:
                with self._waiting_lock:
                    self._waiting -= 1

    def _certainly_unknown(self) -> bool:
        """Whether a ``kid`` missing from the keys held is unknown without a fetch.

        True when the keys held come from a fetch that succeeded and began less than
        ``refetch_cooldown`` ago: with no fetch under way, such a ``kid`` is refused
        without asking the issuer (a made-up one), so a fetch that could not be
        waited for changes nothing. Otherwise the ``kid`` may belong to a key that
        fetch is bringing, and the answer is "unavailable, try again".
        """
        started = self._loaded_attempt
        return (
            self._last_error is None
            and started is not None
            and self._clock() - started < self.refetch_cooldown
        )

    def _fetch(self) -> None:
        self._fetch_deadline = time.monotonic() + self.client.http_timeout
        started = self._last_attempt = self._clock()
        self.progress.started()
        began = time.perf_counter()
        answered = False
        try:
            keys, fingerprint = self.client.fetch_keys(deadline=self._fetch_deadline)
            answered = True
        except FetchError as exc:
            answered = exc.status is not None
            self.fetch_failures += 1
            self._last_error = str(exc)
            log.warning(
                "could not fetch the issuer's keys: %s; keeping %d held key(s)",
                exc,
                len(self._keys),
            )
            return
        finally:
            self._attempts += 1
            self.fetches += 1
            self.progress.finished(time.perf_counter() - began if answered else None)
        if fingerprint != self._fingerprint:
            if self._fingerprint is not None:
                log.info("issuer key set changed: %d key(s) now", len(keys))
            self._keys = keys
            self._fingerprint = fingerprint
            self.generation += 1
        self._last_error = None
        self._loaded_attempt = started
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
