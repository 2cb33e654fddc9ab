"""Honest load gets its answers: `pserve production.ini` with eight waitress threads,
many clients with fresh tokens at once, and a loopback issuer that answers as slowly
as a busy cloud server. What the limits are for (a stalled issuer, a flood of junk)
is in tests/test_stalled_issuer.py and below; here nothing may be refused for being
one request too many."""

from __future__ import annotations

import secrets
import threading
import time

import pytest
import requests

from .helpers import run_together
from .issuer import LoopbackIssuer, SigningKey, rsa_key
from .services import Server, wait_ready

pytestmark = pytest.mark.e2e

THREADS = 8
INTROSPECT = "/oauth2/default/v1/introspect"
KEYS = "/oauth2/default/v1/keys"
#: How long the issuer takes to answer an introspection call (Okta's often takes longer).
LATENCY = 0.1


def live_server(pserve, issuer: LoopbackIssuer, **env: str) -> Server:
    """A process whose POST /api/messages needs a live token (introspection)."""
    server = pserve(
        OKTA_ISSUER=env.pop("OKTA_ISSUER", issuer.issuer),
        OKTA_AUDIENCE=issuer.audience,
        WAITRESS_THREADS=str(THREADS),
        OKTA_INTROSPECTION_CLIENT_ID=issuer.CLIENT_ID,
        OKTA_INTROSPECTION_CLIENT_SECRET=issuer.CLIENT_SECRET,
        **env,
    )
    assert wait_ready(server).status_code == 200
    return server


def session() -> requests.Session:
    client = requests.Session()
    client.trust_env = False  # straight to the server, never via a proxy
    return client


def post(client: requests.Session, server: Server, token: str) -> int:
    return client.post(
        server.url + "/api/messages",
        json={"text": "hi"},
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    ).status_code


def test_fresh_tokens_from_many_clients_on_a_live_view_all_get_in(
    pserve, issuer: LoopbackIssuer
) -> None:
    # As many clients as the server has threads, each posting with a new token every
    # time: every request needs its own introspection call, 100 ms each.
    server = live_server(pserve, issuer)
    issuer.introspection_delay = LATENCY
    tokens = [[issuer.mint(scp=["messages:write"]) for _ in range(8)] for _ in range(THREADS)]
    statuses: list[int] = []

    def client(own: list[str]) -> None:
        with session() as http:
            statuses.extend(post(http, server, token) for token in own)

    run_together(client, [(own,) for own in tokens], timeout=60)
    assert statuses == [201] * 64
    assert issuer.hits[INTROSPECT] == 64
    server.stop()
    assert "introspection failed" not in server.stderr


def test_a_flood_of_junk_opaque_tokens_does_not_keep_real_callers_out(
    pserve, issuer: LoopbackIssuer
) -> None:
    # Opaque tokens are looked up (opaque=true): anyone can make one up. Four clients
    # send random ones for four seconds while four others post with fresh JWTs.
    server = live_server(pserve, issuer, OKTA_ISSUER=f"{issuer.issuer} opaque=true")
    issuer.introspection_delay = LATENCY
    until = time.monotonic() + 4
    junk: list[int] = []
    real: list[int] = []

    def flood() -> None:
        with session() as http:
            while time.monotonic() < until:
                junk.append(post(http, server, secrets.token_urlsafe(32)))

    def write() -> None:
        with session() as http:
            while time.monotonic() < until:
                real.append(post(http, server, issuer.mint(scp=["messages:write"])))

    run_together(lambda job: job(), [(flood,)] * 4 + [(write,)] * 4, timeout=60)
    assert real and real == [201] * len(real)
    assert len(real) >= 40  # about 10 a second for each of the four, not a trickle
    assert junk and set(junk) <= {401, 503}


@pytest.mark.parametrize("refresh", ["0", "300"], ids=["on-demand", "background"])
def test_a_burst_at_cold_start_shares_one_key_fetch(
    pserve, issuer: LoopbackIssuer, refresh: str
) -> None:
    # Sixteen requests arrive as the process starts, before any key is held: the first
    # fetch (a request's, or the background refresher's) serves them all.
    issuer.jwks_delay = 0.05
    server = pserve(
        OKTA_ISSUER=issuer.issuer,
        OKTA_AUDIENCE=issuer.audience,
        WAITRESS_THREADS=str(THREADS),
        OKTA_JWKS_REFRESH_INTERVAL=refresh,
    )
    tokens = [issuer.mint() for _ in range(16)]
    start = threading.Barrier(16)
    statuses: list[int] = []

    def first_call(token: str) -> None:
        start.wait()
        statuses.append(
            server.get("/api/whoami", headers={"Authorization": f"Bearer {token}"}).status_code
        )

    run_together(first_call, [(token,) for token in tokens])
    assert statuses == [200] * 16
    assert issuer.hits[KEYS] == 1


def test_unknown_key_ids_at_cold_start_are_refused_with_few_fetches(
    pserve, issuer: LoopbackIssuer
) -> None:
    # Sixty tokens naming keys the issuer does not serve, from eight clients at once,
    # as the process starts: each is refused (401), and the issuer is asked little.
    issuer.jwks_delay = 0.05
    server = pserve(
        OKTA_ISSUER=issuer.issuer,
        OKTA_AUDIENCE=issuer.audience,
        WAITRESS_THREADS=str(THREADS),
        OKTA_JWKS_REFRESH_INTERVAL="0",
    )
    strangers = [SigningKey(f"key-{index}", rsa_key(index)) for index in range(20, 28)]
    batches = [[issuer.mint(key=key) for _ in range(8)] for key in strangers]
    batches[-1] = batches[-1][:4]  # 60 in all
    statuses: list[int] = []
    start = threading.Barrier(len(batches))

    def client(own: list[str]) -> None:
        start.wait()
        with session() as http:
            for token in own:
                statuses.append(
                    http.get(
                        server.url + "/api/whoami",
                        timeout=30,
                        headers={"Authorization": f"Bearer {token}"},
                    ).status_code
                )

    run_together(client, [(own,) for own in batches])
    assert statuses == [401] * 60
    assert 1 <= issuer.hits[KEYS] <= 3
