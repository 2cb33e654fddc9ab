"""Step-up (RFC 9470): the ``acr_values`` and ``max_age`` view options, the demo's
``/api/sensitive``, tokens judged locally and by introspection, both schemes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.security import NO_PERMISSION_REQUIRED

from okta_pyramid.permissions import AUTHENTICATED

from .helpers import LOCAL_METADATA, DPoPClient, bearer, webtest_app
from .issuer import DROP, LoopbackIssuer

SENSITIVE = "/api/sensitive"
SENSITIVE_URL = "http://localhost" + SENSITIVE
STRONG = "urn:okta:loa:2fa:any phr phrh"
LEEWAY = 60  # the test settings' okta.leeway (the default)


def user(**claims: Any) -> dict[str, Any]:
    """A strong, recent sign-in: what /api/sensitive accepts, changed by ``claims``."""
    return {
        "acr": "urn:okta:loa:2fa:any",
        "amr": ["pwd", "otp"],
        "auth_time": int(time.time()) - 10,
        **claims,
    }


def assert_step_up(response: webtest.TestResponse, why: str, scheme: str = "Bearer") -> None:
    """A 401 that asks the client to sign the user in again (RFC 9470 §3)."""
    assert response.status_int == 401
    body = response.json
    assert body["error"] == "insufficient_user_authentication"
    assert why in body["error_description"]
    assert body["acr_values"] == STRONG and body["max_age"] == 300
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'{scheme} realm="api", ')
    assert 'error="insufficient_user_authentication"' in challenge
    assert f'acr_values="{STRONG}", max_age="300"' in challenge
    assert f'resource_metadata="{LOCAL_METADATA}"' in challenge
    assert response.headers["Cache-Control"] == "no-store"


# -- the demo's /api/sensitive --------------------------------------------------------


def test_a_strong_recent_sign_in_passes(app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    for acr in ("urn:okta:loa:2fa:any", "phr", "phrh"):
        body = app.get(SENSITIVE, headers=bearer(issuer.mint(**user(acr=acr)))).json
        assert body["acr"] == acr and body["sub"] == "alice@example.com"


def test_a_missing_acr_asks_for_a_step_up(app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    token = issuer.mint(**user(acr=DROP))
    assert_step_up(app.get(SENSITIVE, headers=bearer(token), status=401), "no acr claim")


@pytest.mark.parametrize(
    "acr", ["urn:okta:loa:1fa:any", "urn:okta:loa:1fa:pwd", "PHR", "phr ", ["phr"], 2, None]
)
def test_an_acr_not_listed_asks_for_a_step_up(
    app: webtest.TestApp, issuer: LoopbackIssuer, acr: Any
) -> None:
    token = issuer.mint(**user(acr=acr))
    response = app.get(SENSITIVE, headers=bearer(token), status=401)
    assert_step_up(response, "no acr claim" if acr is None else "not one this endpoint accepts")


def test_a_missing_auth_time_asks_for_a_step_up(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    token = issuer.mint(**user(auth_time=DROP))
    assert_step_up(app.get(SENSITIVE, headers=bearer(token), status=401), "no auth_time claim")


@pytest.mark.parametrize("auth_time", ["1700000000", True, [1], None])
def test_an_auth_time_that_is_not_a_number_asks_for_a_step_up(
    app: webtest.TestApp, issuer: LoopbackIssuer, auth_time: Any
) -> None:
    token = issuer.mint(**user(auth_time=auth_time))
    response = app.get(SENSITIVE, headers=bearer(token), status=401)
    assert response.json["error"] == "insufficient_user_authentication"


def test_an_old_sign_in_asks_for_a_step_up_past_the_leeway(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    now = int(time.time())
    within = issuer.mint(**user(auth_time=now - 300 - LEEWAY + 15))
    assert app.get(SENSITIVE, headers=bearer(within)).status_int == 200
    old = issuer.mint(**user(auth_time=now - 300 - LEEWAY - 5))
    response = app.get(SENSITIVE, headers=bearer(old), status=401)
    assert_step_up(response, "more than 300 seconds ago")


def test_an_auth_time_in_the_future_asks_for_a_step_up(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    now = int(time.time())
    skewed = issuer.mint(**user(auth_time=now + LEEWAY - 15))
    assert app.get(SENSITIVE, headers=bearer(skewed)).status_int == 200
    future = issuer.mint(**user(auth_time=now + LEEWAY + 30))
    assert_step_up(app.get(SENSITIVE, headers=bearer(future), status=401), "in the future")


def test_a_dpop_token_is_asked_in_the_dpop_challenge(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    weak = DPoPClient(issuer, **user(acr="urn:okta:loa:1fa:pwd"))
    response = app.get(SENSITIVE, headers=weak.headers(SENSITIVE_URL), status=401)
    assert_step_up(response, "not one this endpoint accepts", scheme="DPoP")
    assert 'algs="' in response.headers["WWW-Authenticate"]
    strong = DPoPClient(issuer, **user())
    assert app.get(SENSITIVE, headers=strong.headers(SENSITIVE_URL)).json["acr"] == (
        "urn:okta:loa:2fa:any"
    )


def test_a_token_of_a_client_alone_is_403_and_asks_for_no_sign_in(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    # Client credentials (Okta): sub is the client id, no uid; no sign-in can step it
    # up, so the answer must not send the client to sign a user in.
    token = issuer.mint(sub="0oa-test-client", uid=DROP)
    response = app.get(SENSITIVE, headers=bearer(token), status=403)
    assert response.json["error"] == "insufficient_user_authentication"
    assert "client alone" in response.json["error_description"]
    assert "acr_values" not in response.json and "max_age" not in response.json
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert "acr_values=" not in challenge and "max_age=" not in challenge
    # Even with claims that would pass for a user.
    dressed = issuer.mint(**user(sub="0oa-test-client", uid=DROP))
    assert app.get(SENSITIVE, headers=bearer(dressed), status=403)


def test_no_token_and_a_bad_token_are_answered_before_the_step_up(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    assert app.get(SENSITIVE, status=401).json["error"] == "unauthorized"
    expired = issuer.mint(**user(exp=1))
    assert app.get(SENSITIVE, headers=bearer(expired), status=401).json["error"] == (
        "invalid_token"
    )


def test_other_views_do_not_look_at_the_sign_in(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    token = issuer.mint(**user(acr=DROP, auth_time=DROP))
    assert app.get("/api/whoami", headers=bearer(token)).status_int == 200


def test_a_refusal_logs_the_reason_and_never_the_token(
    app: webtest.TestApp, issuer: LoopbackIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    token = issuer.mint(**user(acr="urn:okta:loa:1fa:pwd"))
    with caplog.at_level(logging.INFO, logger="okta_pyramid"):
        app.get(SENSITIVE, headers=bearer(token), status=401)
    assert "reason=insufficient_user_authentication" in caplog.text
    assert token not in caplog.text and token.split(".")[2] not in caplog.text


# -- views of an application's own ----------------------------------------------------


def _app(config: Configurator, **options: Any) -> webtest.TestApp:
    config.add_route("view", "/view")
    config.add_view(
        lambda request: {"claims": request.jwt_claims},
        route_name="view",
        renderer="json",
        permission=AUTHENTICATED,
        **options,
    )
    return webtest_app(config)


def test_acr_values_alone(make_config: Callable[..., Configurator], issuer: LoopbackIssuer) -> None:
    app = _app(make_config(), acr_values="phr phrh")
    old = issuer.mint(acr="phrh", auth_time=1)
    assert app.get("/view", headers=bearer(old)).json["claims"]["acr"] == "phrh"
    response = app.get("/view", headers=bearer(issuer.mint(acr="phrx")), status=401)
    challenge = response.headers["WWW-Authenticate"]
    assert 'acr_values="phr phrh"' in challenge and "max_age" not in challenge
    assert "max_age" not in response.json


def test_max_age_alone(make_config: Callable[..., Configurator], issuer: LoopbackIssuer) -> None:
    app = _app(make_config(), max_age=0)
    now = int(time.time())
    # Any acr, or none; a sign-in within the leeway of now.
    assert app.get("/view", headers=bearer(issuer.mint(auth_time=now))).status_int == 200
    response = app.get("/view", headers=bearer(issuer.mint(auth_time=now - LEEWAY - 5)), status=401)
    challenge = response.headers["WWW-Authenticate"]
    assert 'max_age="0"' in challenge and "acr_values" not in challenge
    assert response.json["max_age"] == 0 and "acr_values" not in response.json


def test_a_refused_request_never_reaches_the_view(
    make_config: Callable[..., Configurator], issuer: LoopbackIssuer
) -> None:
    config = make_config()
    reached: list[Any] = []
    config.add_route("view", "/view")

    def view(request: Any) -> dict[str, Any]:
        reached.append(request)
        return {}

    config.add_view(
        view,
        route_name="view",
        renderer="json",
        max_age=60,
    )
    app = webtest_app(config)
    app.get("/view", headers=bearer(issuer.mint(auth_time=1)), status=401)
    assert reached == []


@pytest.mark.parametrize(
    "options, named",
    [
        ({"acr_values": ""}, "acr_values"),
        ({"acr_values": ()}, "acr_values"),
        ({"acr_values": ("phr", "")}, "acr_values"),
        ({"acr_values": ("a b",)}, "acr_values"),
        ({"acr_values": ('x"y',)}, "acr_values"),
        ({"acr_values": 2}, "acr_values"),
        ({"max_age": -1}, "max_age"),
        ({"max_age": "300"}, "max_age"),
        ({"max_age": True}, "max_age"),
        ({"max_age": 1.5}, "max_age"),
    ],
)
def test_a_wrong_option_stops_start_up_naming_it(
    make_config: Callable[..., Configurator], options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=rf"\b{named} on view"):
        _app(make_config(), **options)


def test_a_public_view_cannot_ask_for_a_step_up(
    make_config: Callable[..., Configurator],
) -> None:
    config = make_config()
    config.add_route("view", "/view")
    config.add_view(
        lambda request: {},
        route_name="view",
        renderer="json",
        permission=NO_PERMISSION_REQUIRED,
        max_age=300,
    )
    with pytest.raises(ConfigurationError, match="the view is public"):
        webtest_app(config)


# -- tokens judged by introspection ---------------------------------------------------


@pytest.fixture
def live_config(make_config: Callable[..., Configurator], issuer: LoopbackIssuer) -> Configurator:
    return make_config(
        issuer=f"{issuer.issuer} opaque=true",
        introspection_client_id=issuer.CLIENT_ID,
        introspection_client_secret=issuer.CLIENT_SECRET,
        introspection_cache_ttl="0",
    )


def test_an_opaque_token_is_judged_by_the_answers_acr_and_auth_time(
    live_config: Configurator, issuer: LoopbackIssuer
) -> None:
    app = _app(live_config, acr_values=STRONG, max_age=300)
    strong = issuer.opaque(**user())
    assert app.get("/view", headers=bearer(strong)).status_int == 200
    weak = issuer.opaque(**user(acr="urn:okta:loa:1fa:pwd"))
    assert app.get("/view", headers=bearer(weak), status=401).json["acr_values"] == STRONG
    old = issuer.opaque(**user(auth_time=int(time.time()) - 3600))
    assert app.get("/view", headers=bearer(old), status=401).json["max_age"] == 300
    bare = issuer.opaque(**user(acr=DROP, auth_time=DROP))
    assert app.get("/view", headers=bearer(bare), status=401).status_int == 401


def test_the_step_up_is_checked_before_the_issuer_is_asked(
    live_config: Configurator, issuer: LoopbackIssuer
) -> None:
    app = _app(live_config, acr_values=STRONG, require_active_token=True)
    weak = issuer.mint(**user(acr="urn:okta:loa:1fa:pwd"))
    assert app.get("/view", headers=bearer(weak), status=401).json["acr_values"] == STRONG
    assert issuer.introspections == []
    strong = issuer.mint(**user())
    assert app.get("/view", headers=bearer(strong)).status_int == 200
    assert len(issuer.introspections) == 1
    # Then the issuer's word: a revoked token with a strong sign-in is still refused.
    issuer.revoke(strong)
    assert app.get("/view", headers=bearer(strong), status=401).json["error"] == "invalid_token"
