"""CORS in a real browser: headless Chromium calls the API from other origins.

Header assertions in WebTest cannot show that a single-page app on another
origin can read the API's answers; only a browser enforces CORS. Here the API
and the developer console are each served by real waitress servers on
different loopback ports (so different origins), the API trusts the loopback
issuer, and Debian's Chromium, driven by Selenium through Debian's
chromedriver, loads the console and calls the API with ``fetch``.

A page also makes a non-extractable ES256 key with WebCrypto and calls the API
with ``Authorization: DPoP`` and proofs it signs itself (RFC 9449).

The API server counts what reached it, so the tests can tell a request the
browser never sent (a cached preflight) from one whose answer it withheld.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from okta_pyramid.app import main

from .browser import Served, chromium, listening_socket
from .helpers import b64url
from .issuer import LoopbackIssuer

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# Chromium keeps a preflight for 5 s when the answer has no Access-Control-Max-Age
# (and at most 2 h), so a preflight still cached after this pause was kept
# because of our header.
PAST_DEFAULT_PREFLIGHT_CACHE = 6.0


# -- servers -------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the API received it."""

    method: str
    path: str
    origin: str | None
    authorization: bool
    request_headers: str | None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)


class RequestLog:
    """WSGI middleware that records every request that reached the application."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        query = environ.get("QUERY_STRING")
        entry = Seen(
            method=environ["REQUEST_METHOD"],
            path=environ.get("PATH_INFO", "") + (f"?{query}" if query else ""),
            origin=environ.get("HTTP_ORIGIN"),
            authorization="HTTP_AUTHORIZATION" in environ,
            request_headers=environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS"),
        )

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            entry.status = int(status.split()[0])
            entry.headers = {name.lower(): value for name, value in headers}
            return start_response(status, headers, exc_info)

        with self.lock:
            self.seen.append(entry)
        return self.app(environ, recording_start_response)

    def requests(self, method: str, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method and s.path == path]


@dataclass
class Site:
    issuer: LoopbackIssuer
    api: Served
    api_log: RequestLog
    console: Served  # an allowed origin
    elsewhere: Served  # the same console, from an origin the API does not allow


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    issuer = LoopbackIssuer()
    api_sock, console_sock, elsewhere_sock = (listening_socket() for _ in range(3))
    console_origin = f"http://127.0.0.1:{console_sock.getsockname()[1]}"
    common = {
        "okta.issuer": issuer.issuer,
        "okta.audience": issuer.audience,
        "okta.http_timeout": "2",
    }
    api_log = RequestLog(main({}, **common, **{"okta.cors_allowed_origins": console_origin}))
    console_app = main({}, **common, **{"okta.console": "true"})
    servers = [
        Served(api_log, api_sock),
        Served(console_app, console_sock),
        Served(console_app, elsewhere_sock),
    ]
    yield Site(issuer, servers[0], api_log, servers[1], servers[2])
    for server in servers:
        server.close()
    issuer.close()


# -- browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


FETCH = """
const [url, token, done] = arguments;
const headers = token ? {Authorization: "Bearer " + token} : {};
fetch(url, {headers, mode: "cors", credentials: "omit"}).then(
  async (r) => done({rejected: false, status: r.status, body: await r.text(),
                     wwwAuthenticate: r.headers.get("WWW-Authenticate")}),
  (e) => done({rejected: true, name: e.name, message: e.message}));
"""


def page_fetch(driver: Any, url: str, token: str | None = None) -> dict[str, Any]:
    """``fetch(url)`` from the page the browser is on; what the page got to see."""
    return driver.execute_async_script(FETCH, url, token)


class Console:
    """The developer console page, used as a person would."""

    def __init__(self, driver: Any, page_origin: str, api_url: str) -> None:
        self.driver = driver
        driver.get(f"{page_origin}/console/")
        WebDriverWait(driver, 10).until(
            lambda d: d.find_element(By.ID, "origin").text == page_origin
        )
        base = driver.find_element(By.ID, "base")
        base.clear()
        base.send_keys(api_url)

    def paste_token(self, token: str) -> None:
        field = self.driver.find_element(By.ID, "token")
        field.clear()
        field.send_keys(token)

    def call(self, button: str) -> dict[str, Any]:
        status = self.driver.find_element(By.ID, "status")
        before = int(status.get_attribute("data-seq"))
        self.driver.find_element(By.ID, button).click()
        WebDriverWait(self.driver, 10).until(
            lambda d: int(status.get_attribute("data-seq")) > before
        )
        headers = self.driver.find_elements(By.CSS_SELECTOR, "#headers dt, #headers dd")
        texts = [h.get_attribute("textContent") for h in headers]
        return {
            "state": status.get_attribute("data-state"),
            "status": status.text,
            "headers": dict(zip(texts[::2], texts[1::2], strict=True)),
            "body": self.driver.find_element(By.ID, "body").get_attribute("textContent"),
        }

    def text(self, element_id: str) -> str:
        return self.driver.find_element(By.ID, element_id).get_attribute("textContent")


# -- tests ---------------------------------------------------------------------


def test_allowed_origin_reads_hello_and_whoami(site: Site, browser: Any, tmp_path: Path) -> None:
    token = site.issuer.mint(sub="carol@example.com")
    console = Console(browser, site.console.url, site.api.url)
    console.paste_token(token)

    hello = console.call("call-hello")
    assert hello["state"] == "ok", hello
    assert hello["status"].startswith("200 ")
    assert json.loads(hello["body"])["message"].startswith("Hello!")

    whoami = console.call("call-whoami")
    assert whoami["state"] == "ok", whoami
    claims = json.loads(whoami["body"])
    assert claims["sub"] == "carol@example.com"
    assert claims["iss"] == site.issuer.issuer

    # The claims panel decoded the same token in the page, and says it is unverified.
    assert json.loads(console.text("jwt-payload"))["sub"] == "carol@example.com"
    assert "unverified" in console.text("claims-title").lower()
    assert "without" in console.text("claims-panel")

    # The requests really crossed origins: the API saw the console's Origin.
    got = site.api_log.requests("GET", "/api/whoami")
    assert got and got[-1].origin == site.console.url and got[-1].authorization
    assert got[-1].headers["access-control-allow-origin"] == site.console.url

    shot = tmp_path / "console.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000


def test_allowed_origin_reads_the_401_body_and_challenge(
    site: Site, browser: Any, tmp_path: Path
) -> None:
    console = Console(browser, site.console.url, site.api.url)
    console.paste_token(site.issuer.mint(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200))
    assert "expired" in console.text("token-summary")

    answer = console.call("call-whoami")
    assert answer["state"] == "error", answer
    assert answer["status"].startswith("401 ")
    assert json.loads(answer["body"])["error"] == "invalid_token"
    # WWW-Authenticate is readable only because the API exposes it (RFC 6750 §3).
    assert answer["headers"]["www-authenticate"].startswith(
        'Bearer realm="api", error="invalid_token"'
    )
    browser.save_screenshot(str(tmp_path / "console-401.png"))

    garbage = page_fetch(browser, f"{site.api.url}/api/whoami", "not-a-token")
    assert not garbage["rejected"], garbage
    assert garbage["status"] == 401
    assert json.loads(garbage["body"])["error"] == "invalid_token"
    assert garbage["wwwAuthenticate"].startswith('Bearer realm="api", error="invalid_token"')


def test_origin_not_allowed_gets_a_network_error(site: Site, browser: Any, tmp_path: Path) -> None:
    console = Console(browser, site.elsewhere.url, site.api.url)
    console.paste_token(site.issuer.mint())

    answer = console.call("call-whoami")
    assert answer["state"] == "network-error", answer
    assert "TypeError" in answer["status"]
    assert site.elsewhere.url in answer["body"]  # tells the developer which origin to allow
    browser.save_screenshot(str(tmp_path / "console-blocked.png"))

    # A simple GET (no preflight) reaches the API, but the browser withholds the
    # answer because it carries no Access-Control-Allow-Origin.
    path = f"/api/hello?from=elsewhere-{uuid.uuid4().hex}"
    result = page_fetch(browser, site.api.url + path)
    assert result["rejected"] and result["name"] == "TypeError", result
    (seen,) = site.api_log.requests("GET", path)
    assert seen.origin == site.elsewhere.url and seen.status == 200
    assert "access-control-allow-origin" not in seen.headers

    # With a token the browser asks first; the refused preflight stops the GET.
    path = f"/api/whoami?from=elsewhere-{uuid.uuid4().hex}"
    result = page_fetch(browser, site.api.url + path, site.issuer.mint())
    assert result["rejected"] and result["name"] == "TypeError", result
    (preflight,) = site.api_log.requests("OPTIONS", path)
    assert preflight.status == 403
    assert "access-control-allow-origin" not in preflight.headers
    assert site.api_log.requests("GET", path) == []


def test_preflight_needs_no_token_and_is_cached(site: Site, browser: Any) -> None:
    Console(browser, site.console.url, site.api.url)
    token = site.issuer.mint()
    # A fresh URL: the browser's preflight cache is keyed by origin and URL.
    path = f"/api/whoami?probe={uuid.uuid4().hex}"
    url = site.api.url + path

    for _ in range(3):
        result = page_fetch(browser, url, token)
        assert result["status"] == 200, result

    (preflight,) = site.api_log.requests("OPTIONS", path)
    assert not preflight.authorization  # browsers never send credentials on a preflight
    assert "authorization" in (preflight.request_headers or "").lower()
    assert preflight.status == 204
    assert preflight.headers["access-control-max-age"] == "600"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()

    # Past Chromium's default preflight lifetime, only Access-Control-Max-Age keeps it.
    time.sleep(PAST_DEFAULT_PREFLIGHT_CACHE)
    assert page_fetch(browser, url, token)["status"] == 200
    assert len(site.api_log.requests("OPTIONS", path)) == 1
    assert len(site.api_log.requests("GET", path)) == 4


# -- DPoP from a browser: a non-extractable WebCrypto key ----------------------------------

MAKE_KEY = """
const done = arguments[arguments.length - 1];
crypto.subtle.generateKey({name: "ECDSA", namedCurve: "P-256"}, false, ["sign", "verify"])
  .then(async (pair) => {
    window.dpopKeys = pair;  // a CryptoKey cannot leave the page, and this one cannot be exported
    const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
    done({jwk: {kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y},
          extractable: pair.privateKey.extractable});
  }, (e) => done({error: String(e)}));
"""

DPOP_FETCH = """
const [url, token, done] = arguments;
const utf8 = new TextEncoder();
const b64url = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)))
  .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
async function proof(nonce) {
  const jwk = await crypto.subtle.exportKey("jwk", window.dpopKeys.publicKey);
  const header = {typ: "dpop+jwt", alg: "ES256",
                  jwk: {kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y}};
  const claims = {jti: crypto.randomUUID(), htm: "GET", htu: url,
                  iat: Math.floor(Date.now() / 1000),
                  ath: b64url(await crypto.subtle.digest("SHA-256", utf8.encode(token)))};
  if (nonce) claims.nonce = nonce;
  const input = b64url(utf8.encode(JSON.stringify(header))) + "."
    + b64url(utf8.encode(JSON.stringify(claims)));
  // WebCrypto's ECDSA signature is r || s, the form JWS uses (RFC 7518 §3.4).
  const signature = await crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"},
                                             window.dpopKeys.privateKey, utf8.encode(input));
  return input + "." + b64url(signature);
}
async function call(nonce) {
  const r = await fetch(url, {mode: "cors", credentials: "omit",
                              headers: {Authorization: "DPoP " + token, DPoP: await proof(nonce)}});
  return {status: r.status, body: await r.text(),
          wwwAuthenticate: r.headers.get("WWW-Authenticate"),
          nonce: r.headers.get("DPoP-Nonce")};
}
(async () => {
  const first = await call(null);
  // RFC 9449 §9: sign a new proof with the nonce the API sent, and try again once.
  const retry = first.status === 401 && first.nonce ? await call(first.nonce) : null;
  done({first, retry});
})().catch((e) => done({error: String(e)}));
"""


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without spaces."""
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    return b64url(hashlib.sha256(canonical.encode()).digest())


def browser_dpop_key(browser: Any, page_origin: str) -> str:
    """Make a non-extractable ES256 key in a page of ``page_origin``; its jkt."""
    browser.get(f"{page_origin}/console/")
    made = browser.execute_async_script(MAKE_KEY)
    assert "error" not in made, made
    assert made["extractable"] is False
    return jwk_thumbprint(made["jwk"])


def test_a_page_calls_whoami_with_dpop(site: Site, browser: Any) -> None:
    jkt = browser_dpop_key(browser, site.console.url)
    token = site.issuer.mint(sub="dora@example.com", cnf={"jkt": jkt})
    url = f"{site.api.url}/api/whoami"

    result = browser.execute_async_script(DPOP_FETCH, url, token)
    assert "error" not in result, result
    first = result["first"]
    assert first["status"] == 200, first
    claims = json.loads(first["body"])
    assert claims["sub"] == "dora@example.com" and claims["cnf"] == {"jkt": jkt}
    assert result["retry"] is None  # no nonce needed here

    preflight = site.api_log.requests("OPTIONS", "/api/whoami")[-1]
    assert "dpop" in preflight.headers["access-control-allow-headers"].lower()
    seen = site.api_log.requests("GET", "/api/whoami")[-1]
    assert seen.origin == site.console.url and seen.status == 200

    # The same token replayed as a bearer token by someone without the key is refused.
    stolen = page_fetch(browser, url, token)
    assert stolen["status"] == 401, stolen
    assert stolen["wwwAuthenticate"].startswith('Bearer realm="api", error="invalid_token"')


@pytest.fixture(scope="module")
def nonce_api(site: Site) -> Iterator[str]:
    """A second API that requires DPoP nonces, allowing the console's origin."""
    sock = listening_socket()
    app = main(
        {},
        **{
            "okta.issuer": site.issuer.issuer,
            "okta.audience": site.issuer.audience,
            "okta.http_timeout": "2",
            "okta.dpop_nonce": "true",
            "okta.cors_allowed_origins": site.console.url,
        },
    )
    served = Served(app, sock)
    yield served.url
    served.close()


def test_a_page_retries_with_the_nonce_it_was_given(
    site: Site, browser: Any, nonce_api: str
) -> None:
    jkt = browser_dpop_key(browser, site.console.url)
    token = site.issuer.mint(cnf={"jkt": jkt})

    result = browser.execute_async_script(DPOP_FETCH, f"{nonce_api}/api/whoami", token)
    assert "error" not in result, result
    first, retry = result["first"], result["retry"]
    # The page could read the error, its challenge and the nonce across origins.
    assert first["status"] == 401 and json.loads(first["body"])["error"] == "use_dpop_nonce"
    assert first["wwwAuthenticate"].startswith('DPoP realm="api", algs="')
    assert 'error="use_dpop_nonce"' in first["wwwAuthenticate"]
    assert first["nonce"]
    assert retry is not None and retry["status"] == 200, retry
    assert json.loads(retry["body"])["cnf"] == {"jkt": jkt}


METADATA_FETCH = """
const [url, withHeader, done] = arguments;
// An MCP client sends its protocol version, which makes the browser ask first.
const headers = withHeader ? {"MCP-Protocol-Version": "2025-06-18"} : {};
fetch(url, {headers, mode: "cors", credentials: "omit"}).then(
  async (r) => done({rejected: false, status: r.status, body: await r.text()}),
  (e) => done({rejected: true, name: e.name, message: e.message}));
"""


def test_any_origin_reads_the_protected_resource_metadata(site: Site, browser: Any) -> None:
    # RFC 9728: a browser client finds the authorization server before it has a
    # token, from an origin the API need not list.
    metadata = f"{site.api.url}/.well-known/oauth-protected-resource"
    browser.get(f"{site.elsewhere.url}/console/")
    for with_header in (False, True):
        got = browser.execute_async_script(METADATA_FETCH, metadata, with_header)
        assert not got["rejected"], got
        assert got["status"] == 200
        document = json.loads(got["body"])
        assert document["resource"] == site.api.url
        assert document["authorization_servers"] == [site.issuer.issuer]
    [preflight] = site.api_log.requests("OPTIONS", "/.well-known/oauth-protected-resource")
    assert preflight.origin == site.elsewhere.url
    assert preflight.request_headers == "mcp-protocol-version"
    assert preflight.status == 204
    # The API itself stays closed to that origin.
    assert page_fetch(browser, f"{site.api.url}/api/hello")["rejected"]
