"""The real thing: `pserve production.ini` in a subprocess, configured by the environment."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from okta_pyramid.tokens import DPoPVerifier, make_proof

from .issuer import DROP, LoopbackIssuer, unreachable_url
from .services import PSERVE, ROOT, Server, environment, wait_ready

pytestmark = pytest.mark.e2e


def test_serves_with_the_issuer_up(pserve, issuer) -> None:
    started = time.monotonic()
    server = pserve(OKTA_ISSUER=issuer.issuer, OKTA_AUDIENCE=issuer.audience)
    # Warm-up: the keys arrive without any request carrying a token.
    ready = wait_ready(server)
    assert ready.status_code == 200, ready.text
    assert ready.json()["keys"] == 1
    assert issuer.hits["/oauth2/default/v1/keys"] == 1
    startup = time.monotonic() - started

    assert server.get("/healthz").json() == {"status": "ok"}
    hello = server.get("/api/hello")
    assert hello.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", hello.headers["X-Request-ID"])
    assert hello.headers["Server"] == "okta_pyramid"

    token = issuer.mint()
    whoami = server.get(
        "/api/whoami",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "deploy-check-1"},
    )
    assert whoami.status_code == 200
    assert whoami.json()["sub"] == "alice@example.com"
    assert whoami.headers["X-Request-ID"] == "deploy-check-1"
    assert issuer.hits["/oauth2/default/v1/keys"] == 1  # the first request did not pay

    assert server.get("/api/whoami").status_code == 401
    # Limits from production.ini: waitress refuses an oversized header or body (4xx).
    huge = server.get("/api/whoami", headers={"Authorization": "Bearer " + "a" * 70000})
    assert huge.status_code == 431, huge.status_code
    with requests.Session() as session:
        session.trust_env = False
        big_body = session.post(server.url + "/api/hello", data=b"x" * 1100000, timeout=10)
    assert big_body.status_code == 413, big_body.status_code
    expired = issuer.mint(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
    # Without trusted_proxy, X-Forwarded-For is not believed.
    refused = server.get(
        "/api/whoami",
        headers={"Authorization": f"Bearer {expired}", "X-Forwarded-For": "203.0.113.9"},
    )
    assert refused.status_code == 401

    server.stop()
    assert token not in server.stderr and expired not in server.stderr
    assert expired.split(".")[2] not in server.stderr
    [line] = [line for line in server.json_lines() if "token rejected" in line["message"]]
    assert line["message"] == "token rejected: reason=expired client=127.0.0.1"
    assert line["request_id"] == refused.headers["X-Request-ID"]
    assert "Traceback" not in server.stderr
    # api://default and no okta.client_ids: one warning at start-up says why and what to do.
    [warning] = [
        line
        for line in server.json_lines()
        if line["message"].startswith("okta.audience: is api://default")
    ]
    assert warning["level"] == "WARNING" and "okta.client_ids" in warning["message"]
    print(f"pserve start to ready: {startup:.2f}s")  # noqa: T201 - a measurement, seen with -s


def test_authorization_settings_come_from_the_environment(pserve, issuer) -> None:
    server = pserve(
        OKTA_ISSUER=issuer.issuer,
        OKTA_AUDIENCE=issuer.audience,
        OKTA_REQUIRED_CLAIMS="uid\nver = 1",
        OKTA_GROUPS_CLAIM="roles",
        OKTA_TOKEN_CACHE_SIZE="0",
    )
    assert wait_ready(server).status_code == 200

    def admin(**claims: object) -> requests.Response:
        token = issuer.mint(**claims)
        return server.get("/api/admin", headers={"Authorization": f"Bearer {token}"})

    assert admin(roles=["Admins"]).status_code == 200
    assert admin(groups=["Admins"]).status_code == 403  # only the configured claim counts
    missing = admin(roles=["Admins"], uid=DROP)
    assert missing.status_code == 401
    assert "'uid'" in missing.json()["error_description"]
    assert admin(roles=["Admins"], ver=2).status_code == 401


def test_serves_with_the_issuer_unreachable(pserve) -> None:
    issuer = LoopbackIssuer()
    token = issuer.mint()
    issuer.close()
    started = time.monotonic()
    server = pserve(
        OKTA_ISSUER=unreachable_url(),
        OKTA_AUDIENCE=issuer.audience,
        WAITRESS_TRUSTED_PROXY="127.0.0.1",
        WAITRESS_TRUSTED_PROXY_HEADERS="x-forwarded-for",
    )
    assert time.monotonic() - started < 10  # start-up did not wait for the issuer

    assert server.get("/api/hello").status_code == 200
    assert server.get("/healthz").status_code == 200
    whoami = server.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
    assert whoami.status_code == 503
    assert int(whoami.headers["Retry-After"]) >= 1
    assert whoami.json()["error"] == "temporarily_unavailable"
    ready = server.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["reason"] == "keys_not_loaded"

    # Behind the trusted proxy, the client is the address it forwarded.
    refused = server.get(
        "/api/whoami",
        headers={"Authorization": "Bearer not.a.jwt", "X-Forwarded-For": "203.0.113.9"},
    )
    assert refused.status_code == 401
    server.stop()
    assert token not in server.stderr
    messages = [line["message"] for line in server.json_lines()]
    assert "token rejected: reason=malformed client=203.0.113.9" in messages
    assert any(
        m.startswith("token not judged: reason=issuer_unavailable client=127.0.0.1")
        for m in messages
    )


OKTA = {
    "OKTA_ISSUER": "https://dev-123456.okta.com/oauth2/default",
    "OKTA_AUDIENCE": "api://orders",
}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "okta.issuer: is read from the environment variable OKTA_ISSUER, which is not set"),
        (
            {**OKTA, "OKTA_ISSUER": "https://dev-123456.okta.com"},
            "okta.issuer: https://dev-123456.okta.com is the Okta org authorization server",
        ),
        (
            {**OKTA, "OKTA_ISSUER": "http://dev-123456.okta.com/oauth2/default"},
            "okta.issuer: must use https",
        ),
        (
            {**OKTA, "WAITRESS_TRUSTED_PROXY": "10.0.0.1"},
            "server:main trusted_proxy: is set, so set trusted_proxy_headers too",
        ),
        ({**OKTA, "OKTA_LEEWAY": "900"}, "okta.leeway: must be at least 0 and at most 300"),
        # Production names its audience: api://default is shared by every API on Okta's
        # default authorization server.
        (
            {"OKTA_ISSUER": OKTA["OKTA_ISSUER"]},
            "okta.audience: is read from the environment variable OKTA_AUDIENCE, which is not set",
        ),
        (
            {**OKTA, "WAITRESS_LISTEN": "127.0.0.1:99999"},
            "server:main listen: the port '99999' is not a number from 0 to 65535",
        ),
        ({**OKTA, "OKTA_ISSUER": "https://[::1/oauth2/default"}, "okta.issuer: is not a valid URL"),
        (
            {**OKTA, "OKTA_CORS_ALLOWED_ORIGINS": "https://[app"},
            "okta.cors_allowed_origins: is not a valid URL",
        ),
        (
            {**OKTA, "OKTA_ISSUER": "https://dev-123456.okta.com/oauth2/default/"},
            "okta.issuer: must not end with '/'",
        ),
        (
            {**OKTA, "OKTA_ISSUER_2": "http://acme.example.com/oauth2/partners api://partners"},
            "okta.issuer line 2: must use https",
        ),
        (
            {
                **OKTA,
                "OKTA_ISSUER": OKTA["OKTA_ISSUER"] + "\nhttps://acme.okta.com/oauth2/p api://p"
                "\nhttps://acme.okta.com/oauth2/p api://q",
            },
            "okta.issuer line 3: https://acme.okta.com/oauth2/p is listed twice",
        ),
        (
            {**OKTA, "OKTA_DPOP": "sometimes"},
            "okta.dpop: must be one of allowed, required, disabled",
        ),
        (
            {**OKTA, "OKTA_DPOP_NONCE_SECRET": "short-s3cret"},
            "okta.dpop_nonce_secret: must be at least 16 bytes",
        ),
    ],
)
def test_refuses_to_start_with_one_line(env, expected) -> None:
    result = subprocess.run(
        [PSERVE, "production.ini"],
        cwd=ROOT,
        env=environment(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert line["level"] == "CRITICAL"
    assert line["message"].startswith("refusing to start: " + expected)


def test_a_secret_in_a_refused_setting_is_never_printed(tmp_path: Path) -> None:
    # A database URL whose password holds a stray '$', and an issuer with user info.
    ini = (
        (ROOT / "production.ini")
        .read_text()
        .replace(
            "[app:main]\n", "[app:main]\nsqlalchemy.url = postgresql://app:pa$w0rd-s3cret@db/x\n"
        )
    )
    (tmp_path / "production.ini").write_text(ini)

    def refusal(**env: str) -> str:
        result = subprocess.run(
            [PSERVE, "production.ini"],
            cwd=tmp_path,
            env=environment(**env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        [line] = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        assert "s3cret" not in result.stderr and "w0rd" not in result.stderr
        return line["message"]

    assert refusal(**OKTA) == (
        "refusing to start: sqlalchemy.url: the '$' at character 20 must start ${NAME} or "
        "${NAME:-default} (or be written $$)"
    )
    (tmp_path / "production.ini").write_text(ini.replace("pa$w0rd", "pa$$w0rd"))
    assert refusal(**{**OKTA, "OKTA_ISSUER": "https://admin:w0rd-s3cret@dev-1.okta.com/o"}) == (
        "refusing to start: okta.issuer: must not contain user info (user:password@); an "
        "issuer URI never has it"
    )


def test_a_taken_port_refuses_with_one_line(taken_port: int) -> None:
    result = subprocess.run(
        [PSERVE, "production.ini"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        env=environment(**OKTA, WAITRESS_LISTEN=f"127.0.0.1:{taken_port}"),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert line["message"] == (
        f"refusing to start: server:main listen: cannot listen on 127.0.0.1:{taken_port} "
        f"(address already in use); stop what uses it, or choose another address with "
        f"the environment variable WAITRESS_LISTEN"
    )


def test_development_ini_with_its_port_taken_refuses_with_one_line(
    taken_port: int, tmp_path: Path
) -> None:
    # `make run` is `pserve development.ini`: the shipped file, with the taken port.
    ini, count = re.subn(
        r"(?m)^http_port = \d+$",
        f"http_port = {taken_port}",
        (ROOT / "development.ini").read_text(),
    )
    assert count == 1
    (tmp_path / "development.ini").write_text(ini)
    result = subprocess.run(
        [PSERVE, "development.ini"],
        cwd=tmp_path,
        env=environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "OSError" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.endswith(
        f"refusing to start: server:main listen: cannot listen on 127.0.0.1:{taken_port} "
        f"(address already in use); stop what uses it, or choose another port with "
        f"http_port in development.ini"
    )
    assert not (tmp_path / ".devissuer").exists()  # refused before the app was built


# -- DPoP: htu is the URL the client used, behind a proxy ---------------------------------


def dpop_client(issuer: LoopbackIssuer) -> tuple[Any, str]:
    """An ES256 key and an access token bound to it (cnf.jkt)."""
    key = ec.generate_private_key(ec.SECP256R1())
    jkt = DPoPVerifier().verify(make_proof(key, "GET", "https://x/"), "GET", "https://x/").jkt
    return key, issuer.mint(cnf={"jkt": jkt})


def dpop_get(server: Server, key: Any, token: str, htu: str, **headers: str) -> requests.Response:
    proof = make_proof(key, "GET", htu, access_token=token)
    return server.get(
        "/api/whoami", headers={"Authorization": f"DPoP {token}", "DPoP": proof, **headers}
    )


def test_dpop_htu_is_the_clients_url_through_the_trusted_proxy(pserve, issuer) -> None:
    server = pserve(
        OKTA_ISSUER=issuer.issuer,
        OKTA_AUDIENCE=issuer.audience,
        WAITRESS_TRUSTED_PROXY="127.0.0.1",
        WAITRESS_TRUSTED_PROXY_HEADERS="x-forwarded-proto x-forwarded-host",
    )
    assert wait_ready(server).status_code == 200
    key, token = dpop_client(issuer)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com"}

    # The client called https://api.example.com; the proxy called us over plain http.
    answer = dpop_get(server, key, token, "https://api.example.com/api/whoami?q=1", **forwarded)
    assert answer.status_code == 200, answer.text
    assert answer.json()["cnf"]["jkt"]
    # A proof for the address the proxy used is for another URL.
    inside = dpop_get(server, key, token, server.url + "/api/whoami", **forwarded)
    assert inside.status_code == 401
    assert inside.json()["error"] == "invalid_dpop_proof"
    assert inside.headers["WWW-Authenticate"].startswith('DPoP realm="api", algs="')
    # The same token as a bearer token is refused: it is bound.
    assert (
        server.get("/api/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    server.stop()
    assert token not in server.stderr and token.split(".")[2] not in server.stderr
    messages = [line["message"] for line in server.json_lines()]
    assert "token rejected: reason=dpop_url client=127.0.0.1" in messages
    assert "token rejected: reason=bound_token_as_bearer client=127.0.0.1" in messages


def test_dpop_htu_with_okta_public_url(pserve, issuer) -> None:
    server = pserve(
        OKTA_ISSUER=issuer.issuer,
        OKTA_AUDIENCE=issuer.audience,
        OKTA_PUBLIC_URL="https://api.example.com/orders",
    )
    assert wait_ready(server).status_code == 200
    key, token = dpop_client(issuer)
    assert (
        dpop_get(server, key, token, "https://api.example.com/orders/api/whoami").status_code == 200
    )
    # Without trusted_proxy, forwarded headers change nothing; public_url decides.
    refused = dpop_get(
        server,
        key,
        token,
        "https://evil.example/api/whoami",
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_dpop_proof"


def test_a_revoked_token_is_refused_within_the_introspection_ttl(
    pserve, issuer, tmp_path: Path
) -> None:
    # private_key_jwt, as Okta recommends for a service: the key file comes from the
    # environment, the secret never exists.
    client = issuer.add_key_client()
    key_file = tmp_path / "introspection-key.pem"
    key_file.write_bytes(client.pem)
    ttl = 2
    server = pserve(
        OKTA_ISSUER=issuer.issuer,
        OKTA_AUDIENCE=issuer.audience,
        OKTA_INTROSPECTION_CLIENT_ID=client.client_id,
        OKTA_INTROSPECTION_AUTH_METHOD="private_key_jwt",
        OKTA_INTROSPECTION_PRIVATE_KEY=str(key_file),
        OKTA_INTROSPECTION_KEY_ID=client.kid,
        OKTA_INTROSPECTION_CACHE_TTL=str(ttl),
    )
    assert wait_ready(server).status_code == 200
    token = issuer.mint(scp=["messages:write"])
    auth = {"Authorization": f"Bearer {token}"}

    def write(text: str) -> requests.Response:
        with requests.Session() as session:
            session.trust_env = False
            return session.post(
                server.url + "/api/messages", json={"text": text}, headers=auth, timeout=10
            )

    assert write("before").status_code == 201
    assert issuer.introspections[-1].method == "private_key_jwt", issuer.introspections[-1].reason
    revoked_at = time.monotonic()
    issuer.revoke(token)
    while True:
        response = write("after")
        if response.status_code != 201:
            break
        # The cached answer may serve the token until the TTL runs out, no longer.
        assert time.monotonic() - revoked_at < ttl + 0.5, "still accepted past the TTL"
        time.sleep(0.1)
    refused_after = time.monotonic() - revoked_at
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert refused_after < ttl + 0.5
    # The local check cannot see a revocation.
    assert server.get("/api/whoami", headers=auth).status_code == 200
    server.stop()
    assert not any(token in line or "BEGIN" in line for line in server.lines)
    print(f"revoked token refused after {refused_after:.2f}s (TTL {ttl}s)")  # noqa: T201 - seen with -s
