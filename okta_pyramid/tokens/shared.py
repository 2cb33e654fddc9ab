"""State that several processes share, on Redis: DPoP proofs seen, introspection answers.

One waitress process remembers only what it saw. Behind a load balancer, a DPoP
proof refused as a replay by one process would be accepted by the next, and a
revocation one process has learned would stay unknown to the others. With a
:class:`RedisStore` they share one memory::

    store = RedisStore("redis://127.0.0.1:6379/0", timeout=0.5)
    DPoPVerifier(replay_store=store.replays)
    TokenIntrospector(client, authentication, rules=verifier, shared=store.answers)

The store is one Redis server (``redis://``, ``rediss://``), the primary that Redis
Sentinel names (``redis+sentinel://host:26379,host:26379/service``, found again
after a failover) or a Redis Cluster (``redis+cluster://host:6379,host:6379``);
``rediss+`` for TLS.

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
  password; :attr:`RedisStore.failures` counts them. In a cluster the pause and
  the incident are the node's: a node's loss fails closed for its slots only;
- every key is written and read by a single-key command, so in a cluster each
  call goes to the one node that owns its key (no two keys need share a slot);
- with ``min_replicas`` (``okta.shared_store_min_replicas``), a proof's mark is
  followed, on the same connection, by ``WAIT min_replicas``: a proof is new only
  once that many replicas hold its mark, so a failover to one of them cannot
  accept it again. Replicas that do not answer within half the timeout make the
  request fail closed, as a silent Redis does;
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
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

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
#: The schemes of a store of several Redis servers, and what each names.
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
#: The port of a sentinel, and of a cluster node, when the URL names none.
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_CLUSTER_PORT = 6379
#: The most replicas ``okta.shared_store_min_replicas`` may wait for.
MAX_MIN_REPLICAS = 16
#: Cluster redirects (``MOVED``, ``ASK``) a replay mark with ``WAIT`` follows.
MAX_REDIRECTS = 3


class SharedStoreUnavailable(VerificationError):
    """The shared store did not answer in time, so the request cannot be judged.

    Not the client's fault, and not a verdict on its credentials: answer it like an
    overload (HTTP 503 with ``Retry-After``).
    """

    reason = "shared_store_unavailable"

    def __init__(self, description: str, retry_after: int = 1) -> None:
        super().__init__(description)
        self.retry_after = max(1, int(retry_after))


# What an address may show: a scheme, a host name or IP address, a port, a database
# (or a Sentinel service name).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,19}")
_DATABASE = re.compile(r"/[0-9]{0,5}")
_SERVICE = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A host shown in messages: a plain name or an IP literal. RFC 3986 allows more in a
# host (";=!$&'()*+," and %XX), which a password typed without its "@" could fill.
_SHOWN_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]")


def display_address(url: str) -> str:
    """``scheme://host:port/db`` of a Redis URL (``scheme://host:port,host:port/service``
    for Sentinel or a cluster), without its user name and password."""
    scheme, hosts, path = _address(url)
    return f"{scheme}://{','.join(hosts)}{path}"


def _address(url: str) -> tuple[str, list[str], str]:
    """The scheme, the ``host[:port]`` of each server, and the ``/db`` (or
    ``/service``) of a URL; a part that is unclear is left out.

    A ``/``, ``?`` or ``#`` left unencoded in a password ends the URL's authority
    early: the rest of the password reads as the path, the query or the fragment.
    So the address is taken after the last ``@``, where no user information can
    be, and only what has the form of hosts, ports and a database is kept.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    rest = re.split(r"[?#]", rest.rpartition("@")[2], maxsplit=1)[0]
    authority, slash, path = rest.partition("/")
    hosts: list[str] = []
    for server in authority.split(","):
        try:
            host, port = split_authority(server)
        except ValueError:
            hosts = []
            break
        if not _SHOWN_HOST.fullmatch(host):
            hosts = []
            break
        hosts.append(host + (f":{port}" if port else ""))
    several = scheme.lower() in SENTINEL_SCHEMES + CLUSTER_SCHEMES
    if not several:
        hosts = hosts[:1] if len(hosts) == 1 else []
    shown = slash + path
    if not (_DATABASE.fullmatch(shown) or (several and _SERVICE.fullmatch(path))):
        shown = ""
    return scheme if _SCHEME.fullmatch(scheme) else "", hosts, shown


@dataclass(frozen=True)
class Servers:
    """What a ``redis+sentinel://`` or ``redis+cluster://`` URL names."""

    #: ``sentinel`` or ``cluster``.
    kind: str
    tls: bool
    #: The sentinels, or the cluster's nodes to start from: ``(host, port)``.
    nodes: tuple[tuple[str, int], ...]
    #: The name of the service Sentinel watches; ``""`` for a cluster.
    service: str = ""
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    #: The TLS files (:data:`URL_OPTIONS`) the URL names.
    options: tuple[tuple[str, str], ...] = ()


def split_servers(url: str) -> Servers:
    """Read a ``redis+sentinel://`` or ``redis+cluster://`` URL (``rediss+`` for TLS).

    :raises ValueError: with a message that quotes no part of the URL but its
        scheme, a host or a service name.
    """
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    sentinel = scheme in SENTINEL_SCHEMES
    if not sentinel and scheme not in CLUSTER_SCHEMES:
        raise ValueError("not a redis+sentinel:// or redis+cluster:// URL")
    form = (
        f"{scheme}://[user:password@]host:26379,host:26379/service_name"
        if sentinel
        else f"{scheme}://[user:password@]host:6379,host:6379"
    )
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError("must be one URL, with no spaces, line breaks or control characters")
    if "#" in rest:
        raise ValueError(
            "must not contain a fragment (a # in the password is percent-encoded as %23)"
        )
    rest, _, query = rest.partition("?")
    userinfo, at, rest = rest.rpartition("@")
    if "@" in query or "/" in userinfo:
        # A "/" or "?" in the password ended the authority early.
        raise ValueError(
            "the user name or password holds a character that must be percent-encoded "
            "(/ as %2F, ? as %3F, # as %23, @ as %40)"
        )
    authority, _, path = rest.partition("/")
    nodes: list[tuple[str, int]] = []
    for server in authority.split(","):
        try:
            host, port = split_authority(server)
        except ValueError:
            raise ValueError(f"each server is host:port, separated by commas: {form}") from None
        default = DEFAULT_SENTINEL_PORT if sentinel else DEFAULT_CLUSTER_PORT
        nodes.append((host.strip("[]"), int(port) if port else default))
    if sentinel and not _SERVICE.fullmatch(path):
        raise ValueError(f"names the sentinels and the service they watch: {form}")
    if not sentinel and path:
        raise ValueError(f"names the cluster's nodes, and no database (a cluster has one): {form}")
    username: str | None = None
    password: str | None = None
    if at:
        name, colon, secret = userinfo.partition(":")
        username = unquote(name) or None
        password = unquote(secret) if colon else None
    options = parse_qs(query, keep_blank_values=True)
    if set(options) - set(URL_OPTIONS) or (options and not scheme.startswith("rediss")):
        raise ValueError(f"the URL may carry only {', '.join(URL_OPTIONS)}, and only with rediss+")
    if any(len(files) != 1 for files in options.values()):
        raise ValueError("each TLS option names one file")
    return Servers(
        "sentinel" if sentinel else "cluster",
        scheme.startswith("rediss"),
        tuple(nodes),
        path if sentinel else "",
        username,
        password,
        tuple((name, files[0]) for name, files in options.items()),
    )


def _connection_options(timeout: float, tls: bool) -> dict[str, Any]:
    """What every connection to a store is given: the timeout, one retry after a
    broken connection, certificate checks with TLS."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        # One immediate retry after a broken connection (Redis restarted, the
        # pool's socket is dead), none after a timeout: a slow Redis costs one
        # timeout, not several.
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        "retry_on_timeout": False,
        # Named rather than left to redis-py's defaults (before redis-py 6 the
        # host name was not checked).
        **({"ssl_cert_reqs": "required", "ssl_check_hostname": True} if tls else {}),
    }


def _client(url: str, timeout: float) -> Any:
    """A redis-py client for ``url`` (a cluster's: a function that makes it); a
    :class:`ValueError` that quotes no part of the URL but its scheme and host."""
    import redis

    scheme, hosts, _ = _address(url)
    where = f"{scheme}://{hosts[0] if hosts else ''}"
    if scheme.lower() in SENTINEL_SCHEMES + CLUSTER_SCHEMES:
        return _servers_client(split_servers(url), timeout)
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
    try:
        return redis.Redis.from_url(url, **_connection_options(timeout, parts.scheme == "rediss"))
    except (ValueError, TypeError):
        # redis-py's message quotes what it could not read, which may be part of
        # the password ("redis://:secret" reads the password as the port).
        raise ValueError(
            f"the store URL ({where}) is not a Redis URL: "
            f"redis://[[user]:password@]host:port/db, or rediss:// for "
            f"TLS"
        ) from None


def _servers_client(servers: Servers, timeout: float) -> Any:
    """The primary's client through Sentinel, or a function that makes a cluster's
    client (redis-py's asks the cluster for its slots as it is made)."""
    from redis.backoff import NoBackoff
    from redis.cluster import ClusterNode, RedisCluster
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    options = {
        # retry_on_timeout is off unless asked for (and deprecated as an argument).
        **{
            k: v
            for k, v in _connection_options(timeout, servers.tls).items()
            if k != "retry_on_timeout"
        },
        **({"ssl": True} if servers.tls else {}),
        **dict(servers.options),
        "username": servers.username,
        "password": servers.password,
    }
    if servers.kind == "sentinel":
        # The sentinels are asked with the same user, TLS and timeout as the primary
        # (docs/deployment.md: the user's rule on the sentinels); redis-py asks each
        # in turn, without retries, until one names the primary. Said explicitly:
        # redis-py's own default retries a sentinel that does not answer (three
        # times, with backoff, in redis-py 8.1), which would multiply the timeout.
        sentinels = Sentinel(
            list(servers.nodes),
            sentinel_kwargs={**options, "retry": Retry(NoBackoff(), 0)},
            **options,
        )
        return sentinels.master_for(servers.service, **options)

    def cluster() -> Any:
        return RedisCluster(
            startup_nodes=[
                ClusterNode(host, port)  # type: ignore[no-untyped-call]
                for host, port in servers.nodes
            ],
            # Only the node of a key's slot is needed; the others' loss is theirs.
            require_full_coverage=False,
            **options,
        )

    return cluster


class RedisStore:
    """One connection pool to Redis (through Sentinel, or to each node of a cluster),
    and the two stores that use it. Thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        failure_backoff: float = DEFAULT_FAILURE_BACKOFF,
        min_replicas: int = 0,
        prefix: str = PREFIX,
        clock: Callable[[], float] = time.time,
        client: Any = None,
    ) -> None:
        import redis
        from redis.exceptions import RedisClusterException

        if not 0 <= min_replicas <= MAX_MIN_REPLICAS:
            raise ValueError(f"min_replicas must be from 0 to {MAX_MIN_REPLICAS}")
        self.address = display_address(url)
        self.cluster = url.partition("://")[0].lower() in CLUSTER_SCHEMES
        # A cluster's client is made at its first call: redis-py asks the cluster
        # for its slots as it makes it, and start-up does not wait for Redis.
        lazy = client is None and self.cluster
        if client is None:
            client = _client(url, timeout)
        self._make_client: Callable[[], Any] | None = client if lazy else None
        self._client: Any = None if lazy else client
        self._making = threading.Lock()
        self.timeout = timeout
        self.failure_backoff = failure_backoff
        self.min_replicas = min_replicas
        self.prefix = prefix
        self.clock = clock
        #: Calls that failed or took too long, since start.
        self.failures = 0
        self._lock = threading.Lock()
        # Where a failure pauses the store: "" (the store, or a cluster whose
        # slots could not be learnt), or a cluster node's "host:port".
        self._paused_until: dict[str, float] = {}
        self._incidents: set[str] = set()
        # RedisClusterException is not a RedisError (no node knows a slot, none
        # answers).
        self._errors = (redis.RedisError, OSError, RedisClusterException)
        #: The DPoP replay store (:class:`~.replay.ReplayStore`).
        self.replays = RedisReplayStore(self)
        #: The introspection answer store.
        self.answers = RedisAnswerStore(self)

    def __repr__(self) -> str:  # never the password
        return f"<RedisStore {self.address}>"

    @property
    def client(self) -> Any:
        """The redis-py client (a cluster's is made here, at its first use)."""
        if self._client is None:
            with self._making:
                if self._client is None and self._make_client is not None:
                    self._client = self._make_client()
        return self._client

    def call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """``client.<operation>(*args, **kwargs)``, or :class:`SharedStoreUnavailable`."""
        return self._run(
            operation,
            args[0] if args else None,
            lambda: getattr(self.client, operation)(*args, **kwargs),
        )

    def mark(self, name: str, value: bytes, ttl_ms: int) -> tuple[bool, bool]:
        """``SET name value NX PX ttl_ms``, and then, with :attr:`min_replicas`,
        ``WAIT`` on the same connection: whether the key was set, and whether enough
        replicas hold the connection's writes (always, without ``min_replicas``)."""
        if not self.min_replicas:
            return bool(self.call("set", name, value, nx=True, px=ttl_ms)), True
        # WAIT counts the replicas that hold the writes of its own connection, so the
        # SET and the WAIT go in one pipeline (one round trip). Half the timeout for
        # the replicas, half for the round trip.
        wait_ms = self.wait_ms

        def set_and_wait() -> tuple[Any, int]:
            if self.cluster:
                return self._set_and_wait_on_node(name, value, ttl_ms, wait_ms)
            return _set_and_wait(self.client, name, value, ttl_ms, self.min_replicas, wait_ms)

        created, replicas = self._run("set", name, set_and_wait)
        return bool(created), replicas >= self.min_replicas

    def _set_and_wait_on_node(
        self, name: str, value: bytes, ttl_ms: int, wait_ms: int
    ) -> tuple[Any, int]:
        """:func:`_set_and_wait` on the cluster node of ``name``'s slot, following a
        redirect as redis-py's own calls do: ``MOVED`` (the slot has moved: its new
        node is learnt) or ``ASK`` (it is moving: ``ASKING`` on the new node)."""
        from redis.exceptions import AskError, ClusterError, MovedError

        cluster = self.client
        node = cluster.get_node_from_key(name)
        asking = False
        for _ in range(MAX_REDIRECTS):
            try:
                return _set_and_wait(
                    cluster.get_redis_connection(node),
                    name,
                    value,
                    ttl_ms,
                    self.min_replicas,
                    wait_ms,
                    asking=asking,
                )
            except MovedError as moved:
                cluster.nodes_manager.move_slot(moved)
                node, asking = cluster.get_node_from_key(name), False
            except AskError as ask:
                node, asking = cluster.get_node(host=ask.host, port=ask.port), True
                if node is None:
                    raise ClusterError("redirected to a node the cluster did not name") from None
        raise ClusterError("redirected too many times")

    @property
    def wait_ms(self) -> int:
        """The milliseconds ``WAIT`` gives the replicas: half the timeout."""
        return max(1, int(self.timeout * 500))

    def unreplicated(self, name: str) -> SharedStoreUnavailable:
        """Fewer than :attr:`min_replicas` replicas acknowledged a mark in time:
        counted, logged and paused as a failure, and answered 503."""
        self._failed(
            "set",
            f"fewer than {self.min_replicas} replicas acknowledged in {self.wait_ms} ms",
            self._where(name),
        )
        return self._unavailable(self.failure_backoff)

    def ping(self) -> bool:
        """Whether the store answers now (``/readyz``; a cluster: every node); never
        raises."""
        if self.cluster:
            # Every primary: one that is gone leaves its slots unserved. Not a failure
            # of the store, which would pause the calls every other node can serve.
            try:
                return bool(self.client.ping(target_nodes="primaries"))
            except self._errors:
                return False
        try:
            return bool(self.call("ping"))
        except SharedStoreUnavailable:
            return False

    @property
    def available(self) -> bool:
        """False while the store (a cluster: one of its nodes) is paused after a
        failure."""
        now = time.monotonic()
        return all(now >= until for until in list(self._paused_until.values()))

    def key(self, kind: str, digest: bytes) -> str:
        return f"{self.prefix}{kind}:{digest.hex()}"

    def _where(self, key: Any) -> str:
        """What a failure of a call about ``key`` pauses: the node of its slot in a
        cluster whose slots are known, or the whole store."""
        if not self.cluster or key is None or self._client is None:
            return ""
        try:
            node = self._client.get_node_from_key(key)
        except self._errors:
            return ""
        return str(node.name) if node is not None else ""

    def _run(self, operation: str, key: Any, function: Callable[[], Any]) -> Any:
        where = self._where(key)
        now = time.monotonic()
        wait = max(self._paused_until.get(where, 0.0), self._paused_until.get("", 0.0)) - now
        if wait > 0:
            raise self._unavailable(wait)
        try:
            result = function()
        except self._errors as exc:
            # A cluster's node is known once its slots are: ask again where it went.
            self._failed(operation, type(exc).__name__, where or self._where(key))
            raise self._unavailable(self.failure_backoff) from None
        for place in {where, ""} & self._incidents:
            self._recovered(place)
        return result

    def _unavailable(self, wait: float) -> SharedStoreUnavailable:
        return SharedStoreUnavailable(
            "the shared state store is not answering; try again shortly",
            retry_after=math.ceil(wait) if wait > 0 else 1,
        )

    def _failed(self, operation: str, what: str, where: str = "") -> None:
        with self._lock:
            self.failures += 1
            self._paused_until[where] = time.monotonic() + self.failure_backoff
            first = where not in self._incidents
            self._incidents.add(where)
        # Once per incident; the exception's type says what kind (never its text,
        # which may quote a command's arguments).
        node = f", node {where}" if where else ""
        if first:
            log.warning(
                "shared store %s failed (%s on %s%s); requests that need it are "
                "answered 503 until it works again",
                self.address,
                what,
                operation,
                node,
            )
        else:
            log.debug(
                "shared store %s failed again (%s on %s%s)", self.address, what, operation, node
            )

    def _recovered(self, where: str) -> None:
        with self._lock:
            was = where in self._incidents
            self._incidents.discard(where)
        if was:
            node = f" (node {where})" if where else ""
            log.warning("shared store %s works again%s", self.address, node)


def _set_and_wait(
    client: Any,
    name: str,
    value: bytes,
    ttl_ms: int,
    replicas: int,
    wait_ms: int,
    *,
    asking: bool = False,
) -> tuple[Any, int]:
    """``SET name value NX PX ttl_ms`` then ``WAIT replicas wait_ms``, in one pipeline:
    WAIT counts the replicas that hold the writes of its own connection. The ``SET``'s
    reply, and how many replicas acknowledged."""
    pipeline = client.pipeline(transaction=False)
    if asking:
        pipeline.execute_command("ASKING")
    pipeline.set(name, value, nx=True, px=ttl_ms)
    pipeline.execute_command("WAIT", replicas, wait_ms)
    *_, created, acknowledged = pipeline.execute()
    return created, int(acknowledged)


class RedisReplayStore:
    """A :class:`~.replay.ReplayStore` on Redis: one ``SET NX PX`` per proof.

    The client retries a call once when the connection breaks (see
    :class:`RedisStore`). When Redis carried out the ``SET`` and only its reply was
    lost, the retry finds the key: each call writes a random value of its own, so
    that, finding the key, it can tell its own write (the proof is new) from
    another's (a replay) with one ``GET``. With ``min_replicas``, the ``SET`` is
    followed by ``WAIT`` in the same round trip (:meth:`RedisStore.mark`).
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
        created, replicated = store.mark(name, mark, ttl_ms)
        if not created and store.call("get", name) != mark:
            # Another's mark: a replay, refused whatever the replicas hold.
            return False
        if not replicated:
            # New, but a failover now could forget it: not accepted.
            raise store.unreplicated(name)
        return True


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
