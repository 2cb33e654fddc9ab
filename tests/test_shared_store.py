"""State shared between processes on a real redis-server: DPoP replays, introspection
answers, and what happens when Redis is gone or slow."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import webtest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyramid.exceptions import ConfigurationError

from benchmarks.tls import make_loopback_tls
from okta_pyramid.settings import MAX_INTROSPECTION_CACHE_TTL, parse_settings
from okta_pyramid.tokens import (
    AccessTokenVerifier,
    ClientSecretBasic,
    DPoPVerifier,
    InactiveToken,
    InvalidAudience,
    InvalidDPoPProof,
    IssuerClient,
    RedisStore,
    SharedStoreUnavailable,
    TokenIntrospector,
    make_proof,
)
from okta_pyramid.tokens.introspection import INACTIVE_TTL
from okta_pyramid.tokens.shared import MAX_ENTRY_LIFETIME, display_address

from .helpers import WHOAMI_URL, DPoPClient
from .issuer import LoopbackIssuer
from .services import RedisServer, free_port, program, wait_for_port


def introspector(
    issuer: LoopbackIssuer,
    store: RedisStore | None,
    *,
    audience: str | None = None,
    client_id: str | None = None,
    cache_ttl: float = 30,
) -> TokenIntrospector:
    """A process's introspector: its own client and in-process cache."""
    if client_id is not None:
        issuer.add_client(client_id, "another-s3cret")
    return TokenIntrospector(
        IssuerClient(issuer.issuer, http_timeout=2),
        ClientSecretBasic(
            client_id or issuer.CLIENT_ID, "another-s3cret" if client_id else issuer.CLIENT_SECRET
        ),
        rules=AccessTokenVerifier(issuer.issuer, audience or issuer.audience),
        cache_ttl=cache_ttl,
        shared=store.answers if store is not None else None,
    )


def everything_in(redis_server: RedisServer) -> list[tuple[bytes, bytes]]:
    client = redis_server.client()
    return [(key, client.get(key)) for key in client.keys("*")]


def calls_of(redis_server: RedisServer, command: str) -> int:
    """How many times Redis has run ``command`` since its statistics were reset."""
    stats = redis_server.client().info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


class ReplyLosingProxy:
    """A loopback TCP proxy to Redis that breaks the connection once, just after
    Redis has answered the first command that holds ``marker``: Redis has carried it
    out, and the client never hears so."""

    def __init__(self, upstream_port: int, marker: bytes) -> None:
        self.upstream_port = upstream_port
        self.marker = marker
        #: Set once a reply has been lost.
        self.lost = threading.Event()
        self._armed = True
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            losing = threading.Event()
            self._spawn(self._to_redis, client, upstream, losing)
            self._spawn(self._to_client, upstream, client, losing)

    def _to_redis(
        self, client: socket.socket, upstream: socket.socket, losing: threading.Event
    ) -> None:
        try:
            while data := client.recv(65536):
                if self._armed and self.marker in data:
                    self._armed = False
                    losing.set()
                upstream.sendall(data)
        except OSError:
            pass

    def _to_client(
        self, upstream: socket.socket, client: socket.socket, losing: threading.Event
    ) -> None:
        try:
            while data := upstream.recv(65536):
                if losing.is_set():
                    # The reply to the marked command: dropped with the connection.
                    self.lost.set()
                    client.shutdown(socket.SHUT_RDWR)
                    return
                client.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._closed = True
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)
        self.listener.close()


# -- the DPoP replay store ---------------------------------------------------------


def test_a_proof_is_new_once_across_processes(redis_url: str) -> None:
    stores = [RedisStore(redis_url) for _ in range(4)]
    expires = time.time() + 30
    assert stores[0].replays.add_if_absent(b"k" * 16, expires) is True
    assert stores[1].replays.add_if_absent(b"k" * 16, expires) is False
    # Sixteen threads over four "processes", one new key: exactly one is told it is new.
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def add(store: RedisStore) -> None:
        barrier.wait()
        results.append(store.replays.add_if_absent(b"n" * 16, expires))

    threads = [threading.Thread(target=add, args=(stores[i % 4],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [False] * 15 + [True]


def test_a_new_proof_costs_one_round_trip(redis_url: str, redis_server: RedisServer) -> None:
    store = RedisStore(redis_url)
    redis_server.client().config_resetstat()
    assert store.replays.add_if_absent(b"r" * 16, time.time() + 30)
    assert (calls_of(redis_server, "set"), calls_of(redis_server, "get")) == (1, 0)
    # A replay: the SET finds the key, and one GET sees that another call wrote it.
    assert not RedisStore(redis_url).replays.add_if_absent(b"r" * 16, time.time() + 30)
    assert (calls_of(redis_server, "set"), calls_of(redis_server, "get")) == (2, 1)


def test_a_proof_whose_reply_was_lost_is_still_new(
    redis_url: str, redis_server: RedisServer
) -> None:
    # Redis remembers the proof, the connection breaks before its "OK" arrives, and
    # the client's retry finds the key: that key is this call's own write.
    proxy = ReplyLosingProxy(redis_server.port, marker=b"NX")
    try:
        store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", timeout=2)
        redis_server.client().config_resetstat()
        assert store.replays.add_if_absent(b"l" * 16, time.time() + 30) is True
        # Two SETs (the second, the client's retry, found the key) and one GET.
        assert proxy.lost.is_set()
        assert (calls_of(redis_server, "set"), calls_of(redis_server, "get")) == (2, 1)
        # Used again, through the same store or another: a replay.
        assert store.replays.add_if_absent(b"l" * 16, time.time() + 30) is False
        assert RedisStore(redis_url).replays.add_if_absent(b"l" * 16, time.time() + 30) is False
    finally:
        proxy.close()


def test_a_proof_is_forgotten_when_its_window_ends(
    redis_url: str, redis_server: RedisServer
) -> None:
    store = RedisStore(redis_url)
    assert store.replays.add_if_absent(b"w" * 16, time.time() + 1)
    assert not store.replays.add_if_absent(b"w" * 16, time.time() + 1)
    [key] = redis_server.client().keys("*")
    assert 0 < redis_server.client().pttl(key) <= 1000
    time.sleep(1.2)
    assert store.replays.add_if_absent(b"w" * 16, time.time() + 1)


def test_a_replayed_proof_is_refused_by_the_other_process(
    redis_url: str, redis_server: RedisServer, issuer: LoopbackIssuer
) -> None:
    client = DPoPClient(issuer)
    first, second = (DPoPVerifier(replay_store=RedisStore(redis_url).replays) for _ in range(2))
    proof = make_proof(client.key, "GET", WHOAMI_URL, jti="the-jti-of-one-proof")
    assert first.verify(proof, "GET", WHOAMI_URL).jkt == client.jkt
    with pytest.raises(InvalidDPoPProof) as refused:
        second.verify(proof, "GET", WHOAMI_URL)
    assert refused.value.reason == "dpop_replayed"
    # In Redis: a prefixed digest, never the proof, its jti or its key (the value is
    # random: the writer's own mark).
    [(key, value)] = everything_in(redis_server)
    assert key.startswith(b"okta_pyramid:dpop:") and len(value) == 16
    assert b"the-jti" not in key and client.jkt.encode() not in key
    # Each process alone (the in-process default) would accept it again.
    assert DPoPVerifier().verify(proof, "GET", WHOAMI_URL)


def test_a_proof_is_remembered_while_a_process_whose_clock_is_behind_accepts_it(
    redis_url: str, issuer: LoopbackIssuer
) -> None:
    # Two processes whose clocks differ by less than the leeway both accept the
    # proof's iat; the second accepts it for that much longer than the first.
    # Real time of the second check: past the first's window by half the skew, and
    # half the skew inside the second's (room for a loaded machine either side).
    skew, max_age, leeway = 1.0, 1.0, 1.5
    client = DPoPClient(issuer)

    def behind() -> float:
        return time.time() - skew

    first = DPoPVerifier(max_age=max_age, leeway=leeway, replay_store=RedisStore(redis_url).replays)
    second = DPoPVerifier(
        max_age=max_age,
        leeway=leeway,
        clock=behind,
        replay_store=RedisStore(redis_url, clock=behind).replays,
    )
    proof = make_proof(client.key, "GET", WHOAMI_URL, iat=time.time())
    assert first.verify(proof, "GET", WHOAMI_URL)
    time.sleep(max_age + skew / 2)
    # The first process's window has ended; the second's has not: still a replay.
    with pytest.raises(InvalidDPoPProof) as refused:
        second.verify(proof, "GET", WHOAMI_URL)
    assert refused.value.reason == "dpop_replayed"


# -- introspection answers ---------------------------------------------------------


def test_one_call_serves_every_process(
    redis_url: str, redis_server: RedisServer, issuer: LoopbackIssuer
) -> None:
    token = issuer.opaque(scp=["messages:read"])
    first = introspector(issuer, RedisStore(redis_url))
    second = introspector(issuer, RedisStore(redis_url))
    assert first.introspect(token).claims()["sub"] == "alice@example.com"
    assert second.introspect(token).claims()["sub"] == "alice@example.com"
    assert (first.calls, second.calls, second.shared_hits) == (1, 0, 1)
    assert issuer.hits["/oauth2/default/v1/introspect"] == 1
    # Kept no longer than the cache's TTL; the key is a digest, the token nowhere.
    [(key, value)] = everything_in(redis_server)
    assert key.startswith(b"okta_pyramid:introspection:")
    assert 0 < redis_server.client().pttl(key) <= 30_000
    assert token.encode() not in key and token.encode() not in value
    # The second process keeps it in its own cache too: no more round trips.
    second.introspect(token)
    assert second.shared_hits == 1


@pytest.mark.parametrize(
    "entry",
    [
        b"not json",
        b"[]",
        b'{"until": 9e99}',
        b'{"until": 9e99, "answer": []}',
        b'{"until": 9e99, "answer": {"sub": "x"}}',
        b'{"until": 9e99, "answer": {"active": "true"}}',
        # Nested deeper than a parser can follow (a RecursionError, not a 500).
        b"[" * 50_000,
    ],
)
def test_an_entry_the_store_did_not_write_is_a_miss(
    redis_url: str, redis_server: RedisServer, issuer: LoopbackIssuer, entry: bytes
) -> None:
    token = issuer.opaque()
    first = introspector(issuer, RedisStore(redis_url))
    first.introspect(token)
    [(key, _)] = everything_in(redis_server)
    redis_server.client().set(key, entry)
    # Never a 500 or an answer made up from it: the issuer is asked again.
    second = introspector(issuer, RedisStore(redis_url))
    assert second.introspect(token).claims()["sub"] == "alice@example.com"
    assert (second.calls, second.shared_hits) == (1, 0)


def test_an_entry_larger_than_the_store_writes_is_a_miss(
    redis_url: str, redis_server: RedisServer, issuer: LoopbackIssuer
) -> None:
    token = issuer.opaque()
    introspector(issuer, RedisStore(redis_url)).introspect(token)
    [(key, value)] = everything_in(redis_server)
    # The same answer, padded (JSON allows trailing blanks): only the size refuses it.
    redis_server.client().set(key, value + b" " * (64 * 1024))
    second = introspector(issuer, RedisStore(redis_url))
    second.introspect(token)
    assert (second.calls, second.shared_hits) == (1, 0)


@pytest.mark.parametrize(
    "until",
    [
        # Not numbers JSON has, numbers past any time, far too late, or not a number.
        b"NaN",
        b"Infinity",
        b"1e999",
        b"9e15",
        b'"9e15"',
        # Its own time, named twice: not JSON one reader could read another way.
        b'%(until)s,"until":%(until)s',
    ],
    ids=["NaN", "Infinity", "1e999", "far", "string", "named-twice"],
)
def test_an_entry_whose_time_this_store_would_not_write_is_a_miss(
    redis_url: str, redis_server: RedisServer, issuer: LoopbackIssuer, until: bytes
) -> None:
    token = issuer.opaque()
    introspector(issuer, RedisStore(redis_url)).introspect(token)
    [(key, value)] = everything_in(redis_server)
    written = re.match(rb'\{"until":([^,]+),', value)
    assert written is not None
    entry = b'{"until":' + until % {b"until": written[1]} + value[written.end() - 1 :]
    redis_server.client().set(key, entry)
    second = introspector(issuer, RedisStore(redis_url))
    assert second.introspect(token).claims()["sub"] == "alice@example.com"
    assert (second.calls, second.shared_hits) == (1, 0)


def test_an_answer_is_shared_no_longer_than_any_answer_is_reused(
    redis_url: str, redis_server: RedisServer
) -> None:
    # The longest an introspector reuses an answer: its longest cache TTL, or an
    # hour for an inactive token whose expiry it does not know.
    assert max(INACTIVE_TTL, MAX_INTROSPECTION_CACHE_TTL) <= MAX_ENTRY_LIFETIME
    # A revoked token that expires in a day is refused by its process for a day, but
    # shared, and believed by another, for MAX_ENTRY_LIFETIME at most.
    store = RedisStore(redis_url)
    store.answers.put(b"s" * 8, b"d" * 32, {"active": False}, time.time() + 86_400)
    [(key, value)] = everything_in(redis_server)
    assert 0 < redis_server.client().pttl(key) <= MAX_ENTRY_LIFETIME * 1000
    assert json.loads(value)["until"] <= time.time() + MAX_ENTRY_LIFETIME
    found = RedisStore(redis_url).answers.get(b"s" * 8, b"d" * 32)
    assert found is not None and found[0] == {"active": False}


def test_a_revocation_one_process_learns_is_known_to_all(
    redis_url: str, issuer: LoopbackIssuer
) -> None:
    token = issuer.opaque()
    issuer.revoke(token)
    first = introspector(issuer, RedisStore(redis_url))
    second = introspector(issuer, RedisStore(redis_url))
    with pytest.raises(InactiveToken):
        first.introspect(token)
    with pytest.raises(InactiveToken):
        second.introspect(token)
    assert second.calls == 0


def test_a_shared_answer_is_judged_by_the_readers_rules(
    redis_url: str, issuer: LoopbackIssuer
) -> None:
    token = issuer.opaque()
    introspector(issuer, RedisStore(redis_url)).introspect(token)
    # Another API on the same issuer and client: the answer is read, and refused.
    other_api = introspector(issuer, RedisStore(redis_url), audience="api://other")
    with pytest.raises(InvalidAudience):
        other_api.introspect(token)
    assert (other_api.calls, other_api.shared_hits) == (0, 1)
    # Another client asks for itself: the issuer's answer may depend on who asks.
    other_client = introspector(issuer, RedisStore(redis_url), client_id="0oa-other")
    other_client.introspect(token)
    assert (other_client.calls, other_client.shared_hits) == (1, 0)


def test_an_active_answer_one_api_refused_is_shared_for_the_ttl_only(
    redis_url: str, redis_server: RedisServer, issuer: LoopbackIssuer
) -> None:
    # Refused under the writer's rules (another audience): for a reader that accepts
    # the token the answer is live, and must be asked again once the TTL is over.
    token = issuer.opaque()
    with pytest.raises(InvalidAudience):
        introspector(issuer, RedisStore(redis_url), audience="api://other").introspect(token)
    [(key, _)] = everything_in(redis_server)
    assert 0 < redis_server.client().pttl(key) <= 30_000


def test_without_a_cache_nothing_is_shared(
    redis_url: str, redis_server: RedisServer, issuer: LoopbackIssuer
) -> None:
    token = issuer.opaque()
    introspector(issuer, RedisStore(redis_url), cache_ttl=0).introspect(token)
    assert everything_in(redis_server) == []


@pytest.mark.parametrize("reader_ttl", [0, 5])
def test_a_shared_answer_is_not_reused_longer_than_the_readers_ttl(
    redis_url: str, issuer: LoopbackIssuer, reader_ttl: float
) -> None:
    # A process that may reuse an answer for 300 s has shared one; a process that
    # promises to see a revocation within 5 s (or at once, with 0) cannot know how
    # old it is, so it asks the issuer itself.
    token = issuer.opaque()
    introspector(issuer, RedisStore(redis_url), cache_ttl=300).introspect(token)
    reader = introspector(issuer, RedisStore(redis_url), cache_ttl=reader_ttl)
    reader.introspect(token)
    assert (reader.calls, reader.shared_hits) == (1, 0)


# -- failure is closed, bounded and visible ------------------------------------------


def test_an_unreachable_store_fails_closed_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisStore(
        f"redis://:pa55-s3cret@127.0.0.1:{free_port()}/0", timeout=0.5, failure_backoff=2
    )
    caplog.set_level(logging.DEBUG, logger="okta_pyramid.tokens.shared")
    with pytest.raises(SharedStoreUnavailable) as first:
        store.replays.add_if_absent(b"x" * 16, time.time() + 30)
    assert first.value.retry_after == 2
    # Paused: answered at once, without trying again.
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(SharedStoreUnavailable):
            store.replays.add_if_absent(b"x" * 16, time.time() + 30)
    assert time.monotonic() - started < 0.5
    assert store.failures == 1 and not store.available and not store.ping()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"shared store redis://127.0.0.1:{store.address.rsplit(':', 1)[1]} failed "
        f"(ConnectionError on set); requests that need it are answered 503 until it "
        f"works again"
    ]
    assert "s3cret" not in caplog.text and "s3cret" not in repr(store)


def test_a_silent_store_costs_one_timeout(taken_port: int) -> None:
    # The port accepts connections and never answers, like a Redis that hangs.
    store = RedisStore(f"redis://127.0.0.1:{taken_port}/0", timeout=0.2)
    started = time.monotonic()
    with pytest.raises(SharedStoreUnavailable):
        store.answers.get(b"s" * 8, b"d" * 32)
    assert time.monotonic() - started < 1.5


def test_service_resumes_when_redis_returns(
    redis_server: RedisServer, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(redis_url, failure_backoff=0.2)
    assert store.replays.add_if_absent(b"a" * 16, time.time() + 30)
    redis_server.stop()
    with pytest.raises(SharedStoreUnavailable):
        store.replays.add_if_absent(b"b" * 16, time.time() + 30)
    redis_server.start()
    time.sleep(0.25)
    # The pool's dead connection is replaced by one retry, within the same call.
    assert store.replays.add_if_absent(b"b" * 16, time.time() + 30)
    assert "shared store redis://127.0.0.1" in caplog.text and "works again" in caplog.text


# -- the add-on --------------------------------------------------------------------


def test_two_applications_share_one_memory(
    make_app: Callable[..., webtest.TestApp], redis_url: str, issuer: LoopbackIssuer
) -> None:
    first, second = (make_app(shared_store=redis_url) for _ in range(2))
    client = DPoPClient(issuer)
    headers = client.headers()
    assert first.get("/api/whoami", headers=headers).json["sub"] == "alice@example.com"
    replayed = second.get("/api/whoami", headers=headers, status=401)
    assert replayed.json["error"] == "invalid_dpop_proof"
    assert "already used" in replayed.json["error_description"]


def test_without_redis_dpop_is_503_and_bearer_still_works(
    make_app: Callable[..., webtest.TestApp],
    redis_url: str,
    redis_server: RedisServer,
    issuer: LoopbackIssuer,
) -> None:
    app = make_app(shared_store=redis_url, shared_store_timeout="0.2")
    client = DPoPClient(issuer)
    token = issuer.mint()
    assert app.get("/readyz", expect_errors=True).json["shared_store"] == "ok"
    redis_server.stop()
    down = app.get("/api/whoami", headers=client.headers(), status=503)
    assert down.json["error"] == "temporarily_unavailable"
    assert int(down.headers["Retry-After"]) >= 1
    assert "WWW-Authenticate" not in down.headers
    assert app.get("/api/whoami", headers={"Authorization": f"Bearer {token}"}).status_int == 200
    ready = app.get("/readyz")
    assert ready.status_int == 200 and ready.json["shared_store"] == "unavailable"
    redis_server.start()
    deadline = time.monotonic() + 5
    while app.get("/api/whoami", headers=client.headers(), expect_errors=True).status_int != 200:
        assert time.monotonic() < deadline, "DPoP did not recover with Redis"
        time.sleep(0.1)
    assert app.get("/readyz").json["shared_store"] == "ok"


def test_a_live_view_without_redis_is_503(
    make_app: Callable[..., webtest.TestApp],
    redis_url: str,
    redis_server: RedisServer,
    issuer: LoopbackIssuer,
) -> None:
    app = make_app(
        shared_store=redis_url,
        introspection_client_id=issuer.CLIENT_ID,
        introspection_client_secret=issuer.CLIENT_SECRET,
    )
    token = issuer.mint(scp=["messages:write"])
    redis_server.stop()
    down = app.post_json(
        "/api/messages", {"text": "hi"}, headers={"Authorization": f"Bearer {token}"}, status=503
    )
    assert down.json["error"] == "temporarily_unavailable"
    assert issuer.hits["/oauth2/default/v1/introspect"] == 0


# -- settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:6379/0", "okta.shared_store: must be a Redis URL"),
        ("redis:///0", "okta.shared_store: must be a Redis URL"),
        (
            "redis://:pa55-s3cret@cache.internal:6379/zero",
            "okta.shared_store: the path names the database, a number such as /0; got "
            "'redis://cache.internal:6379/zero'",
        ),
        ("redis://cache.internal:99999/0", "okta.shared_store: is not a valid URL"),
    ],
)
def test_a_wrong_store_url_is_refused_without_its_password(value: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_settings(
            {"okta.issuer": "https://dev-1.okta.com/oauth2/default", "okta.shared_store": value}
        )
    assert str(refused.value).startswith(expected)
    assert "s3cret" not in str(refused.value)


def test_the_store_settings() -> None:
    base = {"okta.issuer": "https://dev-1.okta.com/oauth2/default"}
    assert parse_settings(base).shared_store is None
    parsed = parse_settings(
        {
            **base,
            "okta.shared_store": "rediss://:pw@cache:6380/2",
            "okta.shared_store_timeout": "0.25",
        }
    )
    assert (parsed.shared_store, parsed.shared_store_timeout) == ("rediss://:pw@cache:6380/2", 0.25)
    assert "pw" not in repr(parsed)
    with pytest.raises(ConfigurationError, match=r"^okta.shared_store_timeout: must be at"):
        parse_settings({**base, "okta.shared_store_timeout": "30"})


def test_without_the_setting_each_process_keeps_its_own(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    app = make_app()
    registry: Any = app.app.registry
    assert registry.okta.shared_store is None
    assert type(registry.okta.dpop.replay_store).__name__ == "InMemoryReplayStore"
    assert "shared_store" not in app.get("/readyz", expect_errors=True).json


@pytest.mark.parametrize(
    "query",
    [
        # Each would turn a check off or a bound up: redis-py lets URL options win.
        "ssl_cert_reqs=none",
        "ssl_check_hostname=false",
        "socket_timeout=30",
        "socket_connect_timeout=30",
        "retry_on_timeout=yes",
        "db=3",
        # Unknown to redis-py: every call would fail with a TypeError (a 500).
        "foo=bar",
    ],
)
def test_a_store_url_option_that_could_weaken_it_is_refused(query: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_settings(
            {
                "okta.issuer": "https://dev-1.okta.com/oauth2/default",
                "okta.shared_store": f"rediss://:pa55-s3cret@cache:6380/0?{query}",
            }
        )
    message = str(refused.value)
    assert message.startswith("okta.shared_store: ")
    assert query.partition("=")[0] in message and "s3cret" not in message


def test_the_certificate_options_are_for_tls(tmp_path: Any) -> None:
    base = {"okta.issuer": "https://dev-1.okta.com/oauth2/default"}
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    url = f"rediss://cache:6380/0?ssl_ca_certs={ca}"
    assert parse_settings({**base, "okta.shared_store": url}).shared_store == url
    # On redis://, redis-py would fail every call (a TypeError): refused at start.
    with pytest.raises(ConfigurationError, match="^okta.shared_store: .*rediss://"):
        parse_settings({**base, "okta.shared_store": f"redis://cache:6379/0?ssl_ca_certs={ca}"})
    # A file that is not there fails every call (503s): refused at start.
    with pytest.raises(ConfigurationError, match="^okta.shared_store: ssl_ca_certs"):
        parse_settings(
            {
                **base,
                "okta.shared_store": f"rediss://cache:6380/0?ssl_ca_certs={tmp_path}/missing.pem",
            }
        )


def test_tls_checks_the_certificate_and_the_host_name() -> None:
    # Named, not left to redis-py's defaults (before redis-py 6, no host name check).
    store = RedisStore("rediss://cache.internal:6380/0")
    options = store.client.connection_pool.connection_kwargs
    assert (options["ssl_cert_reqs"], options["ssl_check_hostname"]) == ("required", True)
    # Used on its own, the store refuses the URL options that would undo them.
    for url in (
        "rediss://cache.internal:6380/0?ssl_check_hostname=false",
        "redis://cache.internal:6379/0?ssl_ca_certs=/etc/ssl/ca.pem",
    ):
        with pytest.raises(ValueError, match="may carry only ssl_ca_certs"):
            RedisStore(url)


@pytest.mark.parametrize(
    "value",
    [
        # A reserved character left unencoded in the password cuts the URL in odd places.
        # (a base64 password has "/"; one that starts with digits reads as a port).
        "redis://:1234#s3cret@cache.internal:6379/0",
        "redis://:1234/s3cret@cache.internal:6379/0",
        "redis://user:1234#s3cret@cache.internal:6379/0",
        "redis://user:1234/s3cret@cache.internal:6379/0",
        "redis://user:1234?s3cret@cache.internal:6379/0",
        "redis://:pa55/s3cret@cache.internal:6379/0",
    ],
)
def test_a_password_with_reserved_characters_is_never_quoted(value: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_settings(
            {"okta.issuer": "https://dev-1.okta.com/oauth2/default", "okta.shared_store": value}
        )
    assert str(refused.value).startswith("okta.shared_store: ")
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        # A password with an unencoded "/", "?" or "#" ends the authority early; redis-py
        # would read its start as the port, and quote it in its error.
        "redis://:pa55/s3cret@cache.internal:6379/0",
        "redis://:s3cret/pa55@cache.internal:6379/0",
        "redis://us3r:1234#s3cret@cache.internal:6379/0",
        "redis://us3r:1234?s3cret@cache.internal:6379/0",
        "redis://us3r:s3cret/x@cache.internal:6379/0",
        # No host: the password reads as the port.
        "redis://:s3cret",
        "redis://:s3cret#pa55@",
        "redis://us3r:s3cret@cache.internal:s3cret/0",
    ],
)
def test_a_store_url_that_cannot_be_used_is_refused_without_its_password(url: str) -> None:
    assert not any(secret in display_address(url) for secret in ("s3cret", "pa55", "us3r"))
    with pytest.raises(ValueError) as refused:
        RedisStore(url)
    # Neither the message nor the traceback (redis-py's own error is not chained).
    shown = "".join(traceback.format_exception(refused.value))
    assert not any(secret in shown for secret in ("s3cret", "pa55", "us3r"))


@pytest.mark.parametrize(
    "url",
    [
        # RFC 3986 allows ";=!$&'()*+," and %XX in a host name: a password typed where
        # the host goes (its "@" forgotten) is never shown as if it were one.
        "redis://cache;password=s3cret/0",
        "rediss://cache%3As3cret/0",
        "redis://us3r,s3cret:6379/0",
    ],
)
def test_a_host_made_of_more_than_a_name_is_not_shown(url: str) -> None:
    assert "s3cret" not in display_address(url)
    assert "s3cret" not in repr(RedisStore(url))


def test_the_address_shown_is_the_host_port_and_database() -> None:
    url = "rediss://us3r:s3cret@[::1]:6380/2?ssl_ca_certs=/etc/ssl/ca.pem"
    assert display_address(url) == "rediss://[::1]:6380/2"
    store = RedisStore("redis://us3r:pa%2F55%23s3cret@cache.internal:6379/0")
    assert repr(store) == "<RedisStore redis://cache.internal:6379/0>"
    assert store.client.connection_pool.connection_kwargs["password"] == "pa/55#s3cret"


def _client_certificate(
    tmp_path: Path, *, encrypted: bool = False, other_key: bool = False
) -> tuple[Path, Path]:
    """A client certificate and its key file (encrypted, or another key)."""
    tls = make_loopback_tls(tmp_path)
    key = serialization.load_pem_private_key(tls.key_file.read_bytes(), None)
    if other_key:
        key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "client-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"a pass phrase")
            if encrypted
            else serialization.NoEncryption(),
        )
    )
    return tls.cert_file, key_file


def _store_with(cert: Path | None, key: Path | None) -> str:
    options = [f"ssl_certfile={cert}"] if cert else []
    options += [f"ssl_keyfile={key}"] if key else []
    return f"rediss://:pa55-s3cret@cache:6380/0?{'&'.join(options)}"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "encrypted",
            "okta.shared_store: the private key in ssl_keyfile is protected by a pass phrase",
        ),
        (
            "other_key",
            "okta.shared_store: the private key in ssl_keyfile is not the key of "
            "the certificate in ssl_certfile",
        ),
        (
            "not_a_key",
            "okta.shared_store: ssl_certfile must hold a PEM certificate, and "
            "ssl_keyfile its PEM private key",
        ),
        ("key_alone", "okta.shared_store: ssl_keyfile is the private key of a client certificate"),
        (
            "certificate_alone",
            "okta.shared_store: ssl_certfile must hold a PEM certificate, "
            "and it or ssl_keyfile its PEM private key",
        ),
    ],
)
def test_a_client_key_tls_could_not_use_stops_start_up(
    tmp_path: Path, case: str, expected: str
) -> None:
    # An encrypted key would make OpenSSL ask for its pass phrase on the terminal at
    # the first connection, inside a request; the others would fail every call.
    cert, key = _client_certificate(
        tmp_path, encrypted=case == "encrypted", other_key=case == "other_key"
    )
    if case == "not_a_key":
        key.write_text("not a key\n")
    url = {"key_alone": _store_with(None, key), "certificate_alone": _store_with(cert, None)}.get(
        case, _store_with(cert, key)
    )
    with pytest.raises(ConfigurationError) as refused:
        parse_settings(
            {"okta.issuer": "https://dev-1.okta.com/oauth2/default", "okta.shared_store": url}
        )
    message = "".join(traceback.format_exception(refused.value))
    assert str(refused.value).startswith(expected)
    key_lines = [line for line in key.read_text().splitlines() if "-----" not in line]
    assert "PRIVATE KEY" not in message and "s3cret" not in message
    assert not any(line in message for line in key_lines)


def test_a_client_certificate_and_its_key_are_accepted(tmp_path: Path) -> None:
    base = {"okta.issuer": "https://dev-1.okta.com/oauth2/default"}
    cert, key = _client_certificate(tmp_path)
    url = _store_with(cert, key)
    assert parse_settings({**base, "okta.shared_store": url}).shared_store == url
    # One PEM file holding both.
    both = tmp_path / "client.pem"
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    url = _store_with(both, None)
    assert parse_settings({**base, "okta.shared_store": url}).shared_store == url


@pytest.fixture
def tls_redis(tmp_path: Any) -> Iterator[tuple[int, Any]]:
    """A redis-server that speaks only TLS, with a certificate for 127.0.0.1."""
    tls = make_loopback_tls(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [
            program("redis-server", "redis-server"),
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
            "--tls-cert-file",
            str(tls.cert_file),
            "--tls-key-file",
            str(tls.key_file),
            "--tls-ca-cert-file",
            str(tls.ca_file),
            "--tls-auth-clients",
            "no",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port, tls
    finally:
        process.terminate()
        process.wait(10)


def test_rediss_verifies_the_servers_certificate(tls_redis: tuple[int, Any]) -> None:
    port, tls = tls_redis
    trusted = RedisStore(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={tls.ca_file}")
    assert trusted.replays.add_if_absent(b"t" * 16, time.time() + 5)
    # Not signed by an authority this machine trusts: no answer is believed.
    assert not RedisStore(f"rediss://127.0.0.1:{port}/0").ping()
    # Signed by the right authority, for another name (the certificate names 127.0.0.1).
    assert not RedisStore(f"rediss://localhost:{port}/0?ssl_ca_certs={tls.ca_file}").ping()


def test_the_redis_user_in_the_docs_is_enough_and_no_more(
    redis_url: str, redis_server: RedisServer, issuer: LoopbackIssuer
) -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "deployment.md").read_text()
    # The first: one Redis (Sentinel's and a cluster's follow; test_shared_store_servers).
    rule = re.findall(r"(?m)^user okta_pyramid (.+)$", text)[0]
    admin = redis_server.client()
    admin.execute_command("ACL", "SETUSER", "okta_pyramid", "reset", *rule.split())
    try:
        url = redis_url.replace("redis://", "redis://okta_pyramid:a-long-random-password@")
        store = RedisStore(url)
        assert store.ping()
        assert store.replays.add_if_absent(b"u" * 16, time.time() + 5)
        token = issuer.opaque()
        introspector(issuer, store).introspect(token)
        assert introspector(issuer, RedisStore(url)).introspect(token)
        # Nothing beyond the store's own keys and commands.
        for command in (
            ("FLUSHALL",),
            ("KEYS", "*"),
            ("DEL", "okta_pyramid:x"),
            ("SET", "other:x", "1"),
            ("CONFIG", "GET", "*"),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                store.client.execute_command(*command)
    finally:
        admin.execute_command("ACL", "DELUSER", "okta_pyramid")


# -- Sentinel and Cluster URLs (tests/test_shared_store_servers.py runs the servers) --


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://okta_pyramid:pa55-s3cret@10.0.0.5:26379,10.0.0.6:26379/mymaster",
        "redis+sentinel://10.0.0.5,10.0.0.6:26380,[::1]/mymaster",
        "rediss+sentinel://:pa55-s3cret@sentinel.internal:26379/mymaster",
        "redis+cluster://okta_pyramid:pa55-s3cret@10.0.0.5:7000,10.0.0.6:7001",
        "rediss+cluster://cache-1.internal,cache-2.internal:6380",
    ],
)
def test_sentinel_and_cluster_urls_are_accepted(url: str) -> None:
    parsed = parse_settings(
        {"okta.issuer": "https://dev-1.okta.com/oauth2/default", "okta.shared_store": url}
    )
    assert parsed.shared_store == url and "s3cret" not in repr(parsed)
    store = RedisStore(url)  # nothing is sent yet: start-up does not wait for Redis
    assert repr(store) == f"<RedisStore {display_address(url)}>" and "s3cret" not in repr(store)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+sentinel://10.0.0.5:26379", "names the sentinels and the service they watch"),
        ("redis+sentinel://10.0.0.5:26379/", "names the sentinels and the service they watch"),
        ("redis+sentinel://10.0.0.5:26379/my master", "no spaces"),
        ("redis+cluster://10.0.0.5:7000/0", "no database (a cluster has one)"),
        ("redis+cluster://10.0.0.5:99999", "each server is host:port, separated by commas"),
        ("redis+cluster://10.0.0.5:7000,,10.0.0.6", "each server is host:port"),
        ("redis+cluster://:pa55/s3cret@10.0.0.5:7000", "must be percent-encoded"),
        ("redis+sentinel://:pa55?s3cret@10.0.0.5/mymaster", "must be percent-encoded"),
        ("redis+sentinel://:pa55#s3cret@10.0.0.5/mymaster", "must not contain a fragment"),
        ("redis+cluster://10.0.0.5:7000?ssl_ca_certs=/etc/hosts", "only with rediss+"),
        ("rediss+cluster://10.0.0.5:7000?ssl_cert_reqs=none", "may carry only ssl_ca_certs"),
        ("rediss+cluster://10.0.0.5:7000?ssl_ca_certs=/missing.pem", "ssl_ca_certs must name"),
    ],
)
def test_a_wrong_sentinel_or_cluster_url_stops_start_up(url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_settings(
            {"okta.issuer": "https://dev-1.okta.com/oauth2/default", "okta.shared_store": url}
        )
    message = str(refused.value)
    assert message.startswith("okta.shared_store: ") and expected in message, message
    assert "s3cret" not in message and "pa55" not in message


def test_the_address_of_several_servers_is_shown_without_the_password() -> None:
    url = "redis+sentinel://us3r:s3cret@10.0.0.5:26379,[::1]:26380/mymaster"
    assert display_address(url) == "redis+sentinel://10.0.0.5:26379,[::1]:26380/mymaster"
    assert (
        display_address("rediss+cluster://:s3cret@a.internal,b.internal:7001?ssl_ca_certs=/x")
        == "rediss+cluster://a.internal,b.internal:7001"
    )
    # One server: still the old rule, a host and a database.
    assert display_address("redis://a,b:6379/0") == "redis:///0"


def test_the_sentinels_and_the_primary_get_the_same_user_tls_and_timeout() -> None:
    store = RedisStore(
        "rediss+sentinel://us3r:pa%2F55@10.0.0.5:26379,10.0.0.6/mymaster", timeout=0.25
    )
    pool = store.client.connection_pool
    options = pool.connection_kwargs
    assert (options["username"], options["password"]) == ("us3r", "pa/55")
    assert (options["ssl_cert_reqs"], options["ssl_check_hostname"]) == ("required", True)
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 0.25
    assert pool.service_name == "mymaster"
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26379]
    for sentinel in sentinels:
        kwargs = sentinel.connection_pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"], kwargs["socket_timeout"]) == (
            "us3r",
            "pa/55",
            0.25,
        )
        assert kwargs["ssl_check_hostname"] is True


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:{port},127.0.0.1:{port}/mymaster",
        "redis+cluster://127.0.0.1:{port},127.0.0.1:{port}",
    ],
)
def test_sentinels_or_a_cluster_that_cannot_be_reached_fail_closed(url: str) -> None:
    # Made without contacting Redis; every call then fails closed (503), within the
    # timeout: a cluster's client is made at the first call, and its errors (not all
    # redis-py's RedisError) are the store's SharedStoreUnavailable, never a 500.
    store = RedisStore(url.format(port=free_port()), timeout=0.2)
    started = time.monotonic()
    with pytest.raises(SharedStoreUnavailable):
        store.replays.add_if_absent(b"x" * 16, time.time() + 30)
    with pytest.raises(SharedStoreUnavailable):
        store.answers.get(b"s" * 8, b"d" * 32)
    assert time.monotonic() - started < 1.5
    assert not store.ping() and store.failures == 1


def test_the_replica_setting() -> None:
    base = {"okta.issuer": "https://dev-1.okta.com/oauth2/default"}
    store = {**base, "okta.shared_store": "redis://cache:6379/0"}
    assert parse_settings(store).shared_store_min_replicas == 0
    assert (
        parse_settings({**store, "okta.shared_store_min_replicas": "2"}).shared_store_min_replicas
        == 2
    )
    for value, message in (
        ("17", "must be at least 0 and at most 16 replicas"),
        ("-1", "must be at least 0"),
        ("one", "must be a whole number of replicas"),
    ):
        with pytest.raises(ConfigurationError, match=f"^okta.shared_store_min_replicas: {message}"):
            parse_settings({**store, "okta.shared_store_min_replicas": value})
    # Without a shared store there are no replicas to wait for.
    with pytest.raises(
        ConfigurationError, match="^okta.shared_store_min_replicas: replicas of the shared store"
    ):
        parse_settings({**base, "okta.shared_store_min_replicas": "1"})
    assert parse_settings({**base, "okta.shared_store_min_replicas": "0"}).shared_store is None


def test_without_replicas_to_wait_for_a_new_proof_is_refused_503(
    redis_url: str, redis_server: RedisServer
) -> None:
    # The test Redis has no replica: WAIT 1 hears from none within half the timeout.
    store = RedisStore(redis_url, timeout=0.2, min_replicas=1)
    started = time.monotonic()
    with pytest.raises(SharedStoreUnavailable):
        store.replays.add_if_absent(b"q" * 16, time.time() + 30)
    assert 0.1 <= time.monotonic() - started < 1.5
    assert store.failures == 1 and not store.available
    assert RedisStore(redis_url).replays.add_if_absent(b"r" * 16, time.time() + 30)
