"""Discovery and the key cache, over real HTTP to the loopback issuer."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from okta_pyramid.tokens import exceptions as exc
from okta_pyramid.tokens.discovery import IssuerClient, discovery_urls
from okta_pyramid.tokens.fetch import MAX_DOCUMENT_BYTES, FetchError
from okta_pyramid.tokens.jwks import KeySet, parse_jwks
from okta_pyramid.tokens.verifier import AccessTokenVerifier

from ..helpers import run_together
from ..issuer import LoopbackIssuer, b64url_uint, public_jwk, rsa_key, unreachable_url

OAS = "/oauth2/default/.well-known/oauth-authorization-server"
OIDC = "/oauth2/default/.well-known/openid-configuration"
KEYS = "/oauth2/default/v1/keys"


def test_discovery_urls() -> None:
    assert discovery_urls("https://o.okta.com/oauth2/default") == [
        "https://o.okta.com/oauth2/default/.well-known/oauth-authorization-server",
        "https://o.okta.com/oauth2/default/.well-known/openid-configuration",
        "https://o.okta.com/.well-known/oauth-authorization-server/oauth2/default",
    ]
    assert discovery_urls("https://login.example.com") == [
        "https://login.example.com/.well-known/oauth-authorization-server",
        "https://login.example.com/.well-known/openid-configuration",
    ]


def test_rfc8414_metadata_is_used_first(issuer: LoopbackIssuer) -> None:
    metadata = IssuerClient(issuer.issuer).metadata()
    assert metadata.jwks_uri == issuer.jwks_uri
    assert dict(issuer.hits) == {OAS: 1}


def test_falls_back_to_openid_configuration(issuer: LoopbackIssuer) -> None:
    issuer.well_known = {"openid-configuration"}
    assert IssuerClient(issuer.issuer).metadata().jwks_uri == issuer.jwks_uri
    assert issuer.hits[OAS] == 1 and issuer.hits[OIDC] == 1


def test_metadata_issuer_must_match_exactly(issuer: LoopbackIssuer) -> None:
    # RFC 8414 §3.3: otherwise an attacker's metadata could point at their keys.
    issuer.metadata_overrides = {"issuer": issuer.issuer + "/"}
    with pytest.raises(FetchError, match="expected exactly"):
        IssuerClient(issuer.issuer).metadata()


@pytest.mark.parametrize(
    "jwks_uri",
    [
        None,
        42,
        "ftp://x/keys",
        "http://evil.example.com/keys",
        "/relative/keys",
        "https://[::1/keys",
        "https://keys.example.com:99999/keys",
    ],
)
def test_metadata_needs_a_usable_jwks_uri(issuer: LoopbackIssuer, jwks_uri: Any) -> None:
    issuer.metadata_overrides = {"jwks_uri": jwks_uri}
    with pytest.raises(FetchError, match="jwks_uri"):
        IssuerClient(issuer.issuer).metadata()


def test_metadata_is_fetched_once(issuer: LoopbackIssuer) -> None:
    client = IssuerClient(issuer.issuer)
    client.fetch_keys()
    client.fetch_keys()
    assert issuer.hits[OAS] == 1 and issuer.hits[KEYS] == 2


@pytest.mark.parametrize("mode", ["error", "garbage"])
def test_broken_issuer_is_a_fetch_error(issuer: LoopbackIssuer, mode: str) -> None:
    issuer.mode = mode
    with pytest.raises(FetchError):
        IssuerClient(issuer.issuer).metadata()


def test_hanging_issuer_times_out(issuer: LoopbackIssuer) -> None:
    issuer.mode = "hang"
    started = time.monotonic()
    with pytest.raises(FetchError):
        IssuerClient(issuer.issuer, http_timeout=0.3).metadata()
    assert time.monotonic() - started < 2


def test_redirects_are_not_followed(issuer: LoopbackIssuer) -> None:
    # A redirect could lead from the https jwks_uri to a plain-http one.
    client = IssuerClient(issuer.issuer)
    client.metadata()
    issuer.mode = "redirect"
    with pytest.raises(FetchError, match="HTTP 302"):
        client.fetch_keys()
    assert "/elsewhere" not in issuer.hits


def test_oversized_document_is_refused(issuer: LoopbackIssuer) -> None:
    issuer.jwks_override = {"keys": [], "padding": "x" * MAX_DOCUMENT_BYTES}
    with pytest.raises(FetchError, match="more than"):
        IssuerClient(issuer.issuer).fetch_keys()


def test_unusable_keys_are_skipped() -> None:
    good = public_jwk(rsa_key(1), "good")
    weak = public_jwk(rsa_key(7, 1024), "weak")
    keys, _ = parse_jwks(
        {
            "keys": [
                good,
                weak,
                {**public_jwk(rsa_key(2), "enc"), "use": "enc"},
                {**public_jwk(rsa_key(2), "ps"), "alg": "PS256"},
                {**public_jwk(rsa_key(2), "ops"), "key_ops": ["encrypt"]},
                {**public_jwk(rsa_key(2), "priv"), "d": "AQAB"},
                {**public_jwk(rsa_key(2), "good")},  # duplicate kid: the first one wins
                {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
                {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
                {"kty": "RSA", "kid": 7, "n": good["n"], "e": good["e"]},
                "not a key",
            ]
        }
    )
    assert set(keys) == {"good"}
    assert keys["good"].public_numbers() == rsa_key(1).public_key().public_numbers()


def test_an_rsa_key_that_cannot_be_named_is_skipped_aloud(caplog: pytest.LogCaptureFixture) -> None:
    # Otherwise a key set whose only key has no kid would be a silent 503.
    good = public_jwk(rsa_key(1), "good")
    nameless = {k: v for k, v in public_jwk(rsa_key(2), "x").items() if k != "kid"}
    keys, _ = parse_jwks(
        {
            "keys": [
                good,
                nameless,
                {**public_jwk(rsa_key(2), "good")},
                {**public_jwk(rsa_key(2), "enc"), "use": "enc"},
            ]
        }
    )
    assert set(keys) == {"good"}
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "issuer key set: an RSA key has no kid; ignored",
        "issuer key set: key 'good' is listed twice; the first is used",
    ]


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"keys": {}},
        {"nokeys": []},
        "x",
        {"keys": []},
        {"keys": [{**public_jwk(rsa_key(1), "k"), "alg": "RSA256"}]},
    ],
)
def test_malformed_key_set(document: Any) -> None:
    with pytest.raises(FetchError):
        parse_jwks(document)


def test_unknown_kid_refetch_is_rate_limited(issuer: LoopbackIssuer) -> None:
    clock = FakeClock()
    keys = KeySet(IssuerClient(issuer.issuer), refetch_cooldown=30, clock=clock)
    keys.get("key-1")
    for second in range(95):
        clock.now += 1
        with pytest.raises(exc.UnknownKey):
            keys.get(f"made-up-{second}")
    # The load, then one refetch per 30 s cooldown however many made-up kids arrive.
    assert issuer.hits[KEYS] == 1 + 3


def test_rotated_in_key_is_picked_up_without_restart(issuer: LoopbackIssuer) -> None:
    verifier = AccessTokenVerifier(issuer.issuer, jwks_refetch_cooldown=0)
    assert verifier.verify(issuer.mint())
    new = issuer.rotate(2)
    assert verifier.verify(issuer.mint(key=new))["iss"] == issuer.issuer
    assert issuer.hits[KEYS] == 2


def test_removed_key_stops_its_tokens(issuer: LoopbackIssuer) -> None:
    clock = FakeClock()
    keys = KeySet(IssuerClient(issuer.issuer), refetch_cooldown=30, clock=clock)
    keys.get("key-1")
    generation = keys.generation
    issuer.rotate(2, keep_old=False)
    clock.now += 31
    keys.get("key-2")
    assert keys.kids == {"key-2"}
    assert keys.generation == generation + 1
    with pytest.raises(exc.UnknownKey):
        keys.get("key-1")


def test_unchanged_key_set_keeps_its_generation(issuer: LoopbackIssuer) -> None:
    keys = KeySet(IssuerClient(issuer.issuer), refetch_cooldown=0)
    keys.refresh()
    generation = keys.generation
    keys.refresh()
    assert keys.generation == generation


def test_a_lookup_waits_for_a_fetch_under_way(issuer: LoopbackIssuer) -> None:
    # The background warm-up has started the first fetch when a token arrives.
    issuer.jwks_delay = 0.3
    keys = KeySet(IssuerClient(issuer.issuer), refetch_cooldown=30)
    warmup = threading.Thread(target=keys.refresh)
    warmup.start()
    while not keys._lock.locked():
        time.sleep(0.001)
    assert keys.get("key-1")
    warmup.join()
    assert issuer.hits[KEYS] == 1


def test_keys_held_survive_an_issuer_outage(issuer: LoopbackIssuer) -> None:
    verifier = AccessTokenVerifier(issuer.issuer, jwks_refetch_cooldown=0)
    token = issuer.mint()
    verifier.verify(token)
    issuer.mode = "error"
    verifier.keys.refresh()
    assert verifier.keys.last_error is not None
    assert verifier.verify(token)["sub"] == "alice@example.com"  # stale, not failing


def test_a_key_set_with_no_usable_key_keeps_the_keys_held(issuer: LoopbackIssuer) -> None:
    # E.g. a typo in the issuer's JWKS: refusing every valid token would be worse.
    verifier = AccessTokenVerifier(issuer.issuer, jwks_refetch_cooldown=0)
    token = issuer.mint()
    verifier.verify(token)
    issuer.jwks_override = {"keys": []}
    verifier.keys.refresh()
    assert verifier.keys.last_error is not None
    assert verifier.keys.kids == {"key-1"}
    assert verifier.verify(token)


def test_no_keys_at_all_is_issuer_unavailable(issuer: LoopbackIssuer) -> None:
    verifier = AccessTokenVerifier(unreachable_url(), http_timeout=1)
    with pytest.raises(exc.IssuerUnavailable) as info:
        verifier.verify(issuer.mint())
    assert info.value.retry_after >= 1


def test_failed_fetch_is_not_retried_during_the_backoff(issuer: LoopbackIssuer) -> None:
    issuer.mode = "error"
    clock = FakeClock()
    keys = KeySet(IssuerClient(issuer.issuer), refetch_cooldown=30, clock=clock)
    for _ in range(20):
        with pytest.raises(exc.IssuerUnavailable):
            keys.get("key-1")
    assert issuer.hits[OAS] == 1
    issuer.mode = "ok"
    clock.now += 5
    assert keys.get("key-1")


def test_unknown_kid_while_issuer_is_down_is_unavailable(issuer: LoopbackIssuer) -> None:
    clock = FakeClock()
    keys = KeySet(IssuerClient(issuer.issuer), refetch_cooldown=30, clock=clock)
    keys.get("key-1")
    issuer.mode = "error"
    clock.now += 31
    # The token may be signed by a key we cannot fetch yet: 503, not 401.
    with pytest.raises(exc.IssuerUnavailable):
        keys.get("key-2")
    assert keys.get("key-1")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- requests that arrive while a fetch is under way wait for it --------------------


def test_misses_during_an_in_flight_fetch_share_it_with_a_real_cooldown(
    issuer: LoopbackIssuer,
) -> None:
    # With the default cooldown, the first fetch after start-up is "recent" for every
    # request that arrives while it is in flight: they must wait for it, not answer
    # "unknown kid" (a burst of 401s for valid tokens at every cold start).
    issuer.jwks_delay = 0.3
    keys = KeySet(IssuerClient(issuer.issuer, http_timeout=5), refetch_cooldown=30, max_waiters=8)
    results: list[Any] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        try:
            results.append(keys.get("key-1"))
        except Exception as exc:
            results.append(exc)

    run_together(worker, [()] * 8)
    assert len(results) == 8
    assert not [r for r in results if isinstance(r, Exception)], results
    assert issuer.hits[KEYS] == 1


def test_a_made_up_kid_during_an_in_flight_fetch_does_not_fetch_again(
    issuer: LoopbackIssuer,
) -> None:
    issuer.jwks_delay = 0.3
    keys = KeySet(IssuerClient(issuer.issuer, http_timeout=5), refetch_cooldown=30, max_waiters=6)
    errors: list[str] = []
    barrier = threading.Barrier(6)

    def worker(kid: str) -> None:
        barrier.wait()
        try:
            keys.get(kid)
        except Exception as exc:
            errors.append(type(exc).__name__)

    run_together(worker, [(f"made-up-{i}",) for i in range(5)] + [("key-1",)])
    assert sorted(errors) == ["UnknownKey"] * 5
    assert issuer.hits[KEYS] == 1


def verify_concurrently(verifier: AccessTokenVerifier, token: str, count: int) -> list[str]:
    outcomes: list[str] = []
    start = threading.Barrier(count)

    def work() -> None:
        start.wait()
        try:
            verifier.verify(token)
            outcomes.append("ok")
        except Exception as exc:  # reported in the assertion
            outcomes.append(type(exc).__name__)

    run_together(work, [()] * count, timeout=10)
    return outcomes


def test_requests_with_a_rotated_key_share_its_fetch(issuer: LoopbackIssuer) -> None:
    verifier = AccessTokenVerifier(
        issuer.issuer, issuer.audience, http_timeout=2, jwks_refetch_cooldown=0.2
    )
    verifier.keys.max_waiters = 5
    verifier.verify(issuer.mint())
    time.sleep(0.3)  # a refetch is due again
    new_key = issuer.rotate(2)
    issuer.jwks_delay = 0.3
    assert verify_concurrently(verifier, issuer.mint(key=new_key), 5) == ["ok"] * 5
    assert issuer.hits[KEYS] == 2


# -- a stalled issuer: one deadline per fetch, bounded waits --------------------------


@pytest.mark.parametrize("mode", ["drip", "drip_headers"])
def test_a_dripping_issuer_is_cut_at_the_deadline(issuer: LoopbackIssuer, mode: str) -> None:
    # A byte keeps arriving, so no read times out: the deadline over the whole
    # exchange must end it, in the body as in the headers.
    issuer.mode = mode
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than 0.5s"):
        IssuerClient(issuer.issuer, http_timeout=0.5).metadata()
    # The issuer goes on for 5 s (body) or 60 s (headers) when nothing cuts it.
    assert 0.5 <= time.monotonic() - started < 2


def test_one_deadline_covers_discovery_and_the_key_set(issuer: LoopbackIssuer) -> None:
    client = IssuerClient(issuer.issuer, http_timeout=0.5)
    issuer.jwks_delay = 0.3
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer"):
        client.fetch_keys(deadline=time.monotonic() + 0.2)
    assert time.monotonic() - started < 1
    with pytest.raises(FetchError, match="took longer"):
        client.get_json(issuer.jwks_uri, deadline=time.monotonic() - 1)


def test_connections_are_not_kept_between_fetches(issuer: LoopbackIssuer) -> None:
    # A pooled connection would be reused without the watchdog knowing it.
    client = IssuerClient(issuer.issuer)
    client.fetch_keys()
    issuer.mode = "drip_headers"
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer"):
        client.fetch_keys(deadline=time.monotonic() + 0.3)
    assert time.monotonic() - started < 2


class OverrunningClient(IssuerClient):
    """A fetch that outlives its deadline once ``overrun`` is set, as a stalled name
    lookup does (the resolver is outside the deadline's reach)."""

    overrun = False

    def fetch_keys(self, *, deadline: float | None = None):
        if self.overrun:
            time.sleep(3)
        return super().fetch_keys()


def in_thread(target: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def wait_until_fetching(keys: KeySet) -> None:
    while not keys._lock.locked():
        time.sleep(0.001)


def test_nobody_waits_on_a_fetch_past_the_deadline(issuer: LoopbackIssuer) -> None:
    client = OverrunningClient(issuer.issuer, http_timeout=0.3)
    keys = KeySet(client, refetch_cooldown=0)
    keys.refresh()
    client.overrun = True
    fetch = in_thread(keys.refresh)
    wait_until_fetching(keys)
    started = time.monotonic()
    with pytest.raises(exc.IssuerUnavailable) as info:
        keys.get("key-2")
    assert time.monotonic() - started < 1.2  # not the 3 s the fetch takes
    assert info.value.retry_after >= 1
    assert keys.get("key-1")  # held: no waiting at all
    # The background refresher, too, gives up waiting, and says so.
    assert keys.refresh() is False
    assert time.monotonic() - started < 2.4
    fetch.join()


def test_only_a_few_requests_wait_for_a_fetch(issuer: LoopbackIssuer) -> None:
    # Each waiting request holds a server thread; the others are answered at once.
    issuer.jwks_delay = 1
    keys = KeySet(IssuerClient(issuer.issuer, http_timeout=2), refetch_cooldown=30, max_waiters=1)
    results: list[Any] = []
    first = in_thread(lambda: results.append(keys.get("key-1")))
    wait_until_fetching(keys)
    waiter = in_thread(lambda: results.append(keys.get("key-1")))
    while keys._waiting < 1:
        time.sleep(0.001)
    started = time.monotonic()
    with pytest.raises(exc.IssuerUnavailable):
        keys.get("key-1")
    assert time.monotonic() - started < 0.6  # not the 1 s the fetch takes
    first.join()
    waiter.join()
    assert len(results) == 2 and issuer.hits[KEYS] == 1


def test_everyone_waits_for_a_fetch_that_runs_its_normal_time(issuer: LoopbackIssuer) -> None:
    # A burst of requests for keys not held yet (start-up, a rotation): however many,
    # they share the one fetch while it takes its normal time, whatever max_waiters.
    issuer.jwks_delay = 0.2
    keys = KeySet(IssuerClient(issuer.issuer, http_timeout=2), refetch_cooldown=30, max_waiters=1)
    found: list[Any] = []
    run_together(lambda: found.append(keys.get("key-1")), [()] * 16)
    assert len(found) == 16 and issuer.hits[KEYS] == 1


def test_surplus_waiters_leave_a_fetch_that_runs_long(issuer: LoopbackIssuer) -> None:
    # Once the fetch runs past its normal time (a quarter of the 2 s timeout), only
    # max_waiters requests go on waiting; the others are answered then.
    keys = KeySet(IssuerClient(issuer.issuer, http_timeout=2), refetch_cooldown=0, max_waiters=1)
    keys.refresh()
    issuer.mode = "drip_headers"
    fetch = in_thread(keys.refresh)
    wait_until_fetching(keys)
    outcomes: list[tuple[str, float]] = []

    def lookup() -> None:
        began = time.monotonic()
        try:
            keys.get("key-2")
            outcomes.append(("key", time.monotonic() - began))
        except exc.VerificationError as error:
            outcomes.append((type(error).__name__, time.monotonic() - began))

    run_together(lookup, [()] * 4)
    fetch.join()
    assert all(kind == "IssuerUnavailable" for kind, _ in outcomes), outcomes
    waited = sorted(elapsed for _, elapsed in outcomes)
    assert all(0.3 < elapsed < 1.2 for elapsed in waited[:3]), waited  # the patience
    assert waited[3] >= 1.8  # one waited for the fetch to its deadline


def test_a_kid_certainly_unknown_is_401_while_a_fetch_hangs(issuer: LoopbackIssuer) -> None:
    clock = FakeClock()
    keys = KeySet(
        IssuerClient(issuer.issuer, http_timeout=2), refetch_cooldown=30, max_waiters=0, clock=clock
    )
    keys.get("key-1")
    issuer.mode = "drip_headers"
    fetch = in_thread(keys.refresh)  # the background refresh, stalled
    wait_until_fetching(keys)
    started = time.monotonic()
    # Keys fetched successfully less than a cooldown ago do not have this kid.
    with pytest.raises(exc.UnknownKey):
        keys.get("made-up")
    clock.now += 31
    # Past the cooldown, the stalled fetch might have brought it: try again later.
    with pytest.raises(exc.IssuerUnavailable):
        keys.get("key-2")
    assert keys.get("key-1")
    assert time.monotonic() - started < 1  # not the fetch's 2 s deadline
    fetch.join()


_N = public_jwk(rsa_key(1), "x")["n"]
_N_INT = rsa_key(1).public_key().public_numbers().n
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_ZERO_N = base64.urlsafe_b64encode(b"\0" + _N_INT.to_bytes(256, "big")).rstrip(b"=").decode()
_NOT_UINT = "not a minimal base64url integer"


@pytest.mark.parametrize(
    ("n", "e", "reason"),
    [
        pytest.param(_N, "Aw", "exponent below 65537", id="e=3"),
        pytest.param(_N, "__8", "exponent below 65537", id="e=65535"),
        pytest.param(_N, "AQAC", "even exponent", id="e=65538 even"),
        pytest.param(b64url_uint(_N_INT + 1), "AQAB", "even modulus", id="even modulus"),
        pytest.param(_ZERO_N, "AQAB", _NOT_UINT, id="n with a leading zero octet"),
        pytest.param(_N, "AAEAAQ", _NOT_UINT, id="e with a leading zero octet"),
        pytest.param(_N[:100] + "+" + _N[101:], "AQAB", _NOT_UINT, id="n with a + character"),
        pytest.param(_N + "==", "AQAB", _NOT_UINT, id="n with padding"),
        pytest.param(_N[:100] + " " + _N[100:], "AQAB", _NOT_UINT, id="n with a space"),
        pytest.param(_N[:200] + "é" + _N[201:], "AQAB", _NOT_UINT, id="n not ASCII"),
        pytest.param(
            _N[:-1] + _ALPHABET[_ALPHABET.index(_N[-1]) | 1],
            "AQAB",
            _NOT_UINT,
            id="n with spare bits set",
        ),
        pytest.param(_N, "AQAB\n", _NOT_UINT, id="e with a newline"),
        pytest.param(_N, "", _NOT_UINT, id="e empty"),
        pytest.param(_N, 65537, _NOT_UINT, id="e a number"),
    ],
)
def test_keys_that_are_not_sound_rsa_keys_are_refused(
    n: str, e: Any, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    # RFC 7518 §6.3.1: n and e are Base64urlUInt values, minimal and unpadded.
    bad = {**public_jwk(rsa_key(2), "bad"), "n": n, "e": e}
    keys, _ = parse_jwks({"keys": [bad, public_jwk(rsa_key(1), "good")]})
    assert set(keys) == {"good"}
    [record] = [r for r in caplog.records if "'bad'" in r.getMessage()]
    assert reason in record.getMessage() and record.levelname == "WARNING"
    assert n not in record.getMessage()  # key material stays out of the log
    with pytest.raises(FetchError, match="no usable"):
        parse_jwks({"keys": [bad]})


def test_sound_keys_are_kept() -> None:
    jwk = public_jwk(rsa_key(1), "k")
    assert jwk["e"] == "AQAB" and not jwk["n"].startswith("AA")
    keys, _ = parse_jwks({"keys": [jwk]})
    assert keys["k"].public_numbers() == rsa_key(1).public_key().public_numbers()


# -- TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loopback_tls() -> Any:
    from benchmarks.tls import make_loopback_tls

    return make_loopback_tls()


@pytest.fixture
def https_issuer(loopback_tls: Any) -> Any:
    server = LoopbackIssuer(ssl_context=loopback_tls.server_context())
    yield server
    server.close()


def _trusting(ca_file: Any) -> Any:
    import requests

    session = requests.Session()
    session.verify = str(ca_file)
    # Otherwise requests lets REQUESTS_CA_BUNDLE, if set, override session.verify.
    session.trust_env = False
    return session


def test_https_fetches_share_one_tls_context(
    https_issuer: LoopbackIssuer, loopback_tls: Any
) -> None:
    # Loading the trusted authorities costs milliseconds of CPU; requests would do it
    # for every new connection, and every fetch opens new connections.
    client = IssuerClient(https_issuer.issuer, session=_trusting(loopback_tls.ca_file))
    for _ in range(3):
        assert client.fetch_keys()[0]
    assert len(client._tls) == 1


def test_https_still_refuses_a_server_it_does_not_trust(https_issuer: LoopbackIssuer) -> None:
    # requests' own bundle does not hold the run's throwaway authority.
    with pytest.raises(FetchError, match="could not be fetched"):
        IssuerClient(https_issuer.issuer).get_json(https_issuer.jwks_uri)


def test_https_still_checks_the_host_name(https_issuer: LoopbackIssuer, loopback_tls: Any) -> None:
    # The certificate names 127.0.0.1 only.
    url = https_issuer.jwks_uri.replace("127.0.0.1", "localhost")
    client = IssuerClient(https_issuer.issuer, session=_trusting(loopback_tls.ca_file))
    assert client.get_json(https_issuer.jwks_uri)["keys"]
    with pytest.raises(FetchError, match="could not be fetched"):
        client.get_json(url)


# -- kept-alive connections (introspection) ------------------------------------------


def _post(client: IssuerClient, issuer: LoopbackIssuer) -> Any:
    credentials = base64.b64encode(f"{issuer.CLIENT_ID}:{issuer.CLIENT_SECRET}".encode())
    return client.post_form(
        issuer.introspection_endpoint,
        {"token": issuer.mint()},
        headers={"Authorization": "Basic " + credentials.decode()},
    )


def test_keep_alive_makes_one_connection_for_many_exchanges(issuer: LoopbackIssuer) -> None:
    client = IssuerClient(issuer.issuer, keep_alive=True)
    for _ in range(5):
        assert _post(client, issuer)["active"] is True
    assert issuer.connections == 1
    plain = IssuerClient(issuer.issuer)
    for _ in range(3):
        _post(plain, issuer)
    assert issuer.connections == 4  # one per exchange without it


def test_the_deadline_covers_an_exchange_on_a_kept_connection(issuer: LoopbackIssuer) -> None:
    client = IssuerClient(issuer.issuer, http_timeout=0.5, keep_alive=True)
    _post(client, issuer)
    # The kept connection was opened by that exchange; the next one must watch it too.
    issuer.introspection_mode = "drip_headers"
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than 0.5s"):
        _post(client, issuer)
    assert time.monotonic() - started < 2
    assert issuer.connections == 1
    # Nothing of a failed exchange is kept.
    issuer.introspection_mode = "ok"
    assert _post(client, issuer)["active"] is True
    assert issuer.connections == 2


def test_a_kept_connection_the_server_closed_is_replaced_within_the_exchange(
    issuer: LoopbackIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib3.connectionpool

    client = IssuerClient(issuer.issuer, keep_alive=True)
    _post(client, issuer)
    issuer.hang_up_after_answer = True
    _post(client, issuer)  # the server hangs up after this answer, saying nothing
    time.sleep(0.1)
    # As if the closing had not reached the client yet when it reused the connection.
    monkeypatch.setattr(urllib3.connectionpool, "is_connection_dropped", lambda conn: False)
    assert _post(client, issuer)["active"] is True
    assert issuer.connections == 2


def test_a_server_that_refuses_is_not_asked_twice() -> None:
    url = unreachable_url()
    client = IssuerClient(url, http_timeout=1, keep_alive=True)
    with pytest.raises(FetchError, match="could not be fetched"):
        client.post_form(url + "/v1/introspect", {"token": "x"})


def test_keep_alive_over_https_is_watched_too(
    https_issuer: LoopbackIssuer, loopback_tls: Any
) -> None:
    client = IssuerClient(
        https_issuer.issuer,
        http_timeout=0.5,
        keep_alive=True,
        session=_trusting(loopback_tls.ca_file),
    )
    for _ in range(3):
        assert _post(client, https_issuer)["active"] is True
    assert https_issuer.connections == 1
    https_issuer.introspection_mode = "drip_headers"
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than 0.5s"):
        _post(client, https_issuer)
    assert time.monotonic() - started < 2
