"""State that several processes share, on Redis: DPoP proofs seen, introspection answers.

One waitress process remembers only what it saw. Behind a load balancer, a DPoP
proof refused as a replay by one process would be accepted by the next, and a
revocation one process has learned would stay unknown to the others. With a
:class:`RedisStore` they share one memory::

    store = RedisStore("redis://127.0.0.1:6379/0", timeout=0.5)
    DPoPVerifier(replay_store=store.replays)
    TokenIntrospector(client, authentication, rules=verifier, shared=store.answers)

The rules, and why:

- a proof is remembered with one atomic ``SET key value NX PX ttl``: of two
  processes given the same proof at the same moment, exactly one is told it is new
  (RFC 9449 §11.1). The value is random, each call's own, so that a call whose
  reply was lost and retried knows its own write from another's. The expiry is
  relative (``PX``), so Redis's clock plays no part;
- keys are ``okta_pyramid:`` followed by digests only (the proof's key thumbprint
  and ``jti`` hashed, the token's SHA-256): never a token, a proof or a claim;
- every call is bounded by ``timeout`` (connecting, sending and reading; not the
  name resolution, which redis-py leaves to the system resolver). A failed
  or late call raises :class:`SharedStoreUnavailable` (HTTP 503 with
  ``Retry-After``): never an accepted replay. After a failure the store is not
  asked again for ``failure_backoff`` seconds, so a Redis that hangs holds no
  server thread for a whole timeout per request;
- a failure is logged once per incident (and its end once), without the URL's
  password; :attr:`RedisStore.failures` counts them;
- an introspection entry is shared for at most :data:`MAX_ENTRY_LIFETIME`, and one
  that is not JSON this store could have written is a miss.

redis-py is imported when a store is made, so this module imports without it
(``pip install okta_pyramid[redis]``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._jws import loads
from .exceptions import VerificationError
from .urls import split_authority

log = logging.getLogger(__name__)

#: Every key starts with this.
PREFIX = "okta_pyramid:"
#: Seconds one Redis call may take, connecting included but not resolving the
#: host name (``okta.shared_store_timeout``).
DEFAULT_TIMEOUT = 0.5
#: After a failed call, the store is not asked again for this long (seconds).
DEFAULT_FAILURE_BACKOFF = 1.0
#: An introspection answer larger than this is not shared (it is still used).
MAX_ANSWER_BYTES = 64 * 1024
#: Seconds an introspection answer is shared at most: the longest an answer is
#: reused (``okta.introspection_cache_ttl`` is at most an hour, and an inactive
#: answer for a token whose expiry is unknown is kept an hour). Longer answers are
#: shared for this long; an entry that claims more was not written by this store.
MAX_ENTRY_LIFETIME = 3600
#: Random bytes a replay check writes under a proof's key: the call's own mark
#: (see :class:`RedisReplayStore`).
REPLAY_MARK_BYTES = 16
#: The only options a store URL may carry (``rediss://`` only): the files of TLS.
#: redis-py lets any URL option win over what the store sets, so others (a timeout,
#: ``ssl_cert_reqs=none``, an unknown name that fails every call) are refused.
URL_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


class SharedStoreUnavailable(VerificationError):
    """The shared store did not answer in time, so the request cannot be judged.

    Not the client's fault, and not a verdict on its credentials: answer it like an
    overload (HTTP 503 with ``Retry-After``).
    """

    reason = "shared_store_unavailable"

    def __init__(self, description: str, retry_after: int = 1) -> None:
        super().__init__(description)
        self.retry_after = max(1, int(retry_after))


# What an address may show: a scheme, a host name or IP address, a port, a database.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,19}")
_DATABASE = re.compile(r"/[0-9]{0,5}")
# A host shown in messages: a plain name or an IP literal. RFC 3986 allows more in a
# host (";=!$&'()*+," and %XX), which a password typed without its "@" could fill.
_SHOWN_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]")


def display_address(url: str) -> str:
    """``scheme://host:port/db`` of a Redis URL, without its user name and password."""
    scheme, host, port, database = _address(url)
    return f"{scheme}://{host}{port}{database}"


def _address(url: str) -> tuple[str, str, str, str]:
    """The scheme, host, ``:port`` and ``/db`` of a URL, each ``""`` when unclear.

    A ``/``, ``?`` or ``#`` left unencoded in a password ends the URL's authority
    early: the rest of the password reads as the path, the query or the fragment.
    So the address is taken after the last ``@``, where no user information can
    be, and only what has the form of a host, a port and a database is kept.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    rest = re.split(r"[?#]", rest.rpartition("@")[2], maxsplit=1)[0]
    authority, slash, path = rest.partition("/")
    try:
        host, port = split_authority(authority)
    except ValueError:
        host = port = ""
    if not _SHOWN_HOST.fullmatch(host):
        host = port = ""
    return (
        scheme if _SCHEME.fullmatch(scheme) else "",
        host,
        f":{port}" if port else "",
        slash + path if _DATABASE.fullmatch(slash + path) else "",
    )


def _client(url: str, timeout: float) -> Any:
    """A redis-py client for ``url``; a :class:`ValueError` that quotes no part of
    the URL but its scheme and host."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    scheme, host, _, _ = _address(url)
    where = f"{scheme}://{host}"
    try:
        parts = urlsplit(url)
        options = parse_qs(parts.query, keep_blank_values=True)
    except ValueError:
        raise ValueError(f"the store URL ({where}) is not a URL") from None
    if "@" in parts.path + parts.query + parts.fragment:
        # A "/", "?" or "#" in the password ended the authority early: redis-py
        # would read part of the password as the host, the port or the database.
        raise ValueError(
            "the store URL's user name or password holds a character "
            "that must be percent-encoded (/ as %2F, ? as %3F, # as %23, "
            "@ as %40)"
        )
    if set(options) - set(URL_OPTIONS) or (options and parts.scheme != "rediss"):
        raise ValueError(
            f"a store URL may carry only {', '.join(URL_OPTIONS)}, and only with rediss://"
        )
    # Named rather than left to redis-py's defaults (before redis-py 6 the
    # host name was not checked).
    tls = (
        {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
        if parts.scheme == "rediss"
        else {}
    )
    try:
        # One immediate retry after a broken connection (Redis restarted, the
        # pool's socket is dead), none after a timeout: a slow Redis costs one
        # timeout, not several.
        return redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            retry_on_timeout=False,
            **tls,
        )
    except (ValueError, TypeError):
        # redis-py's message quotes what it could not read, which may be part of
        # the password ("redis://:secret" reads the password as the port).
        raise ValueError(
            f"the store URL ({where}) is not a Redis URL: "
            f"redis://[[user]:password@]host:port/db, or rediss:// for "
            f"TLS"
        ) from None


class RedisStore:
    """One connection pool to Redis, and the two stores that use it. Thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        failure_backoff: float = DEFAULT_FAILURE_BACKOFF,
        prefix: str = PREFIX,
        clock: Callable[[], float] = time.time,
        client: Any = None,
    ) -> None:
        import redis

        if client is None:
            client = _client(url, timeout)
        self.client = client
        self.address = display_address(url)
        self.timeout = timeout
        self.failure_backoff = failure_backoff
        self.prefix = prefix
        self.clock = clock
        #: Calls that failed or took too long, since start.
        self.failures = 0
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._incident = False
        self._errors = (redis.RedisError, OSError)
        #: The DPoP replay store (:class:`~.replay.ReplayStore`).
        self.replays = RedisReplayStore(self)
        #: The introspection answer store.
        self.answers = RedisAnswerStore(self)

    def __repr__(self) -> str:  # never the password
        return f"<RedisStore {self.address}>"

    def call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """``client.<operation>(*args, **kwargs)``, or :class:`SharedStoreUnavailable`."""
        wait = self._paused_until - time.monotonic()
        if wait > 0:
            raise self._unavailable(wait)
        try:
            result = getattr(self.client, operation)(*args, **kwargs)
        except self._errors as exc:
            self._failed(operation, exc)
            raise self._unavailable(self.failure_backoff) from None
        if self._incident:
            self._recovered()
        return result

    def ping(self) -> bool:
        """Whether the store answers now (``/readyz``); never raises."""
        try:
            return bool(self.call("ping"))
        except SharedStoreUnavailable:
            return False

    @property
    def available(self) -> bool:
        """False while the store is paused after a failure."""
        return time.monotonic() >= self._paused_until

    def key(self, kind: str, digest: bytes) -> str:
        return f"{self.prefix}{kind}:{digest.hex()}"

    def _unavailable(self, wait: float) -> SharedStoreUnavailable:
        return SharedStoreUnavailable(
            "the shared state store is not answering; try again shortly",
            retry_after=math.ceil(wait) if wait > 0 else 1,
        )

    def _failed(self, operation: str, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self._paused_until = time.monotonic() + self.failure_backoff
            first, self._incident = not self._incident, True
        # Once per incident; the exception's type says what kind (never its text,
        # which may quote a command's arguments).
        if first:
            log.warning(
                "shared store %s failed (%s on %s); requests that need it are "
                "answered 503 until it works again",
                self.address,
                type(exc).__name__,
                operation,
            )
        else:
            log.debug(
                "shared store %s failed again (%s on %s)",
                self.address,
                type(exc).__name__,
                operation,
            )

    def _recovered(self) -> None:
        with self._lock:
            was, self._incident = self._incident, False
        if was:
            log.warning("shared store %s works again", self.address)


class RedisReplayStore:
    """A :class:`~.replay.ReplayStore` on Redis: one ``SET NX PX`` per proof.

    The client retries a call once when the connection breaks (see
    :class:`RedisStore`). When Redis carried out the ``SET`` and only its reply was
    lost, the retry finds the key: each call writes a random value of its own, so
    that, finding the key, it can tell its own write (the proof is new) from
    another's (a replay) with one ``GET``.
    """

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    def add_if_absent(self, key: bytes, expires_at: float, owner: str | None = None) -> bool:
        # ``owner`` is not bounded here: Redis's memory is (docs/deployment.md).
        store = self.store
        # At least one millisecond: PX 0 is an error, and the proof is valid until then.
        ttl_ms = max(1, math.ceil((expires_at - store.clock()) * 1000))
        name = store.key("dpop", key)
        mark = secrets.token_bytes(REPLAY_MARK_BYTES)
        if store.call("set", name, mark, nx=True, px=ttl_ms):
            return True
        return bool(store.call("get", name) == mark)


class RedisAnswerStore:
    """Introspection answers, by token digest, each kept until its own expiry.

    An entry is the issuer's answer document and the time (``time.time()``) until
    which it may be used, as JSON; whoever reads it judges the document again
    under its own rules (the reader's clock decides ``exp``). An entry lives at
    most :data:`MAX_ENTRY_LIFETIME` seconds.
    """

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    def get(self, scope: bytes, digest: bytes) -> tuple[dict[str, Any], float] | None:
        """``(document, until)`` for a token, or ``None``."""
        raw = self.store.call("get", self.store.key("introspection", scope + digest))
        if raw is None or len(raw) > MAX_ANSWER_BYTES:
            return None
        try:
            # Strict: no NaN or Infinity, no member named twice, UTF-8 only.
            entry = loads(raw)
            document, until = entry["answer"], entry["until"]
        except (ValueError, TypeError, KeyError, RecursionError):
            # Written by something else (RecursionError: nested too deep): a miss,
            # and the call overwrites it.
            return None
        now = self.store.clock()
        if (
            not isinstance(document, dict)
            or not isinstance(document.get("active"), bool)
            or not isinstance(until, (int, float))
            or isinstance(until, bool)
            or not now < until <= now + MAX_ENTRY_LIFETIME
        ):
            # Not an answer this store wrote (it writes no "until" beyond the longest
            # lifetime, nor one that is not a finite number), or one past its time.
            return None
        return document, float(until)

    def put(self, scope: bytes, digest: bytes, document: dict[str, Any], until: float) -> None:
        """Share ``document`` until ``until`` (a ``time.time()`` value), or for
        :data:`MAX_ENTRY_LIFETIME` seconds if that is sooner."""
        now = self.store.clock()
        until = min(until, now + MAX_ENTRY_LIFETIME)
        ttl_ms = math.ceil((until - now) * 1000)
        if ttl_ms <= 0:
            return
        value = json.dumps({"until": until, "answer": document}, separators=(",", ":"))
        if len(value) > MAX_ANSWER_BYTES:
            return
        self.store.call(
            "set", self.store.key("introspection", scope + digest), value.encode("utf-8"), px=ttl_ms
        )
