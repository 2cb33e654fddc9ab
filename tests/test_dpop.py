"""DPoP (RFC 9449) through the real application: schemes, binding, proofs, answers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import webob
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from waitress.proxy_headers import proxy_headers_middleware

from okta_pyramid.settings import parse_settings
from okta_pyramid.tokens import DPoPNonces, InMemoryReplayStore, make_proof
from okta_pyramid.tokens.nonces import DEFAULT_STEP

from .helpers import (
    BOTH_CHALLENGES,
    LOCAL_METADATA,
    WHOAMI_URL,
    DPoPClient,
    b64url,
    bearer,
    webtest_app,
)
from .issuer import LoopbackIssuer

ALGS = 'algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"'


@pytest.fixture
def client(issuer: LoopbackIssuer) -> DPoPClient:
    return DPoPClient(issuer)


# -- allowed (the default) -------------------------------------------------------------


def test_a_bound_token_with_its_proof_gets_in(app: webtest.TestApp, client: DPoPClient) -> None:
    response = app.get("/api/whoami", headers=client.headers())
    assert response.json["sub"] == "alice@example.com"
    assert response.json["cnf"] == {"jkt": client.jkt}
    assert "DPoP-Nonce" not in response.headers  # nonces are off


def test_an_unbound_bearer_token_still_gets_in(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    app.get("/api/whoami", headers=bearer(issuer.mint()), status=200)


@pytest.mark.parametrize("mode", ["allowed", "required", "disabled"])
def test_a_bound_token_sent_as_bearer_is_refused_in_every_mode(
    make_app: Callable[..., webtest.TestApp], client: DPoPClient, mode: str
) -> None:
    # RFC 9449 §7.2: a stolen bound token replayed as a bearer token must not work.
    response = make_app(dpop=mode).get("/api/whoami", headers=bearer(client.token), status=401)
    assert response.json["error"] == "invalid_token"
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in challenge


def test_a_bound_token_as_bearer_is_challenged_in_bearer(
    app: webtest.TestApp, client: DPoPClient
) -> None:
    response = app.get("/api/whoami", headers=bearer(client.token), status=401)
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="api", error="invalid_token", error_description="the access token is '
        "bound to a key (cnf)"
    )


def test_a_token_with_any_cnf_is_not_a_bearer_token(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    # An mTLS-bound token (RFC 8705) cannot be proven here either.
    token = issuer.mint(cnf={"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"})
    response = app.get("/api/whoami", headers=bearer(token), status=401)
    # Not told to retry as DPoP, which could not work either.
    assert response.json["error_description"].startswith(
        "the access token is bound to a key this API cannot check"
    )


def test_an_unbound_token_sent_as_dpop_is_refused(
    app: webtest.TestApp, issuer: LoopbackIssuer, client: DPoPClient
) -> None:
    token = issuer.mint()
    response = app.get("/api/whoami", headers=client.headers(token=token), status=401)
    assert response.json["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith(
        f'DPoP realm="api", {ALGS}, error="invalid_token"'
    )
    assert response.headers["WWW-Authenticate"].count("realm=") == 1  # one challenge


def test_a_cnf_jkt_that_is_not_a_string_is_the_tokens_fault(
    app: webtest.TestApp, issuer: LoopbackIssuer, client: DPoPClient
) -> None:
    token = issuer.mint(cnf={"jkt": 42})
    response = app.get("/api/whoami", headers=client.headers(token=token), status=401)
    assert response.json["error"] == "invalid_token"


def test_no_credentials_are_challenged_with_both_schemes(app: webtest.TestApp) -> None:
    response = app.get("/api/whoami", status=401)
    assert response.headers["WWW-Authenticate"] == BOTH_CHALLENGES
    assert "DPoP" in response.json["error_description"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"url": "http://localhost/api/hello"}, "htu"),
        ({"method": "POST"}, "htm"),
        ({"iat": int(time.time()) - 3600}, "old"),
    ],
)
def test_a_bad_proof_is_invalid_dpop_proof_in_the_dpop_challenge(
    app: webtest.TestApp, client: DPoPClient, change: dict[str, Any], reason: str
) -> None:
    response = app.get("/api/whoami", headers=client.headers(**change), status=401)
    assert response.json["error"] == "invalid_dpop_proof"
    challenge = response.headers["WWW-Authenticate"]
    # RFC 9449 §7.1: the error goes in the challenge of the scheme the client used.
    assert challenge.startswith(f'DPoP realm="api", {ALGS}, error="invalid_dpop_proof"')
    assert challenge.count("realm=") == 1
    assert response.headers["Cache-Control"] == "no-store"


def test_a_dpop_request_without_a_proof_is_refused(
    app: webtest.TestApp, client: DPoPClient
) -> None:
    response = app.get("/api/whoami", headers={"Authorization": f"DPoP {client.token}"}, status=401)
    assert response.json["error"] == "invalid_dpop_proof"


def test_a_proof_for_another_key_is_refused(
    app: webtest.TestApp, issuer: LoopbackIssuer, client: DPoPClient
) -> None:
    other = DPoPClient(issuer)
    headers = client.headers()
    headers["DPoP"] = make_proof(other.key, "GET", WHOAMI_URL, access_token=client.token)
    assert app.get("/api/whoami", headers=headers, status=401).json["error"] == "invalid_dpop_proof"


def test_a_proof_is_used_once(app: webtest.TestApp, client: DPoPClient) -> None:
    headers = client.headers()
    app.get("/api/whoami", headers=headers, status=200)
    again = app.get("/api/whoami", headers=headers, status=401)
    assert again.json["error"] == "invalid_dpop_proof"
    assert "already used" in again.json["error_description"]


def test_insufficient_scope_for_a_dpop_request_is_in_the_dpop_challenge(
    app: webtest.TestApp, client: DPoPClient
) -> None:
    response = app.get(
        "/api/messages", headers=client.headers("http://localhost/api/messages"), status=403
    )
    assert response.json["error"] == "insufficient_scope"
    assert response.headers["WWW-Authenticate"].startswith(
        f'DPoP realm="api", {ALGS}, error="insufficient_scope"'
    )
    assert 'scope="messages:read"' in response.headers["WWW-Authenticate"]


def test_a_dpop_client_with_the_scope_reads_messages(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    client = DPoPClient(issuer, scp=["messages:read"])
    app.get("/api/messages", headers=client.headers("http://localhost/api/messages"), status=200)


def test_the_scheme_name_is_case_insensitive(app: webtest.TestApp, client: DPoPClient) -> None:
    headers = client.headers()
    headers["Authorization"] = "dpop " + client.token
    app.get("/api/whoami", headers=headers, status=200)


def test_a_dpop_token_that_is_not_a_b64token_is_a_bad_request(
    app: webtest.TestApp, client: DPoPClient
) -> None:
    headers = client.headers()
    headers["Authorization"] = "DPoP a b"
    response = app.get("/api/whoami", headers=headers, status=400)
    assert "'DPoP' followed by one access token" in response.json["error_description"]
    assert response.headers["WWW-Authenticate"].startswith(
        f'DPoP realm="api", {ALGS}, error="invalid_request"'
    )


# -- required and disabled -------------------------------------------------------------


def test_required_refuses_bearer_with_a_dpop_challenge(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer, client: DPoPClient
) -> None:
    app = make_app(dpop="required")
    response = app.get("/api/whoami", headers=bearer(issuer.mint()), status=401)
    assert response.json["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith(
        f'DPoP realm="api", {ALGS}, error="invalid_token"'
    )
    assert (
        app.get("/api/whoami", status=401).headers["WWW-Authenticate"]
        == f'DPoP realm="api", {ALGS}, resource_metadata="{LOCAL_METADATA}"'
    )
    app.get("/api/whoami", headers=client.headers(), status=200)
    app.get("/api/hello", status=200)  # public views are untouched


def test_disabled_refuses_the_dpop_scheme(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer, client: DPoPClient
) -> None:
    app = make_app(dpop="disabled")
    response = app.get("/api/whoami", headers=client.headers(), status=401)
    assert response.json["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="api", error="invalid_token", error_description="this API does not '
        "accept DPoP"
    )
    assert (
        app.get("/api/whoami", status=401).headers["WWW-Authenticate"]
        == f'Bearer realm="api", resource_metadata="{LOCAL_METADATA}"'
    )
    app.get("/api/whoami", headers=bearer(issuer.mint()), status=200)
    assert app.app.registry.okta.dpop is None


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Bearer a$b", "Bearer a b", "bearer ey.J.x=y"]
)
def test_required_refuses_a_malformed_bearer_header_for_its_scheme(
    make_app: Callable[..., webtest.TestApp], header: str
) -> None:
    # The scheme is not accepted at all: what follows it does not make a 400.
    response = make_app(dpop="required").get(
        "/api/whoami", headers={"Authorization": header}, status=401
    )
    assert response.json["error"] == "invalid_token"
    assert "accepts only DPoP-bound access tokens" in response.json["error_description"]
    assert response.headers["WWW-Authenticate"].startswith(
        f'DPoP realm="api", {ALGS}, error="invalid_token"'
    )


@pytest.mark.parametrize("header", ["DPoP", "DPoP a$b", "dpop a b"])
def test_disabled_refuses_a_malformed_dpop_header_for_its_scheme(
    make_app: Callable[..., webtest.TestApp], header: str
) -> None:
    response = make_app(dpop="disabled").get(
        "/api/whoami", headers={"Authorization": header}, status=401
    )
    assert response.json["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="api", error="invalid_token", error_description="this API does not '
        "accept DPoP"
    )


def test_a_token_in_the_query_of_a_dpop_request_is_refused_in_the_dpop_challenge(
    app: webtest.TestApp, client: DPoPClient
) -> None:
    response = app.get("/api/whoami?access_token=x", headers=client.headers(), status=400)
    assert response.json["error"] == "invalid_request"
    assert response.headers["WWW-Authenticate"].startswith(
        f'DPoP realm="api", {ALGS}, error="invalid_request"'
    )


@pytest.mark.parametrize("authorization", [None, "Bearer abc", "Basic abc"])
def test_required_challenges_a_token_in_the_query_in_dpop(
    make_app: Callable[..., webtest.TestApp], authorization: str | None
) -> None:
    # A Bearer challenge would ask for a scheme this API refuses.
    headers = {} if authorization is None else {"Authorization": authorization}
    response = make_app(dpop="required").get(
        "/api/whoami?access_token=x", headers=headers, status=400
    )
    assert response.json["error"] == "invalid_request"
    assert response.headers["WWW-Authenticate"].startswith(
        f'DPoP realm="api", {ALGS}, error="invalid_request"'
    )


# -- nonces ------------------------------------------------------------------------------

SECRET = "a shared secret of enough bytes"


def _freeze_nonces(app: webtest.TestApp) -> float:
    """Stops the app's nonce clock in the middle of the current step, so that no step
    ends between a nonce being made and being checked; returns that time."""
    nonces = app.app.registry.okta.dpop.nonces
    now = (time.time() // DEFAULT_STEP + 0.5) * DEFAULT_STEP
    nonces.clock = lambda: now
    return now


def test_nonces_the_client_retries_with_the_one_it_was_given(
    make_app: Callable[..., webtest.TestApp], client: DPoPClient
) -> None:
    app = make_app(dpop_nonce="true", dpop_nonce_secret=SECRET)
    now = _freeze_nonces(app)
    first = app.get("/api/whoami", headers=client.headers(), status=401)
    assert first.json["error"] == "use_dpop_nonce"
    assert first.headers["WWW-Authenticate"].startswith(
        f'DPoP realm="api", {ALGS}, error="use_dpop_nonce"'
    )
    assert first.headers["Cache-Control"] == "no-store"
    nonce = first.headers["DPoP-Nonce"]
    assert nonce == DPoPNonces(SECRET, clock=lambda: now).issue()
    second = app.get("/api/whoami", headers=client.headers(nonce=nonce), status=200)
    assert "DPoP-Nonce" not in second.headers  # still the current nonce


def test_a_nonce_about_to_expire_is_replaced_on_a_success(
    make_config: Callable[..., Configurator], client: DPoPClient
) -> None:
    config = make_config(dpop_nonce="true", dpop_nonce_secret=SECRET)
    config.add_route("cacheable", "/cacheable")
    config.add_view(lambda request: {"ok": True}, route_name="cacheable", renderer="json")
    app = webtest_app(config)
    now = _freeze_nonces(app)
    previous = DPoPNonces(SECRET, clock=lambda: now - DEFAULT_STEP).issue()
    url = "http://localhost/cacheable"
    response = app.get("/cacheable", headers=client.headers(url, nonce=previous), status=200)
    # RFC 9449 §8.2: the next nonce comes before the client's one expires...
    assert response.headers["DPoP-Nonce"] == DPoPNonces(SECRET, clock=lambda: now).issue()
    # ...and no shared cache may hand it to another client.
    assert response.headers["Cache-Control"] == "no-store"


def test_nonces_need_no_shared_secret_in_development(
    make_app: Callable[..., webtest.TestApp], client: DPoPClient
) -> None:
    app = make_app(dpop_nonce="true")
    nonce = app.get("/api/whoami", headers=client.headers(), status=401).headers["DPoP-Nonce"]
    app.get("/api/whoami", headers=client.headers(nonce=nonce), status=200)


# -- the replay store --------------------------------------------------------------------


def test_a_full_replay_store_is_503_with_retry_after(
    app: webtest.TestApp, issuer: LoopbackIssuer, client: DPoPClient
) -> None:
    app.app.registry.okta.dpop.replay_store = InMemoryReplayStore(max_entries=1)
    app.get("/api/whoami", headers=client.headers(), status=200)
    response = app.get("/api/whoami", headers=client.headers(), status=503)
    assert response.json["error"] == "temporarily_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert "WWW-Authenticate" not in response.headers


def test_one_key_cannot_fill_the_replay_store(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    # The holder of one bound token sends proofs as fast as it can: its surplus is
    # refused (429, when to retry), and every other key goes on as before.
    app = make_app(dpop_replay_store_size="1000", dpop_replay_key_quota="50")
    flooder, other = DPoPClient(issuer), DPoPClient(issuer)
    for _ in range(50):
        app.get("/api/whoami", headers=flooder.headers(), status=200)
    response = app.get("/api/whoami", headers=flooder.headers(), status=429)
    assert response.json["error"] == "too_many_requests"
    assert 1 <= int(response.headers["Retry-After"]) <= 361  # its oldest proof's window
    assert "WWW-Authenticate" not in response.headers
    app.get("/api/whoami", headers=other.headers(), status=200)
    assert app.app.registry.okta.dpop.replay_store.held_by(flooder.jkt) == 50


def test_many_clients_at_an_honest_rate_fill_no_quota(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    # Honest load on the default sizes: 16 clients, each with its own key and fresh
    # proofs, 25 requests each, at once. Nobody is refused.
    from .helpers import run_together

    app = make_app()
    clients = [DPoPClient(issuer) for _ in range(16)]
    statuses: list[int] = []

    def calls(client: DPoPClient) -> None:
        for _ in range(25):
            statuses.append(
                app.get("/api/whoami", headers=client.headers(), expect_errors=True).status_int
            )

    run_together(calls, [(client,) for client in clients])
    assert statuses == [200] * 400


def test_the_replay_store_sizes_are_checked() -> None:
    base = {"okta.issuer": "https://a.example/oauth2/x"}
    for extra, key in [
        ({"okta.dpop_replay_store_size": "10"}, "okta.dpop_replay_store_size"),
        (
            {"okta.dpop_replay_store_size": "1000", "okta.dpop_replay_key_quota": "1001"},
            "okta.dpop_replay_key_quota",
        ),
        ({"okta.dpop_replay_key_quota": "0"}, "okta.dpop_replay_key_quota"),
    ]:
        with pytest.raises(ConfigurationError, match=f"^{key}: "):
            parse_settings({**base, **extra})
    parsed = parse_settings({**base, "okta.dpop_replay_store_size": "8000"})
    assert (parsed.dpop_replay_store_size, parsed.dpop_replay_key_quota) == (8000, 1000)


# -- the URL the client saw ------------------------------------------------------------


def test_public_url_replaces_scheme_host_and_script_name(
    make_app: Callable[..., webtest.TestApp], client: DPoPClient
) -> None:
    app = make_app(public_url="https://api.example.com/orders-api/")
    environ = {"SCRIPT_NAME": "/internal"}
    app.get(
        "/api/whoami",
        extra_environ=environ,
        status=200,
        headers=client.headers("https://api.example.com/orders-api/api/whoami"),
    )
    refused = app.get(
        "/api/whoami",
        extra_environ=environ,
        status=401,
        headers=client.headers("http://localhost/internal/api/whoami"),
    )
    assert refused.json["error"] == "invalid_dpop_proof"


def test_without_public_url_the_request_url_counts_with_its_script_name(
    app: webtest.TestApp, client: DPoPClient
) -> None:
    environ = {"SCRIPT_NAME": "/mount", "wsgi.url_scheme": "https", "HTTP_HOST": "api.test"}
    app.get(
        "/api/whoami",
        extra_environ=environ,
        status=200,
        headers=client.headers("https://API.test:443/mount/api/whoami?x=1"),
    )
    app.get(
        "/api/whoami",
        extra_environ=environ,
        status=401,
        headers=client.headers("https://api.test/api/whoami"),
    )


def _url_built_for(environ: dict[str, str]) -> str:
    # The URL WebOb builds for the request: a proof that repeats it exactly.
    return webob.Request.blank("/api/whoami", environ=environ).path_url


@pytest.mark.parametrize(
    "host",
    [
        "localhost/other-service",  # another service's path behind the same host
        "localhost:80/other-service",
        "localhost?x=",
        "localhost#x",
        "local host",
        "a@localhost",  # userinfo
        "localhost:99999",
        "localhost:80:1",
        "localhost:http",
        "localhost:000080",
        "l\u00f3calhost",  # latin-1 bytes, not a URI's ASCII
        "",
        "[::1",
        "[::1]x",
        "[1::2::3]",
        "[fe80::1%eth0]",
        "[127.0.0.1]",
    ],
)
def test_a_host_that_is_not_host_port_refuses_the_dpop_request(
    app: webtest.TestApp, client: DPoPClient, host: str
) -> None:
    # RFC 3986 §3.2.2 and §3.2.3; the proof repeats the URL the server would build.
    environ = {"HTTP_HOST": host}
    response = app.get(
        "/api/whoami",
        extra_environ=environ,
        status=401,
        headers=client.headers(_url_built_for(environ)),
    )
    assert response.json == {
        "error": "invalid_dpop_proof",
        "error_description": "the Host header is not an RFC 3986 host[:port]: the request's "
        "URL cannot be compared with the DPoP proof's htu",
    }
    assert response.headers["WWW-Authenticate"] == (
        f'DPoP realm="api", {ALGS}, error="invalid_dpop_proof", error_description="the Host '
        "header is not an RFC 3986 host[:port]: the request's URL cannot be compared with "
        "the DPoP proof's htu\""
    )


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:6611",
        "localhost:",
        "127.0.0.1:65535",
        "API.example.COM",
        "xn--bcher-kva.example",
        "a%41b.example",
        "[::1]:6611",
        "[::ffff:127.0.0.1]",
        "[v1.fe80::a+en1]",
    ],
)
def test_a_host_port_of_any_rfc_3986_form_is_accepted(
    app: webtest.TestApp, client: DPoPClient, host: str
) -> None:
    environ = {"HTTP_HOST": host}
    app.get(
        "/api/whoami",
        extra_environ=environ,
        status=200,
        headers=client.headers(_url_built_for(environ)),
    )


def test_without_a_host_header_the_server_name_is_checked(
    make_app: Callable[..., webtest.TestApp], client: DPoPClient
) -> None:
    app = make_app()
    inner = app.app

    def without_host(environ: dict[str, Any], start_response: Any) -> Any:
        del environ["HTTP_HOST"]
        return inner(environ, start_response)

    app.app = without_host
    good = {"SERVER_NAME": "api.test", "SERVER_PORT": "8080"}
    app.get(
        "/api/whoami",
        extra_environ=good,
        status=200,
        headers=client.headers("http://api.test:8080/api/whoami"),
    )
    bad = {"SERVER_NAME": "api.test/other-service", "SERVER_PORT": "8080"}
    response = app.get(
        "/api/whoami",
        extra_environ=bad,
        status=401,
        headers=client.headers("http://api.test/other-service:8080/api/whoami"),
    )
    assert response.json["error"] == "invalid_dpop_proof"


def test_a_trusted_proxys_forwarded_host_is_checked_too(
    make_app: Callable[..., webtest.TestApp], client: DPoPClient
) -> None:
    # Waitress (trusted_proxy) copies X-Forwarded-Host into Host without checking it.
    app = make_app()
    app.app = proxy_headers_middleware(
        app.app,
        trusted_proxy="192.0.2.7",
        trusted_proxy_headers={"x-forwarded-host", "x-forwarded-proto"},
    )
    forwarded = {"X-Forwarded-Proto": "https"}
    app.get(
        "/api/whoami",
        status=200,
        headers={
            **forwarded,
            "X-Forwarded-Host": "api.example.com",
            **client.headers("https://api.example.com/api/whoami"),
        },
    )
    response = app.get(
        "/api/whoami",
        status=401,
        headers={
            **forwarded,
            "X-Forwarded-Host": "api.example.com/other-service",
            **client.headers("https://api.example.com/other-service/api/whoami"),
        },
    )
    assert response.json["error"] == "invalid_dpop_proof"


def test_a_bearer_request_does_not_need_a_valid_host(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    # Only a DPoP proof names the URL; a Bearer token is not tied to a host.
    app.get(
        "/api/whoami",
        extra_environ={"HTTP_HOST": "local host"},
        headers=bearer(issuer.mint()),
        status=200,
    )


def test_with_public_url_the_host_header_is_not_used(
    make_app: Callable[..., webtest.TestApp], client: DPoPClient
) -> None:
    app = make_app(public_url="https://api.example.com")
    app.get(
        "/api/whoami",
        extra_environ={"HTTP_HOST": "local host"},
        status=200,
        headers=client.headers("https://api.example.com/api/whoami"),
    )


def test_the_path_is_compared_percent_encoded(app: webtest.TestApp, client: DPoPClient) -> None:
    app.get("/api/%77hoami", status=200, headers=client.headers("http://localhost/api/whoami"))


# -- authorization: a sender-constrained token on chosen views -----------------------------


def test_the_demo_dpop_endpoint_needs_a_dpop_bound_token(
    app: webtest.TestApp, issuer: LoopbackIssuer, client: DPoPClient
) -> None:
    url = "http://localhost/api/dpop"
    answer = app.get("/api/dpop", headers=client.headers(url), status=200)
    assert answer.json == {"sub": "alice@example.com", "scheme": "DPoP", "jkt": client.jkt}
    # A Bearer token is told to use DPoP, not that a scope is missing.
    refused = app.get("/api/dpop", headers=bearer(issuer.mint()), status=401)
    assert refused.json["error"] == "invalid_token"
    assert refused.headers["WWW-Authenticate"].startswith(
        f'DPoP realm="api", {ALGS}, error="invalid_token"'
    )
    assert "needs a DPoP-bound access token" in refused.json["error_description"]


def test_an_acl_can_allow_only_dpop(
    config: Configurator, issuer: LoopbackIssuer, client: DPoPClient
) -> None:
    from pyramid.authorization import ALL_PERMISSIONS, Allow, Deny, Everyone

    from okta_pyramid.principals import DPOP_TOKEN

    class Payments:
        __acl__: ClassVar[list[tuple[str, str, Any]]] = [
            (Allow, DPOP_TOKEN, "pay"),
            (Deny, Everyone, ALL_PERMISSIONS),
        ]

        def __init__(self, request: Any) -> None:
            pass

    config.add_route("pay", "/pay", factory=Payments)
    config.add_view(
        lambda request: {"paid": True}, route_name="pay", permission="pay", renderer="json"
    )
    app = webtest_app(config)
    app.get("/pay", headers=client.headers("http://localhost/pay"), status=200)
    denied = app.get("/pay", headers=bearer(issuer.mint()), status=403)
    assert denied.json["error"] == "insufficient_scope"


def test_request_jwt_claims_of_a_dpop_request_check_the_proof_once(
    config: Configurator, issuer: LoopbackIssuer, client: DPoPClient
) -> None:
    config.add_route("claims", "/claims")
    config.add_view(
        lambda request: {"sub": request.jwt_claims.get("sub"), "who": request.authenticated_userid},
        route_name="claims",
        renderer="json",
    )
    app = webtest_app(config)
    answer = app.get("/claims", headers=client.headers("http://localhost/claims"))
    assert answer.json == {"sub": "alice@example.com", "who": "alice@example.com"}
    # A bound token sent as Bearer has no claims for the app either.
    assert app.get("/claims", headers=bearer(client.token), status=401)


# -- CORS ------------------------------------------------------------------------------


def test_cors_allows_the_dpop_header_and_exposes_the_nonce(
    make_app: Callable[..., webtest.TestApp], client: DPoPClient
) -> None:
    origin = "https://spa.example.com"
    app = make_app(cors_allowed_origins=origin)
    preflight = app.options(
        "/api/whoami",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,dpop",
        },
        status=204,
    )
    assert preflight.headers["Access-Control-Allow-Headers"] == "authorization, dpop"
    answer = app.get("/api/whoami", headers={"Origin": origin, **client.headers()})
    exposed = {h.strip() for h in answer.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"DPoP-Nonce", "WWW-Authenticate"} <= exposed


# -- no proof or token in a log line ------------------------------------------------------


def test_refusals_log_the_reason_and_never_the_proof_or_token(
    app: webtest.TestApp, client: DPoPClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = client.headers()
    app.get("/api/whoami", headers=headers, status=200)
    app.get("/api/whoami", headers=headers, status=401)  # replayed
    app.get("/api/whoami", headers=bearer(client.token), status=401)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "reason=dpop_replayed" in text and "reason=bound_token_as_bearer" in text
    for secret in (
        client.token,
        headers["DPoP"],
        *headers["DPoP"].split("."),
        client.token.split(".")[2],
    ):
        assert secret not in text


# -- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("okta.dpop", "sometimes", "okta.dpop: must be one of allowed, required, disabled"),
        (
            "okta.dpop_algorithms",
            "ES256 HS256",
            "okta.dpop_algorithms: 'HS256' is not an algorithm",
        ),
        ("okta.dpop_algorithms", "none", "okta.dpop_algorithms: 'none' is not an algorithm"),
        ("okta.dpop_max_age", "0", "okta.dpop_max_age: must be at least 1 and at most 3600"),
        ("okta.dpop_max_age", "soon", "okta.dpop_max_age: must be a whole number"),
        ("okta.dpop_nonce", "maybe", "okta.dpop_nonce: must be true or false"),
        ("okta.public_url", "api.example.com", "okta.public_url: must be the absolute http(s) URL"),
        (
            "okta.public_url",
            "https://api.example.com/?a=1",
            "okta.public_url: must be the absolute",
        ),
        (
            "okta.public_url",
            "https://u:pw@api.example.com",
            "okta.public_url: must not contain user",
        ),
        # A URL the proofs' htu could never be compared with (RFC 3986: at most five
        # digits of port).
        (
            "okta.public_url",
            "https://api.example.com:000443",
            "okta.public_url: must be the absolute",
        ),
        ("okta.public_url", "https://api.example.com/%zz", "okta.public_url: must be the absolute"),
    ],
)
def test_a_wrong_dpop_setting_names_its_key(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_settings({"okta.issuer": "https://dev-1.okta.com/oauth2/default", key: value})
    assert str(raised.value).startswith(message)
    assert "pw" not in str(raised.value)


def test_a_short_nonce_secret_is_refused_and_never_echoed() -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_settings(
            {
                "okta.issuer": "https://dev-1.okta.com/oauth2/default",
                "okta.dpop_nonce_secret": "s3cr3t-value",
            }
        )
    assert str(raised.value).startswith("okta.dpop_nonce_secret: must be at least 16 bytes")
    assert "s3cr3t" not in str(raised.value)
    parsed = parse_settings(
        {
            "okta.issuer": "https://dev-1.okta.com/oauth2/default",
            "okta.dpop_nonce_secret": "s3cr3t-value-long-enough",
        }
    )
    assert "s3cr3t" not in repr(parsed)


def test_the_dpop_settings_reach_the_verifier(make_app: Callable[..., webtest.TestApp]) -> None:
    app = make_app(dpop_algorithms="ES256 EdDSA", dpop_max_age="120", leeway="10")
    dpop = app.app.registry.okta.dpop
    assert dpop.algorithms == ("ES256", "EdDSA") and dpop.max_age == 120 and dpop.leeway == 10
    assert (
        app.get("/api/whoami", status=401)
        .headers["WWW-Authenticate"]
        .endswith(f'DPoP realm="api", algs="ES256 EdDSA", resource_metadata="{LOCAL_METADATA}"')
    )


def test_production_warns_once_about_a_per_process_nonce_secret(
    settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    from okta_pyramid.app import main

    caplog.set_level(logging.WARNING)
    main(
        {},
        **settings,
        **{
            "okta.environment": "production",
            "okta.dpop_nonce": "true",
            "okta.public_url": "https://api.example.com",
        },
    )
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("okta.dpop_nonce_secret:")
    ]
    assert len(warnings) == 1
    caplog.clear()
    main(
        {},
        **settings,
        **{
            "okta.environment": "production",
            "okta.dpop_nonce": "true",
            "okta.public_url": "https://api.example.com",
            "okta.dpop_nonce_secret": SECRET,
        },
    )
    assert not [r for r in caplog.records if "dpop_nonce_secret" in r.getMessage()]


def test_a_proof_the_checker_cannot_judge_is_refused_not_a_500(
    app: webtest.TestApp, client: DPoPClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by the property test: an "alg" that is a JSON array.
    header = b64url(json.dumps({"typ": "dpop+jwt", "alg": ["ES256"]}).encode())
    proof = f"{header}.{b64url(b'{}')}.{b64url(b'x' * 64)}"
    response = app.get(
        "/api/whoami", status=401, headers={"Authorization": f"DPoP {client.token}", "DPoP": proof}
    )
    assert response.json["error"] == "invalid_dpop_proof"
    assert proof not in caplog.text and header not in caplog.text
