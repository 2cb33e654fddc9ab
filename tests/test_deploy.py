"""The deployment of deploy/, run for real: Redis, two `pserve production.ini`
processes with deploy/okta_pyramid.env, and nginx with deploy/nginx/okta_pyramid.conf
in front, over https with a certificate made for the run, all on loopback."""

from __future__ import annotations

import contextlib
import http.client
import re
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.tls import make_loopback_tls
from okta_pyramid.tokens import make_proof

from .helpers import DPoPClient, metric_value
from .issuer import LoopbackIssuer
from .services import ROOT, RedisServer, Server, free_port, program, wait_for_port, wait_ready

pytestmark = pytest.mark.e2e

DEPLOY = ROOT / "deploy"
TTL = 2


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines, as systemd's EnvironmentFile reads them (no quoting here)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def site_config(
    upstreams: list[str], https_port: int, http_port: int, tls: Any, *, under_a_path: bool = False
) -> str:
    """deploy/nginx/okta_pyramid.conf with this run's ports, host and certificate;
    ``under_a_path``: with the locations it gives for the API under /orders."""
    text = (DEPLOY / "nginx" / "okta_pyramid.conf").read_text()
    if under_a_path:
        text, made = re.subn(
            r"(?m)^    location / \{\n        proxy_pass [^\n]*\n    \}\n", "", text
        )
        assert made == 1, "deploy/nginx/okta_pyramid.conf changed shape: location /"
        text, made = re.subn(r"(?m)^    #(location |    proxy_pass |\})", r"    \1", text)
        assert made == 6, "deploy/nginx/okta_pyramid.conf changed shape: the /orders locations"
    servers = "\n".join(
        f"    server {address} max_fails=1 fail_timeout=10s;" for address in upstreams
    )
    replacements = [
        (
            r"(?m)(?:^    server 127\.0\.0\.1:\d+ max_fails=1 fail_timeout=10s;\n)+",
            servers + "\n",
            1,
        ),
        (r"(?m)^    listen \[::\]:\d+( ssl)?;\n", "", 2),  # no IPv6 needed on loopback
        (r"listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;", 1),
        (r"listen 80;", f"listen 127.0.0.1:{http_port};", 1),
        (r"server_name api\.example\.com;", "server_name 127.0.0.1;", 2),
        (r"/etc/ssl/okta_pyramid/fullchain\.pem", str(tls.cert_file), 1),
        (r"/etc/ssl/okta_pyramid/privkey\.pem", str(tls.key_file), 1),
    ]
    for pattern, replacement, count in replacements:
        text, made = re.subn(pattern, replacement, text)
        assert made == count, f"deploy/nginx/okta_pyramid.conf changed shape: {pattern}"
    return text


class Nginx:
    def __init__(self, directory: Path, site: str) -> None:
        self.executable = program("nginx", "nginx")
        self.directory = directory
        (directory / "site.conf").write_text(site)
        (directory / "nginx.conf").write_text(f"""
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {directory}/site.conf;
}}
""")
        check = subprocess.run(
            [self.executable, "-t", "-p", str(directory), "-c", str(directory / "nginx.conf")],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(
            [self.executable, "-p", str(directory), "-c", str(directory / "nginx.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@dataclass
class Deployment:
    issuer: LoopbackIssuer
    redis: RedisServer
    processes: list[Server]
    url: str
    ca_file: str
    http_url: str

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        """A request through nginx, over https, as a client on the Internet would."""
        with requests.Session() as session:
            session.trust_env = False
            return session.request(method, self.url + path, verify=self.ca_file, timeout=10, **kw)

    def direct(self, process: Server, method: str, path: str, **kw: Any) -> requests.Response:
        """A request straight to one process (as nginx sends it)."""
        with requests.Session() as session:
            session.trust_env = False
            return session.request(method, process.url + path, timeout=10, **kw)

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """The processes' metrics, added up (as Prometheus would)."""
        total: dict[tuple[str, tuple], float] = {}
        for process in self.processes:
            if process.process.poll() is not None:
                continue
            text = self.direct(process, "GET", "/metrics").text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    total[key] = total.get(key, 0.0) + sample.value
        return total


@contextlib.contextmanager
def deployed(
    pserve: Callable[..., Server], issuer: LoopbackIssuer, tmp_path: Path, path: str = ""
) -> Iterator[Deployment]:
    """The deployment; with ``path``, the API under it (``/orders``), as the comments
    of the nginx site say."""
    with contextlib.ExitStack() as stack:
        redis = RedisServer(tmp_path)
        stack.callback(redis.stop)
        https_port, http_port = free_port(), free_port()
        url = f"https://127.0.0.1:{https_port}"
        env = {
            **read_env_file(DEPLOY / "okta_pyramid.env"),
            # What differs in this run: the issuer, Redis, the URL, a short TTL.
            "OKTA_ISSUER": issuer.issuer,
            "OKTA_AUDIENCE": issuer.audience,
            "OKTA_PUBLIC_URL": url + path,
            "OKTA_SHARED_STORE": redis.url,
            "OKTA_INTROSPECTION_CLIENT_ID": issuer.CLIENT_ID,
            "OKTA_INTROSPECTION_CLIENT_SECRET": issuer.CLIENT_SECRET,
            "OKTA_INTROSPECTION_CACHE_TTL": str(TTL),
            **({"WAITRESS_URL_PREFIX": path} if path else {}),
        }
        processes = [pserve(**env) for _ in range(2)]
        for process in processes:
            assert wait_ready(process).status_code == 200
        (tmp_path / "tls").mkdir()
        tls = make_loopback_tls(tmp_path / "tls")
        upstreams = [process.url.removeprefix("http://") for process in processes]
        site = site_config(upstreams, https_port, http_port, tls, under_a_path=bool(path))
        nginx = Nginx(tmp_path, site)
        stack.callback(nginx.stop)
        wait_for_port(https_port)
        yield Deployment(
            issuer, redis, processes, url, str(tls.ca_file), f"http://127.0.0.1:{http_port}"
        )
        for process in processes:
            process.stop()
            assert "Traceback" not in process.stderr


@pytest.fixture
def deployment(
    pserve: Callable[..., Server], issuer: LoopbackIssuer, tmp_path: Path
) -> Iterator[Deployment]:
    with deployed(pserve, issuer, tmp_path) as deployment:
        yield deployment


def test_a_dpop_proof_is_accepted_once_by_all_processes(deployment: Deployment) -> None:
    client = DPoPClient(deployment.issuer)
    url = deployment.url + "/api/whoami"
    proof = make_proof(client.key, "GET", url, access_token=client.token)
    headers = {"Authorization": f"DPoP {client.token}", "DPoP": proof}
    first = deployment.call("GET", "/api/whoami", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["cnf"]["jkt"] == client.jkt
    # The same proof again: through nginx (the next process in turn), and to each
    # process directly, as nginx would forward it.
    again = deployment.call("GET", "/api/whoami", headers=headers)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_dpop_proof"
    for process in deployment.processes:
        replay = deployment.direct(
            process,
            "GET",
            "/api/whoami",
            headers={**headers, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "127.0.0.1"},
        )
        assert replay.status_code == 401
        assert "already used" in replay.json()["error_description"]
    # Each process refused the replay at least once: neither had seen the proof itself.
    for process in deployment.processes:
        text = deployment.direct(process, "GET", "/metrics").text
        assert re.search(r"^okta_pyramid_dpop_replays_refused_total [1-9]", text, re.M)
    # Not reachable from outside; plain http is sent to https.
    assert deployment.call("GET", "/metrics").status_code == 404
    with requests.Session() as session:
        session.trust_env = False
        plain = session.get(deployment.http_url + "/api/whoami", allow_redirects=False, timeout=10)
    assert plain.status_code == 308
    assert plain.headers["Location"] == "https://127.0.0.1/api/whoami"
    found = deployment.metrics()
    assert metric_value(found, "okta_pyramid_tokens_accepted_total", scheme="DPoP") == 1
    assert metric_value(found, "okta_pyramid_dpop_replays_refused_total") == 3


def test_a_revoked_token_is_refused_by_every_process_within_the_ttl(deployment: Deployment) -> None:
    issuer = deployment.issuer
    token = issuer.mint(scp=["messages:write"])
    auth = {"Authorization": f"Bearer {token}"}
    for process in deployment.processes:
        response = deployment.direct(
            process, "POST", "/api/messages", json={"text": "hi"}, headers=auth
        )
        assert response.status_code == 201, response.text
    # One call served both processes.
    assert issuer.hits["/oauth2/default/v1/introspect"] == 1
    revoked_at = time.monotonic()
    issuer.revoke(token)
    refused: set[int] = set()
    while len(refused) < 2:
        for index, process in enumerate(deployment.processes):
            response = deployment.direct(
                process, "POST", "/api/messages", json={"text": "after"}, headers=auth
            )
            if response.status_code == 401:
                assert response.json()["error"] == "invalid_token"
                refused.add(index)
            else:
                assert response.status_code == 201
        assert time.monotonic() - revoked_at < TTL + 1, "still accepted past the TTL"
        time.sleep(0.1)
    assert (
        deployment.call("POST", "/api/messages", json={"text": "x"}, headers=auth).status_code
        == 401
    )
    found = deployment.metrics()
    assert metric_value(found, "okta_pyramid_tokens_refused_total", reason="inactive") >= 3
    assert metric_value(found, "okta_pyramid_introspection_cache_hits_total", cache="shared") >= 1


def test_one_process_or_redis_down(deployment: Deployment) -> None:
    issuer = deployment.issuer
    token = issuer.mint()
    bearer = {"Authorization": f"Bearer {token}"}
    client = DPoPClient(issuer)

    def dpop() -> requests.Response:
        proof = make_proof(
            client.key, "GET", deployment.url + "/api/whoami", access_token=client.token
        )
        return deployment.call(
            "GET", "/api/whoami", headers={"Authorization": f"DPoP {client.token}", "DPoP": proof}
        )

    # One process stopped: nginx and the other keep serving.
    deployment.processes[0].stop()
    for _ in range(4):
        assert deployment.call("GET", "/api/whoami", headers=bearer).status_code == 200
        assert dpop().status_code == 200
    # Redis stopped: DPoP requests are 503, plain bearer requests still 200.
    deployment.redis.stop()
    down = dpop()
    assert down.status_code == 503, down.text
    assert down.json()["error"] == "temporarily_unavailable"
    assert int(down.headers["Retry-After"]) >= 1
    assert deployment.call("GET", "/api/whoami", headers=bearer).status_code == 200
    ready = deployment.direct(deployment.processes[1], "GET", "/readyz").json()
    assert ready["shared_store"] == "unavailable"
    # Redis back: service resumes.
    deployment.redis.start()
    deadline = time.monotonic() + 10
    while dpop().status_code != 200:
        assert time.monotonic() < deadline, "DPoP did not recover with Redis"
        time.sleep(0.2)
    assert (
        deployment.direct(deployment.processes[1], "GET", "/readyz").json()["shared_store"] == "ok"
    )
    found = deployment.metrics()
    assert (
        metric_value(found, "okta_pyramid_tokens_refused_total", reason="shared_store_unavailable")
        >= 1
    )
    assert metric_value(found, "okta_pyramid_shared_store_failures_total") >= 1
    logs = deployment.processes[1].lines
    assert any("shared store redis://127.0.0.1" in line and "failed" in line for line in logs)
    assert not any(token in line or client.token in line for line in logs)


def test_what_a_client_sends_cannot_steer_the_proxy(deployment: Deployment) -> None:
    # /metrics, however the path is spelled, stays inside.
    for path in (
        "/metrics",
        "/metrics/",
        "//metrics",
        "/%6detrics",
        "/metrics?x=1",
        "/./metrics",
        "/api/../metrics",
        "/metrics;x",
        "/metrics%3Fx",
    ):
        with requests.Session() as session:
            session.trust_env = False
            prepared = requests.Request("GET", deployment.url + "/").prepare()
            prepared.url = deployment.url + path  # sent as written, not normalized
            response = session.send(prepared, verify=deployment.ca_file, timeout=10)
        assert response.status_code == 404, path
        assert "okta_pyramid_" not in response.text, path
    # The redirect to https names this server, not the Host the client sent.
    with requests.Session() as session:
        session.trust_env = False
        plain = session.get(
            deployment.http_url + "/api/whoami",
            allow_redirects=False,
            headers={"Host": "attacker.example"},
            timeout=10,
        )
    assert plain.status_code == 308
    assert plain.headers["Location"] == "https://127.0.0.1/api/whoami"
    # The client's own X-Forwarded-* are replaced: the logs show the address nginx
    # saw, and a proof made for another host is refused.
    forged = {
        "X-Forwarded-For": "203.0.113.66",
        "X-Forwarded-Host": "attacker.example",
        "X-Forwarded-Proto": "http",
        "Forwarded": "for=203.0.113.67",
    }
    refused = deployment.call(
        "GET", "/api/whoami", headers={**forged, "Authorization": "Bearer not-a-jwt"}
    )
    assert refused.status_code == 401
    client = DPoPClient(deployment.issuer)
    elsewhere = make_proof(
        client.key, "GET", "https://attacker.example/api/whoami", access_token=client.token
    )
    response = deployment.call(
        "GET",
        "/api/whoami",
        headers={
            **forged,
            "Host": "attacker.example",
            "Authorization": f"DPoP {client.token}",
            "DPoP": elsewhere,
        },
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_dpop_proof"
    lines = [
        line
        for process in deployment.processes
        for line in process.lines
        if "token rejected" in line
    ]
    assert lines and all("client=127.0.0.1" in line for line in lines), lines
    assert not any(
        "203.0.113" in line for process in deployment.processes for line in process.lines
    )
    # A header or a body larger than the limits is refused by nginx itself.
    assert deployment.call("GET", "/api/hello", headers={"X-Big": "a" * 40_000}).status_code in (
        400,
        431,
        494,
    )
    assert (
        deployment.call(
            "POST",
            "/api/messages",
            data=b"x" * (1024 * 1024 + 1),
            headers={"Content-Type": "application/json"},
        ).status_code
        == 413
    )


def test_readiness_details_stay_on_the_operators_network(deployment: Deployment) -> None:
    # /readyz names the trusted issuers and the store's state: nginx answers it to
    # loopback and private networks, and 403 to anyone else (here: 127.0.0.2, a
    # loopback address the site does not list, standing for the Internet).
    inside = deployment.call("GET", "/readyz")
    assert inside.status_code == 200 and inside.json()["shared_store"] == "ok"
    port = int(deployment.url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=deployment.ca_file)
    for path in ("/readyz", "/readyz?x=1", "/api/hello"):
        connection = http.client.HTTPSConnection(
            "127.0.0.1", port, context=context, source_address=("127.0.0.2", 0), timeout=10
        )
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read().decode()
        finally:
            connection.close()
        if path == "/api/hello":
            assert response.status == 200  # the API itself is open to everyone
        else:
            assert response.status == 403, path
            assert deployment.issuer.issuer not in body and "shared_store" not in body


def test_the_api_under_a_path_publishes_its_metadata_at_the_hosts_root(
    pserve: Callable[..., Server], issuer: LoopbackIssuer, tmp_path: Path
) -> None:
    with deployed(pserve, issuer, tmp_path, "/orders") as deployment:
        refused = deployment.call("GET", "/orders/api/whoami")
        assert refused.status_code == 401
        # RFC 9728 §3.1: the well-known path between the host and the resource's path.
        pointer = f"{deployment.url}/.well-known/oauth-protected-resource/orders"
        assert f'resource_metadata="{pointer}"' in refused.headers["WWW-Authenticate"]
        answer = deployment.call("GET", "/.well-known/oauth-protected-resource/orders")
        assert answer.status_code == 200
        # §3.3: the resource is the URL the client took the well-known path out of.
        assert answer.json()["resource"] == deployment.url + "/orders"
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        token = {"Authorization": f"Bearer {issuer.mint()}"}
        assert deployment.call("GET", "/orders/api/whoami", headers=token).status_code == 200
        # Nothing of the API is served outside its path (nginx has no location there).
        outside = deployment.call("GET", "/api/whoami", headers=token)
        assert outside.status_code in (403, 404) and "alice" not in outside.text
