"""A stalled issuer, served for real: `pserve production.ini` with four waitress threads
while the issuer's key set endpoint sends one header line after another, forever."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from .issuer import LoopbackIssuer, SigningKey, rsa_key
from .services import Server, wait_ready

pytestmark = pytest.mark.e2e

DEADLINE = 1.0  # okta.http_timeout
#: waitress's default, and a larger server: the limits are sized to its threads.
THREAD_COUNTS = pytest.mark.parametrize("threads", [4, 8], ids=["4-threads", "8-threads"])


def timed_get(
    server: Server, path: str, token: str | None = None
) -> tuple[requests.Response, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.monotonic()
    response = server.get(path, headers=headers)
    return response, time.monotonic() - started


def the_rest_answers_at_once(server: Server, held: str) -> None:
    """Requests that need nothing from the stalled issuer answer well within its deadline."""
    for path, token in [("/api/hello", None), ("/healthz", None), ("/api/whoami", held)]:
        response, elapsed = timed_get(server, path, token)
        assert response.status_code == 200, (path, response.text)
        assert elapsed < 0.3 * DEADLINE, (path, elapsed)


def all_answered_503_in_time(answers: list[tuple[requests.Response, float]], threads: int) -> None:
    """Each request that needed the issuer got 503, when to retry, within about the
    deadline: never a success, never a refusal of the token."""
    assert len(answers) == 2 * threads
    for response, elapsed in answers:
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["error"] == "temporarily_unavailable"
        assert elapsed < DEADLINE + 0.5, elapsed


@THREAD_COUNTS
def test_a_stalled_issuer_does_not_freeze_the_api(
    pserve, issuer: LoopbackIssuer, threads: int
) -> None:
    server = pserve(
        OKTA_ISSUER=issuer.issuer,
        OKTA_AUDIENCE=issuer.audience,
        OKTA_HTTP_TIMEOUT=str(DEADLINE),
        OKTA_JWKS_REFETCH_COOLDOWN="0",
        WAITRESS_THREADS=str(threads),
    )
    assert wait_ready(server).status_code == 200  # key-1 fetched by the warm-up
    held = issuer.mint()
    unknown = issuer.mint(key=SigningKey("key-9", rsa_key(9)))
    issuer.mode = "drip_headers"

    # More requests needing a fetch than the server has threads, all at once.
    answers: list[tuple[requests.Response, float]] = []
    start = threading.Barrier(2 * threads)

    def unknown_kid() -> None:
        start.wait()
        answers.append(timed_get(server, "/api/whoami", unknown))

    workers = [threading.Thread(target=unknown_kid) for _ in range(2 * threads)]
    for thread in workers:
        thread.start()
    time.sleep(0.2 * DEADLINE)  # the fetch is under way and stalled
    assert issuer.hits["/oauth2/default/v1/keys"] == 2

    # Meanwhile the rest of the API answers at once.
    the_rest_answers_at_once(server, held)
    for thread in workers:
        thread.join(10)

    # The requests with an unknown key: the key may be new; the issuer could not say.
    all_answered_503_in_time(answers, threads)
    assert max(elapsed for _, elapsed in answers) >= DEADLINE  # the fetch was waited for

    server.stop()
    assert "took longer than 1s" in server.stderr
    assert "Traceback" not in server.stderr


@THREAD_COUNTS
def test_a_stalled_introspection_endpoint_does_not_freeze_the_api(
    pserve, issuer: LoopbackIssuer, threads: int
) -> None:
    server = pserve(
        OKTA_ISSUER=issuer.issuer,
        OKTA_AUDIENCE=issuer.audience,
        OKTA_HTTP_TIMEOUT=str(DEADLINE),
        WAITRESS_THREADS=str(threads),
        OKTA_INTROSPECTION_CLIENT_ID=issuer.CLIENT_ID,
        OKTA_INTROSPECTION_CLIENT_SECRET=issuer.CLIENT_SECRET,
    )
    assert wait_ready(server).status_code == 200
    # The introspection endpoint answers with one header line after another, forever;
    # the keys are still served.
    issuer.introspection_mode = "drip_headers"
    held = issuer.mint()
    writers = [issuer.mint(scp=["messages:write"]) for _ in range(2 * threads)]
    answers: list[tuple[requests.Response, float]] = []
    start = threading.Barrier(2 * threads)

    def write(token: str) -> None:
        start.wait()
        began = time.monotonic()
        with requests.Session() as session:
            session.trust_env = False
            response = session.post(
                server.url + "/api/messages",
                json={"text": "hi"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
        answers.append((response, time.monotonic() - began))

    workers = [threading.Thread(target=write, args=(token,)) for token in writers]
    for thread in workers:
        thread.start()
    time.sleep(0.2 * DEADLINE)  # the calls are under way and stalled

    # Views that need no live token answer at once.
    the_rest_answers_at_once(server, held)
    for thread in workers:
        thread.join(10)

    # Every write needed the issuer's word.
    all_answered_503_in_time(answers, threads)
    # At most one call per thread but one was made, however many requests needed one.
    assert 1 <= issuer.hits["/oauth2/default/v1/introspect"] <= threads - 1
    server.stop()
    assert "Traceback" not in server.stderr
    warnings = [line for line in server.stderr.splitlines() if "introspection failed" in line]
    assert len(warnings) == 1, warnings
