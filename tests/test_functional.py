"""The application through WebTest: both protection modes, every HTTP rule."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
import webtest

from .helpers import BOTH_CHALLENGES, b64url, bearer
from .issuer import LoopbackIssuer, SigningKey, rsa_key, unreachable_url

AppFactory = Callable[..., webtest.TestApp]


@pytest.fixture(params=[True, False], ids=["protect_all", "per_view"])
def any_mode_app(request: pytest.FixtureRequest, make_app: AppFactory) -> webtest.TestApp:
    return make_app(protect_all=str(request.param).lower())


def test_hello_is_public(any_mode_app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    for headers in ({}, bearer(issuer.mint()), bearer("garbage"), {"Authorization": "Bearer"}):
        response = any_mode_app.get("/api/hello", headers=headers)
        assert response.status_int == 200
        assert "message" in response.json
    assert issuer.hits == {}  # a public view never judges tokens


def test_whoami_returns_the_claims(any_mode_app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    token = issuer.mint(sub="carol@example.com", groups=["Everyone"])
    response = any_mode_app.get("/api/whoami", headers=bearer(token))
    assert response.json["sub"] == "carol@example.com"
    assert response.json["groups"] == ["Everyone"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "Authorization" in response.headers["Vary"]


def test_whoami_answers_the_claims_exactly_as_signed(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    payload = json.dumps(
        issuer.claims(name="Zoë"), separators=(",", ":"), ensure_ascii=False
    ).encode()
    token = issuer.sign(payload)
    response = app.get("/api/whoami", headers=bearer(token))
    assert response.body == payload
    assert response.headers["Content-Type"] == "application/json"  # UTF-8 (RFC 8259)
    assert response.json["name"] == "Zoë"
    head = app.head("/api/whoami", headers=bearer(token))
    assert head.body == b"" and head.headers["Content-Length"] == str(len(payload))


def test_no_token_is_401_with_a_bare_challenge(any_mode_app: webtest.TestApp) -> None:
    response = any_mode_app.get("/api/whoami", status=401)
    # RFC 6750 §3.1: no error code when the request had no authentication.
    assert response.headers["WWW-Authenticate"] == BOTH_CHALLENGES
    assert response.json["error"] == "unauthorized"
    assert "Authorization" in response.headers["Vary"]


def test_other_scheme_is_treated_as_no_token(app: webtest.TestApp) -> None:
    response = app.get("/api/whoami", headers={"Authorization": "Basic dXNlcjpwdw=="}, status=401)
    assert response.headers["WWW-Authenticate"] == BOTH_CHALLENGES


def test_scheme_is_case_insensitive(app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    token = issuer.mint()
    for scheme in ("bearer", "BEARER", "BeArEr"):
        app.get("/api/whoami", headers={"Authorization": f"{scheme} {token}"}, status=200)


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Bearer a, Bearer b", 'Bearer "quoted"']
)
def test_malformed_header_is_400(app: webtest.TestApp, header: str) -> None:
    response = app.get("/api/whoami", headers={"Authorization": header}, status=400)
    assert response.json["error"] == "invalid_request"
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


def test_query_string_token_is_not_accepted(app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    token = issuer.mint()
    response = app.get("/api/whoami", params={"access_token": token}, status=400)
    assert "Authorization header" in response.json["error_description"]
    assert token not in response.text


@pytest.mark.parametrize("query", ["%ff", "a=%C3", "access%5Ftoken=x", "x=1&access_token="])
def test_odd_query_strings(app: webtest.TestApp, query: str) -> None:
    response = app.get(f"/api/whoami?{query}", status="*")
    # Not UTF-8: no token was sent, 401. An (encoded) access_token parameter: 400.
    assert response.status_int == (400 if "access" in query else 401)


def test_form_body_token_is_not_accepted(make_app: AppFactory, issuer: LoopbackIssuer) -> None:
    app = make_app(protect_all="true")
    response = app.post("/api/whoami", {"access_token": issuer.mint()}, status="*")
    assert response.status_int in (401, 405)
    assert response.status_int != 200


REJECTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("expired", {"exp": 1000}, "expired"),
    ("not yet valid", {"nbf": 4102444800}, "not valid yet"),
    ("wrong issuer", {"iss": "https://evil.example.com/oauth2/default"}, "another"),
    ("wrong audience", {"aud": "api://other"}, "wrong audience"),
    ("id token", {"aud": "0oa-test-client", "nonce": "n"}, "wrong audience"),
    ("exp as string", {"exp": "4102444800"}, "NumericDate"),
]


@pytest.mark.parametrize(("name", "claims", "text"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejected_token_is_401_invalid_token(
    any_mode_app: webtest.TestApp,
    issuer: LoopbackIssuer,
    name: str,
    claims: dict[str, Any],
    text: str,
) -> None:
    token = issuer.mint(**claims)
    response = any_mode_app.get("/api/whoami", headers=bearer(token), status=401)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="')
    assert text in challenge
    assert response.json == {
        "error": "invalid_token",
        "error_description": response.json["error_description"],
    }
    assert text in response.json["error_description"]
    for part in token.split("."):
        assert part not in response.text and part not in challenge


def test_common_attacks_are_401(app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    attacker = SigningKey("key-1", rsa_key(9))
    header, _, signature = issuer.mint().split(".")
    attacks = {
        "alg none": f"{b64url({'alg': 'none', 'kid': 'key-1'})}.{b64url(issuer.claims())}.",
        "foreign key, known kid": issuer.mint(key=attacker),
        "embedded jwk": issuer.mint(key=attacker, headers={"jwk": {"kty": "RSA"}}),
        "jku": issuer.mint(key=attacker, headers={"jku": issuer.base_url + "/evil"}),
        "x5u": issuer.mint(key=attacker, headers={"x5u": issuer.base_url + "/evil"}),
        "tampered payload": f"{header}.{b64url(issuer.claims(sub='root'))}.{signature}",
        "unknown kid": issuer.mint(headers={"kid": "nope"}),
        "crit": issuer.mint(headers={"crit": ["exp"]}),
        "garbage": "not-a-jwt",
        "huge": "a" * 20000,
    }
    for name, token in attacks.items():
        response = app.get("/api/whoami", headers=bearer(token), status="*")
        assert response.status_int == 401, name
        assert response.json["error"] == "invalid_token", name
    assert "/evil" not in issuer.hits


@pytest.mark.parametrize("alg", ['", error="insufficient_scope', "\u2603", "a\\b", "x\r\ny"])
def test_challenge_cannot_be_injected_through_the_token(app: webtest.TestApp, alg: str) -> None:
    # The description quotes the token's alg; RFC 6750 §3 limits its characters.
    token = b64url({"alg": alg, "kid": "k"}) + ".e30.c2ln"
    response = app.get("/api/whoami", headers=bearer(token), status=401)
    challenge = response.headers["WWW-Authenticate"]
    # realm, error, error_description and resource_metadata: four quoted values.
    assert challenge.count('error="') == 1 and challenge.count('"') == 8
    assert challenge.isascii() and "\r" not in challenge and "\n" not in challenge


def test_issuer_down_is_503_and_hello_still_works(
    make_app: AppFactory, issuer: LoopbackIssuer
) -> None:
    app = make_app(issuer=unreachable_url(), http_timeout="1")
    assert app.get("/api/hello").status_int == 200
    token = issuer.mint()
    response = app.get("/api/whoami", headers=bearer(token), status=503)
    assert response.json["error"] == "temporarily_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert "WWW-Authenticate" not in response.headers
    # A request without a token is still told it needs one.
    app.get("/api/whoami", status=401)


@pytest.mark.parametrize("mode", ["error", "garbage", "hang"])
def test_broken_issuer_is_503_never_500(
    make_app: AppFactory, issuer: LoopbackIssuer, mode: str
) -> None:
    app = make_app(http_timeout="0.5")
    issuer.mode = mode
    response = app.get("/api/whoami", headers=bearer(issuer.mint()), status=503)
    assert "Traceback" not in response.text


def test_key_rotation_end_to_end(make_app: AppFactory, issuer: LoopbackIssuer) -> None:
    app = make_app(jwks_refetch_cooldown="0")
    app.get("/api/whoami", headers=bearer(issuer.mint()), status=200)
    new = issuer.rotate(2, keep_old=False)
    app.get("/api/whoami", headers=bearer(issuer.mint(key=new)), status=200)
    # The old key left the issuer's set: its tokens stop working.
    app.get(
        "/api/whoami", headers=bearer(issuer.mint(key=SigningKey("key-1", rsa_key(1)))), status=401
    )


def test_client_id_allowlist(make_app: AppFactory, issuer: LoopbackIssuer) -> None:
    app = make_app(client_ids="0oa-allowed")
    app.get("/api/whoami", headers=bearer(issuer.mint(cid="0oa-allowed")), status=200)
    response = app.get("/api/whoami", headers=bearer(issuer.mint(cid="0oa-other")), status=401)
    assert "cid" in response.json["error_description"]


def test_unknown_path_is_json_404(any_mode_app: webtest.TestApp) -> None:
    response = any_mode_app.get("/nope", status=404)
    assert response.json["error"] == "not_found"


@pytest.mark.parametrize("path", ["/api/%ff", "/%c3%28", "/api/whoami/%80"])
def test_undecodable_path_is_json_400(any_mode_app: webtest.TestApp, path: str) -> None:
    response = any_mode_app.get(path, status=400)
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/hello", "GET, HEAD"),
        ("POST", "/api/whoami", "GET, HEAD"),
        ("OPTIONS", "/api/whoami", "GET, HEAD"),  # not a CORS preflight
        ("PUT", "/api/messages", "GET, HEAD, POST"),
        ("PATCH", "/api/dpop", "GET, HEAD"),
    ],
)
def test_a_method_the_endpoint_does_not_accept_is_json_405_with_allow(
    any_mode_app: webtest.TestApp, issuer: LoopbackIssuer, method: str, path: str, allow: str
) -> None:
    # RFC 9110 §15.5.6; judged before the token, as for an unknown path.
    response = any_mode_app.request(path, method=method, headers=bearer(issuer.mint()), status=405)
    assert response.headers["Allow"] == allow
    assert response.json == {
        "error": "method_not_allowed",
        "error_description": f"this endpoint accepts only {allow}",
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_head_is_answered_where_get_is(any_mode_app: webtest.TestApp) -> None:
    any_mode_app.head("/api/hello", status=200)


def test_rejections_are_logged_without_the_token(
    app: webtest.TestApp, issuer: LoopbackIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [
        issuer.mint(exp=1000),
        issuer.mint(aud="x"),
        issuer.mint(headers={"kid": "z"}),
        issuer.mint(key=SigningKey("key-1", rsa_key(9))),
    ]
    for token in tokens:
        app.get("/api/whoami", headers=bearer(token), status=401)
    app.get("/api/whoami", headers={"Authorization": "Bearer a b"}, status=400)
    lines = [record.getMessage() for record in caplog.records]
    assert any("reason=expired client=192.0.2.7" in line for line in lines)
    assert any("reason=wrong_audience" in line for line in lines)
    assert any("reason=bad_signature" in line for line in lines)
    assert any("reason=invalid_request" in line for line in lines)
    for token in tokens:
        for part in token.split("."):
            assert not any(part in line for line in lines)


# -- CORS -------------------------------------------------------------------------

ORIGIN = "https://spa.example.com"


@pytest.fixture
def cors_app(make_app: AppFactory) -> webtest.TestApp:
    return make_app(cors_allowed_origins=f"{ORIGIN} http://localhost:3000")


def preflight(app: webtest.TestApp, origin: str, **kw: Any) -> webtest.TestResponse:
    return app.options(
        "/api/whoami",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
        **kw,
    )


def test_preflight_from_allowed_origin_needs_no_token(cors_app: webtest.TestApp) -> None:
    response = preflight(cors_app, ORIGIN, status=204)
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Max-Age"] == "600"


def test_preflight_from_other_origin_gets_no_cors_headers(cors_app: webtest.TestApp) -> None:
    response = preflight(cors_app, "https://evil.example.com", status=403)
    assert not any(h.startswith("Access-Control-Allow") for h in response.headers)


def test_cors_headers_on_success_and_on_401(
    cors_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    ok = cors_app.get("/api/whoami", headers={"Origin": ORIGIN, **bearer(issuer.mint())})
    denied = cors_app.get("/api/whoami", headers={"Origin": ORIGIN}, status=401)
    for response in (ok, denied):
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "WWW-Authenticate" in response.headers["Access-Control-Expose-Headers"]
        assert "Origin" in response.headers["Vary"]


def test_disallowed_origin_gets_no_cors_headers(cors_app: webtest.TestApp) -> None:
    response = cors_app.get("/api/hello", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_cors_configured_means_no_cors_headers(app: webtest.TestApp) -> None:
    response = app.get("/api/hello", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers
    response = preflight(app, ORIGIN, status="*")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.status_int < 500
