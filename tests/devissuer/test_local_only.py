"""The guard in front of the development issuer: only the developer's own tools on
this machine get an answer, never a web page open in the developer's browser."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import webtest
from pyramid.config import Configurator
from pyramid.security import NO_PERMISSION_REQUIRED

from ..helpers import basic
from .helpers import GRANT, TOKEN, DevServer, dev_settings

ENDPOINTS = [
    ("GET", "/oauth2/default/.well-known/oauth-authorization-server"),
    ("GET", "/oauth2/default/.well-known/openid-configuration"),
    ("GET", "/oauth2/default/v1/keys"),
    ("POST", TOKEN),
    ("POST", "/oauth2/default/v1/introspect"),
    ("POST", "/oauth2/default/v1/revoke"),
]
IDS = ["rfc8414-metadata", "oidc-metadata", "keys", "token", "introspect", "revoke"]


def call(dev: DevServer, method: str, path: str, headers: dict[str, str], **kw):
    if method == "POST":
        auth = {"Authorization": basic("svc-client", "s3cret-value")}
        # Introspection and revocation answer 200 for any token, even a made-up one.
        form = GRANT if path == TOKEN else {"token": "x.y.z"}
        return dev.app.post(path, form, headers={**auth, **headers}, **kw)
    return dev.app.get(path, headers=headers, **kw)


def port(dev: DevServer) -> int:
    return int(dev.base_url.rsplit(":", 1)[1])


def refused_headers(p: int) -> list[dict[str, str]]:
    """Requests a web page could make, and requests addressed to another server."""
    return [
        # DNS rebinding: the attacker's name, resolved to 127.0.0.1, on the right port.
        {"Host": f"rebind.attacker.example:{p}"},
        {"Host": f"rebind.attacker.example:{p}", "Origin": f"http://rebind.attacker.example:{p}"},
        {"Host": f"127.0.0.1:{p + 1}"},
        {"Host": "127.0.0.1"},
        {"Host": "[::1"},
        # A cross-site page: fetch, or a form posted from it.
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": f"http://127.0.0.1:{p + 1}"},
        {"Origin": f"http://localhost:{p}"},
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"},
    ]


def accepted_headers(p: int) -> list[dict[str, str]]:
    return [
        {},
        {"Host": f"localhost:{p}"},
        {"Host": f"LOCALHOST:{p}"},
        {"Host": f"[::1]:{p}"},
        {"Origin": f"http://127.0.0.1:{p}"},
        # A page this app serves, calling it from the origin it was opened at.
        {"Host": f"localhost:{p}", "Origin": f"http://localhost:{p}"},
        {
            "Sec-Fetch-Site": "same-origin",
            "Sec-Fetch-Mode": "cors",
            "Origin": f"http://127.0.0.1:{p}",
        },
        {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"},
    ]


@pytest.mark.parametrize("method, path", ENDPOINTS, ids=IDS)
def test_every_endpoint_refuses_web_pages_and_foreign_hosts(dev: DevServer, method, path):
    for headers in refused_headers(port(dev)):
        response = call(dev, method, path, headers, status=403)
        assert response.json["error"] == "access_denied", headers
        assert not {"access_token", "keys", "active"} & set(response.json), headers
        assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("method, path", ENDPOINTS, ids=IDS)
def test_every_endpoint_answers_the_developers_tools(dev: DevServer, method, path):
    for headers in accepted_headers(port(dev)):
        assert call(dev, method, path, headers).status_int == 200, headers


@pytest.mark.parametrize("method, path", ENDPOINTS, ids=IDS)
@pytest.mark.parametrize("remote", ["203.0.113.5", "10.0.0.7", "172.17.0.1"])
def test_every_endpoint_answers_loopback_callers_only(dev: DevServer, method, path, remote):
    # The development client's secret is public: a server published beyond loopback
    # (listen = 0.0.0.0, a container port) must not serve other machines.
    response = call(dev, method, path, {}, extra_environ={"REMOTE_ADDR": remote}, status=403)
    assert response.json["error"] == "access_denied"


@pytest.mark.parametrize("method, path", ENDPOINTS, ids=IDS)
@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": "203.0.113.5"},
        {"X-Forwarded-Host": "api.example.com"},
        {"X-Forwarded-Proto": "https"},
        {"Forwarded": "for=203.0.113.5"},
        {"X-Real-IP": "203.0.113.5"},
        {"Via": "1.1 proxy"},
    ],
    ids=[
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "forwarded",
        "x-real-ip",
        "via",
    ],
)
def test_every_endpoint_refuses_what_a_proxy_relays(dev: DevServer, method, path, header):
    # A reverse proxy on this machine relays everyone's requests from loopback, with
    # Host set to the upstream's (nginx's default): its headers give it away.
    response = call(dev, method, path, header, status=403)
    assert response.json["error"] == "access_denied"
    assert "through a proxy" in response.json["error_description"]


def test_a_link_from_another_site_may_open_the_metadata(dev: DevServer):
    # A top-level GET opens the document in the developer's tab: no page reads it.
    headers = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    dev.app.get("/oauth2/default/.well-known/openid-configuration", headers=headers)
    # A form posted from another site is a navigation too, and is refused.
    call(dev, "POST", TOKEN, headers, status=403)


def test_the_api_is_not_guarded(dev: DevServer):
    # The guard covers the issuer's path only: the API answers browsers as before.
    headers = {
        "Host": "api.example.com",
        "Origin": "https://evil.example",
        "Sec-Fetch-Site": "cross-site",
    }
    assert dev.app.get("/api/hello", headers=headers).status_int == 200


def test_dns_rebinding_over_real_http_gets_no_token(dev: DevServer):
    p = port(dev)
    with requests.Session() as session:
        session.trust_env = False
        auth = ("svc-client", "s3cret-value")
        rebound = session.post(
            f"{dev.base_url}{TOKEN}",
            data=GRANT,
            auth=auth,
            timeout=10,
            headers={
                "Host": f"rebind.attacker.example:{p}",
                "Origin": f"http://rebind.attacker.example:{p}",
            },
        )
        assert rebound.status_code == 403
        assert "access_token" not in rebound.text
        own = session.post(f"{dev.base_url}{TOKEN}", data=GRANT, auth=auth, timeout=10)
        assert own.status_code == 200 and own.json()["access_token"]


def test_refusals_are_logged_without_credentials(dev: DevServer, caplog):
    caplog.set_level("WARNING")
    call(dev, "POST", TOKEN, {"Origin": "https://evil.example"}, status=403)
    assert "development issuer: refused POST '/oauth2/default/v1/token'" in caplog.text
    assert "s3cret-value" not in caplog.text


def test_a_refused_path_cannot_forge_log_lines(dev: DevServer, caplog):
    caplog.set_level("WARNING")
    forged = "\n2026-11-30 INFO [okta_pyramid.security] token accepted"
    call(
        dev,
        "GET",
        "/oauth2/default/x%0a2026-11-30%20INFO%20token%20accepted",
        {"Origin": "https://evil.example"},
        status=403,
    )
    assert [record for record in caplog.records if "refused" in record.getMessage()]
    assert all("\n" not in record.getMessage() for record in caplog.records), forged


@pytest.mark.parametrize("path", ["/api/whoami%ff", "/oauth2/default/v1/keys%ff"])
def test_a_path_that_is_not_utf8_is_a_clear_400(dev: DevServer, path):
    # The guard reads every path first; bytes that are not UTF-8 must not break it.
    response = dev.app.get(path, status=400)
    assert response.json["error"] == "invalid_request"


def test_an_endpoint_added_later_is_guarded_too(tmp_path: Path):
    """Any view under the issuer's path passes the guard, with nothing to declare."""
    with Configurator(
        settings=dev_settings(6543, tmp_path / "keys", **{"okta.jwks_refresh_interval": "0"})
    ) as config:
        config.include("okta_pyramid")
        config.include("okta_pyramid.devissuer")
        config.add_route("devissuer.later", "/oauth2/default/v1/later")
        config.add_view(
            lambda request: {"sub": "alice"},
            route_name="devissuer.later",
            renderer="json",
            permission=NO_PERMISSION_REQUIRED,
        )
    app = webtest.TestApp(
        config.make_wsgi_app(),
        extra_environ={"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:6543"},
    )
    assert app.get("/oauth2/default/v1/later").json == {"sub": "alice"}
    refused = app.get(
        "/oauth2/default/v1/later", headers={"Origin": "https://evil.example"}, status=403
    )
    assert refused.json["error"] == "access_denied"
