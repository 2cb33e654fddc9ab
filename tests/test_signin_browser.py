"""Signing a user in through the development issuer's login page, in a real browser.

The app (with its development issuer and console) is served by waitress on a
loopback port; Debian's Chromium, driven by Selenium through Debian's chromedriver:

- opens the developer console, signs in with the authorization-code flow and PKCE
  run by the page (WebCrypto), calls ``/api/whoami`` with the token (Bearer, then
  DPoP-bound), and on ``/api/sensitive``'s step-up refusal signs in again with the
  one-time code and retries;
- opens a page using Okta's own SPA SDK, ``@okta/okta-auth-js`` from npm (pinned in
  package-lock.json; ``make test`` runs ``npm ci``), served from another loopback
  port as a SPA's dev server would be: it signs in through the same login page
  (the token endpoint answering its origin with CORS, Okta's Trusted Origins) and
  calls ``/api/whoami`` across origins.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from okta_pyramid.app import main

from .browser import Served, chromium, listening_socket
from .services import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SDK_BUNDLE = ROOT / "node_modules" / "@okta" / "okta-auth-js" / "dist" / "okta-auth-js.min.js"
WAIT = 20

CLIENTS = (
    "okta-pyramid-dev  dev-secret-loopback-only  api.read\n"
    "okta-pyramid-spa  -  openid profile email offline_access api.read\n"
    "    redirect=http://127.0.0.1/console/  redirect=http://127.0.0.1/sdk/callback\n"
)


SDK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>okta-auth-js</title>
<script src="/sdk/okta-auth-js.min.js"></script></head>
<body><pre id="result">working</pre>
<script>
const API = "__API__";
const Auth = OktaAuth.OktaAuth || OktaAuth;
const auth = new Auth({
  issuer: API + "/oauth2/default",
  clientId: "okta-pyramid-spa",
  redirectUri: location.origin + "/sdk/callback",
  scopes: ["openid", "profile", "api.read"],
  pkce: true,
  tokenManager: {autoRenew: false},
  services: {autoRenew: false, autoRemove: false, syncStorage: false},
});
const show = (value) => {
  document.getElementById("result").textContent = JSON.stringify(value);
};
if (auth.isLoginRedirect()) {
  auth.token.parseFromUrl().then(async ({tokens}) => {
    const response = await fetch(API + "/api/whoami", {
      headers: {Authorization: "Bearer " + tokens.accessToken.accessToken}});
    const whoami = await response.json();
    // Silent renewal, as the SDK's token manager does it: a hidden iframe with
    // prompt=none and Okta's okta_post_message response mode.
    const renewed = (await auth.token.getWithoutPrompt()).tokens;
    const again = await fetch(API + "/api/whoami", {
      headers: {Authorization: "Bearer " + renewed.accessToken.accessToken}});
    const renewedSub = (await again.json()).sub;
    // /v1/userinfo, then revocation by the public client (okta-auth-js's signOut
    // revokes this way): the revoked token gets no more user info.
    const info = await auth.token.getUserInfo(renewed.accessToken, renewed.idToken);
    await auth.revokeAccessToken(renewed.accessToken);
    const afterRevoke = await auth.token.getUserInfo(renewed.accessToken, renewed.idToken)
      .then(() => "accepted", (error) => String(error));
    show({status: response.status, whoami, idClaims: tokens.idToken.claims,
          scopes: tokens.accessToken.scopes,
          renewed: renewed.accessToken.accessToken !== tokens.accessToken.accessToken,
          renewedStatus: again.status, renewedSub, userinfo: info, afterRevoke});
  }).catch((error) => show({error: String(error), stack: error.stack}));
} else {
  auth.token.getWithRedirect({state: "sdk-state"})
    .catch((error) => show({error: String(error)}));
}
</script></body></html>
"""


class SdkPages:
    """A SPA's dev server: the page that uses okta-auth-js and the SDK's browser
    bundle, on an origin of its own."""

    def __init__(self, api: str) -> None:
        self.page = SDK_PAGE.replace("__API__", api).encode()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path in ("/sdk/", "/sdk/callback"):
            body, kind, status = self.page, "text/html; charset=utf-8", "200 OK"
        elif path == "/sdk/okta-auth-js.min.js":
            body, kind, status = SDK_BUNDLE.read_bytes(), "text/javascript", "200 OK"
        else:
            body, kind, status = b"not found", "text/plain", "404 Not Found"
        start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]


@dataclass
class Site:
    api: Served  # the app, its development issuer and its console
    spa: Served  # the okta-auth-js page, on another origin

    @property
    def url(self) -> str:
        return self.api.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    keys = tmp_path_factory.mktemp("keys")
    api_sock, spa_sock = listening_socket(), listening_socket()
    api_url = f"http://127.0.0.1:{api_sock.getsockname()[1]}"
    spa_url = f"http://127.0.0.1:{spa_sock.getsockname()[1]}"
    app = main(
        {},
        **{
            "pyramid.includes": "okta_pyramid.devissuer",
            "okta.issuer": f"{api_url}/oauth2/default",
            "okta.audience": "api://default",
            "okta.console": "true",
            "okta.http_timeout": "2",
            "okta.dpop": "allowed",
            # The SPA calls the API across origins too.
            "okta.cors_allowed_origins": spa_url,
            "devissuer.clients": CLIENTS,
            "devissuer.keys_dir": str(keys),
        },
    )
    served = Site(Served(app, api_sock, threads=6), Served(SdkPages(api_url), spa_sock, threads=6))
    yield served
    served.api.close()
    served.spa.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def fresh(browser: Any, site: Site) -> Any:
    """The browser with no cookie or storage of the site's (a new user)."""
    # On a page under the issuer's path, where its cookies (Path=/oauth2/default/)
    # are the page's own.
    browser.get(f"{site.url}/oauth2/default/v1/keys")
    browser.delete_all_cookies()
    browser.execute_script("sessionStorage.clear(); localStorage.clear();")
    return browser


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    try:
        return WebDriverWait(driver, WAIT).until(condition)
    except Exception:
        pytest.fail(
            f"timed out waiting for {what}; at {driver.current_url}:\n"
            f"{driver.find_element(By.TAG_NAME, 'body').text[:2000]}"
        )


def text(driver: Any, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).get_attribute("textContent")


def log_in(driver: Any, username: str, groups: str = "") -> None:
    """Fill in the issuer's login page."""
    wait_for(driver, lambda d: d.find_elements(By.ID, "username"), "the login page")
    field = driver.find_element(By.ID, "username")
    field.clear()
    field.send_keys(username)
    # Both are filled in with the last user's: replace them.
    field = driver.find_element(By.ID, "groups")
    field.clear()
    field.send_keys(groups)
    driver.find_element(By.ID, "sign-in").click()


def enter_code(driver: Any) -> None:
    wait_for(driver, lambda d: d.find_elements(By.ID, "otp-code"), "the one-time code page")
    driver.find_element(By.ID, "otp").send_keys(text(driver, "otp-code"))
    driver.find_element(By.ID, "verify").click()


def call(driver: Any, button: str) -> dict[str, Any]:
    status = driver.find_element(By.ID, "status")
    seq = status.get_attribute("data-seq")
    driver.find_element(By.ID, button).click()
    wait_for(driver, lambda d: status.get_attribute("data-seq") != seq, f"{button}'s answer")
    return {"status": status.text, "body": text(driver, "body")}


def console_signed_in(driver: Any, site: Site, *, dpop: bool = False) -> None:
    driver.get(f"{site.url}/console/")
    wait_for(driver, lambda d: text(d, "redirect-uri"), "the console")
    issuer = driver.find_element(By.ID, "issuer")
    issuer.clear()
    issuer.send_keys(f"{site.url}/oauth2/default")
    if dpop:
        driver.find_element(By.ID, "use-dpop").click()
    driver.find_element(By.ID, "sign-in").click()
    log_in(driver, "alice@example.com", "admins")
    wait_for(
        driver,
        lambda d: "Signed in as alice@example.com" in text(d, "signin-status"),
        "the console to be signed in",
    )


def test_the_console_signs_in_with_pkce_and_calls_the_api(fresh: Any, site: Site, tmp_path):
    console_signed_in(fresh, site)
    # The code left the address bar once used.
    assert "code=" not in fresh.current_url
    status = text(fresh, "signin-status")
    assert "acr urn:okta:loa:1fa:pwd" in status and "refresh token held" in status
    id_claims = json.loads(text(fresh, "id-claims"))
    assert id_claims["preferred_username"] == "alice@example.com"
    answer = call(fresh, "call-whoami")
    assert answer["status"].startswith("200")
    whoami = json.loads(answer["body"])
    assert whoami["sub"] == "alice@example.com"
    assert whoami["groups"] == ["admins"]
    assert whoami["cid"] == "okta-pyramid-spa"
    first = fresh.find_element(By.ID, "token").get_property("value")
    fresh.find_element(By.ID, "refresh").click()
    wait_for(
        fresh,
        lambda d: d.find_element(By.ID, "token").get_property("value") not in ("", first),
        "the refreshed token",
    )
    assert call(fresh, "call-whoami")["status"].startswith("200")
    fresh.save_screenshot(str(tmp_path / "console-signed-in.png"))


def test_the_console_signs_in_with_dpop_bound_tokens(fresh: Any, site: Site):
    console_signed_in(fresh, site, dpop=True)
    assert "DPoP token" in text(fresh, "signin-status")
    answer = call(fresh, "call-whoami")
    assert answer["status"].startswith("200"), answer
    assert "jkt" in json.loads(answer["body"])["cnf"]


def test_okta_auth_js_signs_in_through_the_login_page(fresh: Any, site: Site, tmp_path):
    if not SDK_BUNDLE.exists():
        pytest.fail("@okta/okta-auth-js is not installed: run `npm ci` (make test does)")
    fresh.get(f"{site.spa.url}/sdk/")
    log_in(fresh, "sdk-user@example.com", "staff")
    wait_for(fresh, lambda d: text(d, "result") != "working", "okta-auth-js to finish")
    result = json.loads(text(fresh, "result"))
    fresh.save_screenshot(str(tmp_path / "okta-auth-js.png"))
    assert "error" not in result, result
    assert result["status"] == 200
    assert result["whoami"]["sub"] == "sdk-user@example.com"
    assert result["whoami"]["groups"] == ["staff"]
    assert result["idClaims"]["preferred_username"] == "sdk-user@example.com"
    assert result["scopes"] == ["openid", "profile", "api.read"]
    # The SDK renewed the tokens silently (an iframe, okta_post_message).
    assert result["renewed"] is True
    assert result["renewedStatus"] == 200
    assert result["renewedSub"] == "sdk-user@example.com"
    # userinfo names the user as the ID token does; a revoked token gets none.
    assert result["userinfo"]["sub"] == result["idClaims"]["sub"]
    assert result["userinfo"]["preferred_username"] == "sdk-user@example.com"
    assert result["afterRevoke"] != "accepted"
    # The page's origin is not the issuer's: the token request crossed origins.
    assert site.spa.url != site.api.url


def test_the_console_steps_up_when_the_api_asks_and_retries(fresh: Any, site: Site, tmp_path):
    console_signed_in(fresh, site)
    # The API's protected-resource metadata (RFC 9728) names the issuer.
    wait_for(fresh, lambda d: text(d, "resource-metadata"), "the API's metadata")
    metadata = json.loads(text(fresh, "resource-metadata"))
    assert f"{site.url}/oauth2/default" in metadata["authorization_servers"]
    # A one-factor sign-in: /api/sensitive refuses (insufficient_user_authentication);
    # the console signs in again with the acr_values and max_age asked for. The
    # issuer remembers the user, so only the one-time code is asked for.
    fresh.find_element(By.ID, "call-sensitive").click()
    enter_code(fresh)
    wait_for(
        fresh,
        lambda d: (
            "/api/sensitive" in d.find_element(By.ID, "status").text
            and d.find_element(By.ID, "status").get_attribute("data-state") != "pending"
        ),
        "the retried call",
    )
    fresh.save_screenshot(str(tmp_path / "console-step-up.png"))
    status = fresh.find_element(By.ID, "status").text
    assert status.startswith("200"), (status, text(fresh, "body"), text(fresh, "step-up"))
    assert "acr urn:okta:loa:2fa:any" in text(fresh, "signin-status")
    assert "amr pwd otp" in text(fresh, "signin-status")


def test_the_console_shows_a_step_up_refusal_it_cannot_satisfy(fresh: Any, site: Site):
    # A pasted one-factor token, and no issuer to sign in with: the refusal is shown.
    console_signed_in(fresh, site)
    fresh.find_element(By.ID, "issuer").clear()
    fresh.execute_script("document.getElementById('issuer').value = ''")
    answer = call(fresh, "call-sensitive")
    assert answer["status"].startswith("401")
    assert json.loads(answer["body"])["error"] == "insufficient_user_authentication"
    note = text(fresh, "step-up")
    assert "Step-up required" in note and "urn:okta:loa:2fa:any" in note
    assert "max_age 300 s" in note
