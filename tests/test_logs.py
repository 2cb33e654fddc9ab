"""Request ids, JSON log lines, and no token or key in any log line."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import sys
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization

from okta_pyramid.logs import JSONFormatter

from .helpers import b64url
from .issuer import DROP, LoopbackIssuer, SigningKey, rsa_key

REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def hs256_with_public_key(issuer: LoopbackIssuer) -> str:
    """The classic key-confusion attack: HMAC keyed with the RSA public key."""
    public_pem = (
        issuer.keys[0]
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = f"{b64url({'alg': 'HS256', 'kid': 'key-1'})}.{b64url(issuer.claims())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def rejected_tokens(issuer: LoopbackIssuer) -> dict[str, str]:
    """A token for every way the verifier refuses one."""
    good = issuer.mint()
    header, payload, signature = good.split(".")
    foreign = SigningKey("key-1", rsa_key(7))
    now = int(time.time())
    return {
        "not_a_jwt": "not-a-jwt-at-all-but-long-enough",
        "garbage_segments": "Zm9vYmFy.YmF6cXV4.c2lnbmF0dXJl",
        "alg_none": f"{b64url({'alg': 'none', 'kid': 'key-1'})}.{payload}.",
        "hs256_public_key": hs256_with_public_key(issuer),
        "crit": issuer.mint(headers={"crit": ["exp"], "exp": 1}),
        "typ_id_token": issuer.mint(headers={"typ": "JOSE+JSON"}),
        "no_kid": f"{b64url({'alg': 'RS256'})}.{payload}.{signature}",
        "unknown_kid": issuer.mint(key=SigningKey("key-unknown", rsa_key(1))),
        "foreign_key": issuer.mint(key=foreign),
        "tampered": f"{header}.{b64url(issuer.claims(sub='mallory'))}.{signature}",
        "embedded_jwk": issuer.mint(key=foreign, headers={"jwk": foreign.jwk}),
        "expired": issuer.mint(exp=now - 3600, iat=now - 7200),
        "not_yet_valid": issuer.mint(nbf=now + 3600),
        "issued_in_future": issuer.mint(iat=now + 3600),
        "wrong_issuer": issuer.mint(iss="https://evil.example/oauth2/default"),
        "wrong_audience": issuer.mint(aud="api://other"),
        "no_exp": issuer.mint(exp=DROP),
        "exp_as_string": issuer.mint(exp=str(now + 3600)),
        "wrong_client": issuer.mint(cid="0oa-someone-else"),
        "huge": issuer.mint(filler="x" * 20000),
    }


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every okta_pyramid log line, formatted as production.ini does, as it is emitted."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("okta_pyramid")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def secrets_of(issuer: LoopbackIssuer, tokens: list[str]) -> list[str]:
    """Strings that must never be logged: tokens, their segments, key material."""
    found = []
    for token in tokens:
        found.append(token)
        found.extend(part for part in token.split(".") if len(part) >= 12)
    for key in issuer.keys:
        jwk = key.jwk
        found.extend([jwk["n"], jwk["n"][:40]])
        private = key.private_key.private_numbers()
        found.append(str(private.d)[:40])
    return found


def assert_nothing_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret reached the logs: {secret[:20]}..."


def test_no_token_or_key_in_logs_on_any_rejection(make_app, issuer, caplog, log_lines) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app(client_ids="0oa-test-client")
    tokens = rejected_tokens(issuer)
    responses = {}
    for name, token in tokens.items():
        responses[name] = app.get(
            "/api/whoami", headers={"Authorization": f"Bearer {token}"}, expect_errors=True
        )
        assert responses[name].status_int in (400, 401), name
    # Not in the Authorization header as one token: refused as invalid_request.
    extra = [tokens["expired"], "first.second.third"]
    responses["query_string"] = app.get(f"/api/whoami?access_token={extra[0]}", status=400)
    responses["two_tokens"] = app.get(
        "/api/whoami", headers={"Authorization": f"Bearer {extra[0]} {extra[1]}"}, status=400
    )
    # The issuer goes down: the token is not judged (503), and still not logged.
    down = LoopbackIssuer()
    down.mode = "error"
    try:
        unjudged = down.mint()
        app_down = make_app(issuer=down.issuer)
        responses["issuer_down"] = app_down.get(
            "/api/whoami", headers={"Authorization": f"Bearer {unjudged}"}, status=503
        )
    finally:
        down.close()

    secrets = secrets_of(issuer, [*tokens.values(), *extra, unjudged])
    records = caplog.records
    assert records
    for record in records:
        assert_nothing_secret(record.getMessage(), secrets)
        assert_nothing_secret(repr(record.args), secrets)
        assert record.exc_info is None
    assert_nothing_secret(caplog.text, secrets)
    assert_nothing_secret(log_lines.getvalue(), secrets)

    # One line per refused request, with the reason, the client and the request id.
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    verdicts = [
        line
        for line in lines
        if re.search(r"^(token|request) (rejected|not judged): ", line["message"])
    ]
    assert len(verdicts) == len(responses)
    for line, (name, response) in zip(verdicts, responses.items(), strict=True):
        assert "client=192.0.2.7" in line["message"], name
        assert re.search(r"reason=[a-z_]+", line["message"]), name
        assert line["request_id"] == response.headers["X-Request-ID"], name


def test_rejection_reasons_are_logged(make_app, issuer, log_lines) -> None:
    app = make_app()
    app.get(
        "/api/whoami", headers={"Authorization": f"Bearer {issuer.mint(exp=1, iat=0)}"}, status=401
    )
    [line] = [json.loads(line) for line in log_lines.getvalue().splitlines() if "rejected" in line]
    assert line["level"] == "INFO"
    assert line["logger"] == "okta_pyramid.security"
    assert line["message"] == "token rejected: reason=expired client=192.0.2.7"


@pytest.mark.parametrize("path", ["/api/hello", "/api/whoami", "/healthz", "/no/such/thing"])
def test_every_response_carries_a_generated_request_id(make_app, path) -> None:
    response = make_app().get(path, expect_errors=True)
    assert REQUEST_ID.fullmatch(response.headers["X-Request-ID"])


def test_generated_request_ids_are_unique() -> None:
    from okta_pyramid.logs import new_request_id

    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(REQUEST_ID.fullmatch(rid) for rid in ids[:10])


@pytest.mark.parametrize(
    "inbound",
    ["3f2a9c1e-8b7d-4c1a-9e2f-0a1b2c3d4e5f", "Root=1-67891233-abcdef012345678912345678", "req_42"],
)
def test_sane_inbound_request_id_is_kept(make_app, inbound) -> None:
    response = make_app().get("/api/hello", headers={"X-Request-ID": inbound})
    assert response.headers["X-Request-ID"] == inbound


@pytest.mark.parametrize(
    "inbound", ["", "has space", "x" * 129, "semi;colon", 'quote"', "tab\there"]
)
def test_odd_inbound_request_id_is_replaced(make_app, inbound) -> None:
    response = make_app().get("/api/hello", headers={"X-Request-ID": inbound})
    assert REQUEST_ID.fullmatch(response.headers["X-Request-ID"])


def test_request_id_is_on_every_line_of_the_request_only(make_app, issuer, log_lines) -> None:
    app = make_app()
    app.get(
        "/api/whoami",
        headers={"Authorization": "Bearer a.b.c", "X-Request-ID": "abc-1"},
        status=401,
    )
    logging.getLogger("okta_pyramid.test").info("outside any request")
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert lines[0]["request_id"] == "abc-1"
    assert "request_id" not in lines[-1]


def test_json_formatter_writes_one_line_per_record() -> None:
    formatter = JSONFormatter()
    record = logging.LogRecord(
        "okta_pyramid.x",
        logging.WARNING,
        __file__,
        1,
        'forged\n{"level": "INFO"} %s',
        ("arg",),
        None,
    )
    text = formatter.format(record)
    assert "\n" not in text
    entry = json.loads(text)
    assert entry["message"] == 'forged\n{"level": "INFO"} arg'
    assert entry["level"] == "WARNING"
    assert entry["time"].endswith("Z")
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(formatter.format(record))["exception"]
