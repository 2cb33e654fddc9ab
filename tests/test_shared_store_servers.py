"""The shared store on several Redis servers, run for real on loopback: a primary with
replicas and three sentinels (a failover), and a three-primary Redis Cluster (a
node's loss). Each test starts its own servers: a failover changes them for good."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from redis.crc import key_slot

from benchmarks.tls import make_loopback_tls
from okta_pyramid.tokens import RedisStore, SharedStoreUnavailable, make_proof
from okta_pyramid.tokens.shared import PREFIX

from .helpers import DPoPClient
from .issuer import LoopbackIssuer
from .services import (
    RedisClusterServers,
    RedisSentinels,
    Server,
    free_port,
    program,
    wait_for_port,
    wait_ready,
    wait_until,
)

log = logging.getLogger(__name__)

#: What the store may take to answer in the gap: its timeout, and room for a busy
#: machine (two cores, other tests running).
TIMEOUT = 0.5
SLACK = 1.5
#: The longest the service may be gone after the primary's loss: the sentinels judge
#: it down after 1 s (RedisSentinels.DOWN_AFTER_MS), agree and promote a replica
#: (about 3 s here), the other replica copies the new primary, and the store's
#: backoff (1 s) ends. Measured: see docs/deployment.md.
FAILOVER_BOUND = 15.0
FAILOVER_TIMEOUT = 1.0


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[RedisSentinels]:
    # Two replicas: with okta.shared_store_min_replicas = 1, one must be left to
    # acknowledge once the other has become the primary.
    servers = RedisSentinels(tmp_path, replicas=2)
    yield servers
    servers.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers(tmp_path)
    yield servers
    servers.stop()


def replay_key(jkt: str, jti: str) -> str:
    """The Redis key of a proof's mark (tokens/dpop.py: SHA-256(jkt "\\n" jti), cut to
    16 octets)."""
    digest = hashlib.sha256(f"{jkt}\n{jti}".encode()).digest()[:16]
    return f"{PREFIX}dpop:{digest.hex()}"


# -- Sentinel ----------------------------------------------------------------------------


def test_the_store_finds_the_primary_through_the_sentinels(sentinels: RedisSentinels) -> None:
    store = RedisStore(sentinels.url(), timeout=TIMEOUT)
    assert repr(store) == f"<RedisStore {sentinels.url()}>"
    assert store.ping()
    assert store.replays.add_if_absent(b"s" * 16, time.time() + 30)
    assert not RedisStore(sentinels.url()).replays.add_if_absent(b"s" * 16, time.time() + 30)
    [key] = sentinels.primary.client().keys("*")
    assert key.startswith(b"okta_pyramid:dpop:")


def test_a_sentinel_down_is_skipped(sentinels: RedisSentinels) -> None:
    # The first sentinel named is gone: the next ones name the primary.
    sentinels.processes[0].terminate()
    sentinels.processes[0].wait(10)
    store = RedisStore(sentinels.url(), timeout=TIMEOUT)
    started = time.monotonic()
    assert store.replays.add_if_absent(b"k" * 16, time.time() + 30)
    assert time.monotonic() - started < TIMEOUT + SLACK


def test_with_min_replicas_a_proof_is_new_only_once_a_replica_holds_it(
    sentinels: RedisSentinels, caplog: pytest.LogCaptureFixture
) -> None:
    # A generous timeout: the replicas of a busy machine answer WAIT in time.
    waiting = RedisStore(sentinels.url(), timeout=2.0, min_replicas=2, failure_backoff=0.2)
    assert waiting.replays.add_if_absent(b"a" * 16, time.time() + 30)
    # One replica hangs: WAIT 2 gets one acknowledgement in time. The request fails
    # closed, within the timeout; a store that does not wait accepts the proof.
    sentinels.replicas[0].pause()
    try:
        started = time.monotonic()
        with pytest.raises(SharedStoreUnavailable):
            waiting.replays.add_if_absent(b"b" * 16, time.time() + 30)
        assert 1.0 <= time.monotonic() - started < 2.0 + SLACK
        assert waiting.failures == 1
        assert "fewer than 2 replicas acknowledged in 1000 ms on set" in caplog.text
        # A replay needs no replica to be refused.
        time.sleep(0.25)
        assert not waiting.replays.add_if_absent(b"a" * 16, time.time() + 30)
        assert RedisStore(sentinels.url(), timeout=TIMEOUT).replays.add_if_absent(
            b"c" * 16, time.time() + 30
        )
    finally:
        sentinels.replicas[0].resume()
    time.sleep(0.25)
    assert waiting.replays.add_if_absent(b"d" * 16, time.time() + 30)
    assert "works again" in caplog.text


def test_min_replicas_waits_on_the_connection_that_wrote(sentinels: RedisSentinels) -> None:
    # WAIT counts the replicas holding its own connection's writes: sent on another
    # connection, it would be answered at once, whatever the replicas hold.
    store = RedisStore(sentinels.url(), timeout=2.0, min_replicas=1)
    store.client.config_resetstat()
    assert store.replays.add_if_absent(b"w" * 16, time.time() + 30)
    stats = sentinels.primary.client().info("commandstats")
    assert (stats["cmdstat_set"]["calls"], stats["cmdstat_wait"]["calls"]) == (1, 1)
    assert "cmdstat_get" not in stats


def test_the_sentinel_acl_in_the_docs_is_enough(sentinels: RedisSentinels) -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "deployment.md").read_text()
    [primary_rule] = _rules(text, "of the primary and replicas, with Sentinel")
    [sentinel_rule] = _rules(text, "of each sentinel")
    for server in sentinels.servers:
        server.client().execute_command("ACL", "SETUSER", "okta_pyramid", "reset", *primary_rule)
    for port in sentinels.ports:
        sentinels.sentinel_client(port).execute_command(
            "ACL", "SETUSER", "okta_pyramid", "reset", *sentinel_rule
        )
    url = sentinels.url(userinfo="okta_pyramid:a-long-random-password@")
    store = RedisStore(url, timeout=2.0, min_replicas=1)
    assert store.ping()
    assert store.replays.add_if_absent(b"u" * 16, time.time() + 30)
    assert not store.replays.add_if_absent(b"u" * 16, time.time() + 30)
    assert "a-long-random-password" not in repr(store)
    # Without the sentinels' rule the primary cannot be found: closed, not open.
    for port in sentinels.ports:
        sentinels.sentinel_client(port).execute_command("ACL", "DELUSER", "okta_pyramid")
    with pytest.raises(SharedStoreUnavailable):
        RedisStore(url, timeout=TIMEOUT).replays.add_if_absent(b"v" * 16, time.time() + 30)


def _rules(text: str, label: str) -> list[list[str]]:
    """The ``user okta_pyramid ...`` lines of docs/deployment.md under a comment that
    names ``label``."""
    rules = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("user okta_pyramid ") and label in lines[index - 1]:
            rules.append(line.split()[2:])
    return rules


def test_rediss_sentinel_speaks_tls_to_the_sentinel_and_the_primary(tmp_path: Path) -> None:
    # Both speak only TLS (port 0), with a certificate for 127.0.0.1 from an
    # authority made for the run.
    tls = make_loopback_tls(tmp_path)
    files = [
        *("--tls-cert-file", str(tls.cert_file), "--tls-key-file", str(tls.key_file)),
        *("--tls-ca-cert-file", str(tls.ca_file), "--tls-auth-clients", "no"),
    ]
    primary_port, sentinel_port = free_port(), free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port 0\ntls-port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"tls-cert-file {tls.cert_file}\ntls-key-file {tls.key_file}\n"
        f"tls-ca-cert-file {tls.ca_file}\ntls-auth-clients no\ntls-replication yes\n"
        f"sentinel monitor mymaster 127.0.0.1 {primary_port} 1\n"
    )
    commands = [
        [
            program("redis-server", "redis-server"),
            *("--port", "0", "--tls-port", str(primary_port), "--bind", "127.0.0.1"),
            *("--save", "", "--dir", str(tmp_path), *files),
        ],
        [program("redis-sentinel", "redis-sentinel"), str(config)],
    ]
    processes = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command in commands
    ]
    try:
        wait_for_port(primary_port)
        wait_for_port(sentinel_port)
        url = f"rediss+sentinel://127.0.0.1:{sentinel_port}/mymaster"
        trusted = RedisStore(f"{url}?ssl_ca_certs={tls.ca_file}", timeout=2.0)
        wait_until(trusted.ping, 10, "the primary was not found over TLS")
        assert trusted.replays.add_if_absent(b"t" * 16, time.time() + 30)
        # An authority this machine does not trust, or no TLS: nothing is believed.
        assert not RedisStore(url, timeout=TIMEOUT).ping()
        assert not RedisStore(url.replace("rediss+", "redis+"), timeout=TIMEOUT).ping()
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


@dataclass
class Answer:
    sent: float
    took: float
    status: int
    process: int


@pytest.mark.e2e
def test_a_failover_is_a_gap_of_503s_and_no_replay(
    sentinels: RedisSentinels,
    pserve: Callable[..., Server],
    issuer: LoopbackIssuer,
) -> None:
    processes = [
        pserve(
            OKTA_ISSUER=issuer.issuer,
            OKTA_AUDIENCE=issuer.audience,
            OKTA_SHARED_STORE=sentinels.url(),
            # WAIT gets half: 0.5 s for a replica of a busy machine.
            OKTA_SHARED_STORE_TIMEOUT=str(FAILOVER_TIMEOUT),
            OKTA_SHARED_STORE_MIN_REPLICAS="1",
        )
        for _ in range(2)
    ]
    for process in processes:
        assert wait_ready(process).status_code == 200
    sentinels.wait_ready_for_failover()
    client = DPoPClient(issuer)

    def call(index: int, proof: str | None = None) -> Answer:
        url = processes[index].url + "/api/whoami"
        proof = proof or make_proof(client.key, "GET", url, access_token=client.token)
        sent = time.monotonic()
        with requests.Session() as session:
            session.trust_env = False
            response = session.get(
                url, headers={"Authorization": f"DPoP {client.token}", "DPoP": proof}, timeout=10
            )
        return Answer(sent, time.monotonic() - sent, response.status_code, index)

    # A proof accepted before the loss: its mark is on a replica (WAIT 1).
    url0 = processes[0].url + "/api/whoami"
    accepted = make_proof(client.key, "GET", url0, access_token=client.token)
    assert call(0, accepted).status == 200
    assert call(1).status == 200 and call(0).status == 200
    old_primary = sentinels.primary_port()

    answers: list[Answer] = []
    stop = threading.Event()

    def flow(index: int) -> None:
        while not stop.is_set():
            answers.append(call(index))
            time.sleep(0.05)

    with ThreadPoolExecutor(2) as pool:
        flows = [pool.submit(flow, index) for index in range(2)]
        time.sleep(0.5)
        killed = time.monotonic()
        sentinels.server_on(old_primary).kill()
        try:
            # Until both processes have served a DPoP request again, after the loss.
            wait_until(
                lambda: (
                    {a.process for a in answers if a.sent > killed and a.status == 200} == {0, 1}
                ),
                FAILOVER_BOUND,
                "DPoP requests were not served again after the failover",
            )
        finally:
            stop.set()
            for running in flows:
                running.result(30)
    assert sentinels.primary_port() != old_primary
    after = [a for a in answers if a.sent > killed]
    resumed = max(
        min(a.sent for a in after if a.status == 200 and a.process == index) for index in (0, 1)
    )
    gap = resumed - killed
    # Seen with --log-cli-level=INFO.
    log.info("failover gap %.2f s (bound %s s)", gap, FAILOVER_BOUND)
    assert gap < FAILOVER_BOUND
    # In the gap: 503 only (never a 500, never a replay accepted), each within the
    # store's timeout; then 200 again.
    assert {a.status for a in after} <= {200, 503}, sorted({a.status for a in after})
    assert any(a.status == 503 for a in after)
    assert max(a.took for a in after) < FAILOVER_TIMEOUT + SLACK
    # The proof accepted before the loss is refused by both processes after it.
    for index in (0, 1):
        replayed = processes[index].get(
            "/api/whoami",
            headers={
                "Authorization": f"DPoP {client.token}",
                "DPoP": accepted,
                "Host": processes[0].url.removeprefix("http://"),
            },
        )
        assert replayed.status_code == 401, replayed.text
        assert "already used" in replayed.json()["error_description"]
    for process in processes:
        process.stop()
        assert "Traceback" not in process.stderr
        assert any("shared store redis+sentinel://127.0.0.1:" in line for line in process.lines)


# -- Cluster -----------------------------------------------------------------------------


def test_a_proof_is_new_once_across_processes_in_a_cluster(
    cluster: RedisClusterServers,
) -> None:
    stores = [RedisStore(cluster.url(), timeout=TIMEOUT) for _ in range(2)]
    expires = time.time() + 30
    keys = [bytes([i]) * 16 for i in range(30)]
    for key in keys:
        assert stores[0].replays.add_if_absent(key, expires)
        assert not stores[1].replays.add_if_absent(key, expires)
    # The keys are spread over the three nodes, each on the node of its slot.
    held = [len(node.client().keys("okta_pyramid:dpop:*")) for node in cluster.nodes]
    assert sum(held) == 30 and min(held) > 0
    # Introspection answers too: single-key calls, each to its slot's node.
    stores[0].answers.put(b"s" * 8, b"d" * 32, {"active": False}, time.time() + 30)
    assert stores[1].answers.get(b"s" * 8, b"d" * 32) is not None


def test_a_nodes_loss_fails_closed_for_its_slots_only(
    cluster: RedisClusterServers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="okta_pyramid.tokens.shared")
    store = RedisStore(cluster.url(), timeout=TIMEOUT)
    assert store.ping()
    lost = cluster.nodes[1]
    lost.kill()
    expires = time.time() + 30
    outcomes: list[tuple[bool, bool | None]] = []
    for index in range(60):
        key = bytes([index]) * 16
        on_lost = cluster.owner(store.key("dpop", key)) is lost
        started = time.monotonic()
        try:
            outcomes.append((on_lost, store.replays.add_if_absent(key, expires)))
        except SharedStoreUnavailable:
            outcomes.append((on_lost, None))
        assert time.monotonic() - started < TIMEOUT + SLACK
    # The lost node's keys fail closed; the others', before and after, are served:
    # the pause after a failure is the node's, not the store's.
    assert {ok for on_lost, ok in outcomes if on_lost} == {None}
    assert {ok for on_lost, ok in outcomes if not on_lost} == {True}
    assert 10 < sum(on_lost for on_lost, _ in outcomes) < 50
    assert f"node 127.0.0.1:{lost.port}" in caplog.text
    assert not store.ping()  # /readyz: not every node answers
    lost.start()
    wait_until(lambda: lost.client().ping(), 10, "the node did not come back")
    time.sleep(1.1)  # the node's pause
    assert store.replays.add_if_absent(b"\xff" * 16, expires) in (True, False)


def test_min_replicas_in_a_cluster_waits_on_the_keys_node(cluster: RedisClusterServers) -> None:
    # No node has a replica: WAIT 1 is never satisfied, so no proof is accepted.
    store = RedisStore(cluster.url(), timeout=0.2, min_replicas=1)
    started = time.monotonic()
    with pytest.raises(SharedStoreUnavailable):
        store.replays.add_if_absent(b"m" * 16, time.time() + 30)
    assert time.monotonic() - started < 0.2 + SLACK
    node = cluster.owner(store.key("dpop", b"m" * 16))
    stats = node.client().info("commandstats")
    assert stats["cmdstat_set"]["calls"] == 1 and stats["cmdstat_wait"]["calls"] == 1


def _keys_in_slot(store: RedisStore, slot: int, count: int) -> list[bytes]:
    """Replay keys (the digests a store is given) whose Redis key is in ``slot``."""
    found: list[bytes] = []
    index = 0
    while len(found) < count:
        digest = index.to_bytes(16, "big")
        if key_slot(store.key("dpop", digest).encode()) == slot:
            found.append(digest)
        index += 1
    return found


def test_a_replay_mark_follows_a_moving_slot(
    cluster: RedisClusterServers, caplog: pytest.LogCaptureFixture
) -> None:
    # redis-py follows MOVED and ASK for its own calls; the SET and WAIT of
    # min_replicas go to a node's connection, and follow them too.
    caplog.set_level(logging.DEBUG, logger="okta_pyramid.tokens.shared")
    plain = RedisStore(cluster.url(), timeout=TIMEOUT)
    waiting = RedisStore(cluster.url(), timeout=0.2, min_replicas=1, failure_backoff=0.01)
    assert plain.ping() and waiting.ping()
    source = cluster.owner(plain.key("dpop", b"\0" * 16))
    slot = key_slot(plain.key("dpop", b"\0" * 16).encode())
    target = next(node for node in cluster.nodes if node is not source)
    ids = {node.port: node.client().execute_command("CLUSTER", "MYID") for node in cluster.nodes}
    keys = _keys_in_slot(plain, slot, 4)
    # The slot is moving from source to target: a new key is for the target (ASK).
    target.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
    source.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
    expires = time.time() + 30
    assert plain.replays.add_if_absent(keys[0], expires)
    with pytest.raises(SharedStoreUnavailable):  # no replica to acknowledge
        waiting.replays.add_if_absent(keys[1], expires)
    # The slot has moved (MOVED): the stores' maps still say source.
    for node in cluster.nodes:
        node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target.port])
    time.sleep(0.02)
    with pytest.raises(SharedStoreUnavailable):
        waiting.replays.add_if_absent(keys[2], expires)
    assert plain.replays.add_if_absent(keys[3], expires)
    # Every mark is on the target, none on the source; min_replicas failed for want
    # of a replica (WAIT ran on the target), never on a redirect.
    assert len(target.client().keys("okta_pyramid:dpop:*")) == 4
    assert source.client().keys("okta_pyramid:dpop:*") == []
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 2, failures
    assert all("fewer than 1 replicas acknowledged" in line for line in failures), failures


def test_the_cluster_acl_in_the_docs_is_enough(cluster: RedisClusterServers) -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "deployment.md").read_text()
    [rule] = _rules(text, "of each cluster node")
    for node in cluster.nodes:
        node.client().execute_command("ACL", "SETUSER", "okta_pyramid", "reset", *rule)
    store = RedisStore(cluster.url(userinfo="okta_pyramid:a-long-random-password@"))
    assert store.ping()
    for index in range(6):
        assert store.replays.add_if_absent(bytes([index]) * 16, time.time() + 30)
    store.answers.put(b"s" * 8, b"d" * 32, {"active": False}, time.time() + 30)
    assert store.answers.get(b"s" * 8, b"d" * 32) is not None
    assert "a-long-random-password" not in repr(store)
    # Nothing beyond the store's keys.
    with pytest.raises(redis.exceptions.NoPermissionError):
        store.client.set("other:x", "1")


@pytest.mark.e2e
def test_a_cluster_refuses_replays_across_pserve_processes_and_loses_only_its_nodes_slots(
    cluster: RedisClusterServers, pserve: Callable[..., Server], issuer: LoopbackIssuer
) -> None:
    processes = [
        pserve(
            OKTA_ISSUER=issuer.issuer,
            OKTA_AUDIENCE=issuer.audience,
            OKTA_SHARED_STORE=cluster.url(),
            OKTA_SHARED_STORE_TIMEOUT=str(TIMEOUT),
        )
        for _ in range(2)
    ]
    for process in processes:
        assert wait_ready(process).status_code == 200
    client = DPoPClient(issuer)
    host = processes[0].url.removeprefix("http://")

    def call(index: int, proof: str) -> requests.Response:
        return processes[index].get(
            "/api/whoami",
            headers={"Authorization": f"DPoP {client.token}", "DPoP": proof, "Host": host},
        )

    url = processes[0].url + "/api/whoami"
    # A proof accepted by one process is refused by the other, whichever node holds it.
    for index in range(6):
        proof = make_proof(client.key, "GET", url, access_token=client.token, jti=f"one-{index}")
        assert call(index % 2, proof).status_code == 200
        replayed = call(1 - index % 2, proof)
        assert replayed.status_code == 401
        assert "already used" in replayed.json()["error_description"]
    # One primary gone: the requests whose proof's key is in its slots get 503, the
    # others are served as before.
    lost = cluster.nodes[2]
    lost.kill()
    seen: dict[bool, set[int]] = {True: set(), False: set()}
    for index in range(40):
        jti = f"after-{index}"
        on_lost = cluster.owner(replay_key(client.jkt, jti)) is lost
        proof = make_proof(client.key, "GET", url, access_token=client.token, jti=jti)
        response = call(index % 2, proof)
        seen[on_lost].add(response.status_code)
        if response.status_code == 503:
            assert response.json()["error"] == "temporarily_unavailable"
    assert seen == {True: {503}, False: {200}}
    for process in processes:
        process.stop()
        assert "Traceback" not in process.stderr
