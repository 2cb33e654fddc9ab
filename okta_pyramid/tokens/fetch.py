"""One bounded HTTP exchange with an issuer: GET or POST, a JSON answer, one
deadline over all of it (a watchdog thread cuts the connections at the deadline),
a size cap, no redirects, one TLS context per client.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal, cast

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.util.ssl_ import create_urllib3_context

from . import _jws

# Okta's documents are a few KiB; anything this large is not a key set.
MAX_DOCUMENT_BYTES = 512 * 1024
#: Seconds allowed for one exchange with the issuer.
DEFAULT_HTTP_TIMEOUT = 5.0


class FetchError(Exception):
    """A document could not be fetched or did not make sense."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Unanswered(FetchError):
    """The exchange failed before the deadline without an answer (a refused or
    broken connection)."""


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
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    """Mixed into urllib3 connection classes: register each connection's socket with
    the watchdog of the exchange that uses it, when it is opened and, for a kept-alive
    connection an earlier exchange opened, when it is used again."""

    def _new_conn(self) -> socket.socket:
        # (The ignore: a mix-in's super() is the urllib3 connection class that
        # follows it in the MRO, which mypy cannot see from here.)
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        watchdog = getattr(_exchange, "watchdog", None)
        if watchdog is not None:
            watchdog.watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        sock = getattr(self, "sock", None)
        watchdog = getattr(_exchange, "watchdog", None)
        if sock is not None and watchdog is not None:
            watchdog.watch(sock)
        return super().request(*args, **kwargs)  # type: ignore[misc]  # as in _new_conn


@functools.cache
def _watched_pool(pool: type[Any]) -> type[Any]:
    connection = type(f"Watched{pool.ConnectionCls.__name__}", (_Watched, pool.ConnectionCls), {})
    return type(f"Watched{pool.__name__}", (pool,), {"ConnectionCls": connection})


def _watch_pools(manager: Any) -> Any:
    # Plain, https and SOCKS pools alike: the mix-in only adds the registration.
    manager.pool_classes_by_scheme = {
        scheme: _watched_pool(pool) for scheme, pool in manager.pool_classes_by_scheme.items()
    }
    return manager


def tls_context(verify: Literal[True] | str, cert: Any = None) -> ssl.SSLContext:
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
            kwargs = cast("dict[str, Any]", pool_kwargs)  # a TypedDict: no pop by a variable
            for name in ("ca_certs", "ca_cert_dir", "cert_file", "key_file"):
                kwargs.pop(name, None)
            kwargs["ssl_context"] = self.tls
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if self.tls is None or not url.lower().startswith("https"):
            # types-requests leaves cert_verify unannotated.
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        # else: the context carries the authorities and the client certificate.

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        if proxy in self.proxy_manager:
            return self.proxy_manager[proxy]
        return _watch_pools(super().proxy_manager_for(proxy, **kwargs))


class Fetcher:
    """Fetches JSON documents from an issuer over HTTP, with hard limits.

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
        *,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        session: requests.Session | None = None,
        keep_alive: bool = False,
    ) -> None:
        self.http_timeout = http_timeout
        self.session = session or requests.Session()
        self.keep_alive = keep_alive
        self._kept: _FetchAdapter | None = None
        self._kept_lock = threading.Lock()
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
        # (prepare_request always sets the URL; typeshed allows None.)
        env = session.merge_environment_settings(cast(str, request.url), {}, None, None, None)
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
        env: Mapping[str, Any],
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
        env: Mapping[str, Any],
        deadline: float,
        url: str,
        watchdog: _Watchdog,
    ) -> bytearray:
        for attempt in (1, 2):
            with self._kept_lock:
                kept = self._kept
                reused = kept is not None and kept.tls is tls
                if kept is not None and reused:
                    adapter = kept
                else:
                    if kept is not None:
                        kept.close()
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
