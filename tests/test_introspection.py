"""Introspection in the add-on: the ``require_active_token`` view option,
``okta.introspect_all``, opaque tokens, the settings, and the demo's live views,
against the loopback issuer's real ``/v1/introspect``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.security import NO_PERMISSION_REQUIRED

from okta_pyramid.settings import parse_settings

from .helpers import DPoPClient, bearer, webtest_app
from .issuer import DROP, LoopbackIssuer

INTROSPECT = "/oauth2/default/v1/introspect"


@pytest.fixture
def live_settings(issuer: LoopbackIssuer) -> dict[str, str]:
    """``okta.*`` extras that turn introspection on (basic authentication), opaque
    tokens included."""
    return {
        "issuer": f"{issuer.issuer} opaque=true",
        "introspection_client_id": issuer.CLIENT_ID,
        "introspection_client_secret": issuer.CLIENT_SECRET,
    }


def _views(config: Configurator) -> webtest.TestApp:
    """A live view, the same view without the option, and a public one."""

    def claims(request: Any) -> dict[str, Any]:
        return request.identity.claims

    config.add_route("live", "/live")
    config.add_route("local", "/local")
    config.add_route("public", "/public")
    config.add_route("principals", "/principals")
    config.add_view(
        lambda request: request.identity.__principals__(), route_name="principals", renderer="json"
    )
    config.add_view(claims, route_name="live", renderer="json", require_active_token=True)
    config.add_view(claims, route_name="local", renderer="json")
    config.add_view(
        lambda request: {"ok": True},
        route_name="public",
        renderer="json",
        permission=NO_PERMISSION_REQUIRED,
    )
    return webtest_app(config)


@pytest.fixture
def live_app(
    make_config: Callable[..., Configurator], live_settings: dict[str, str]
) -> webtest.TestApp:
    return _views(make_config(**live_settings))


def introspected(issuer: LoopbackIssuer) -> int:
    return issuer.hits[INTROSPECT]


# -- the view option --------------------------------------------------------------


def test_a_live_view_asks_the_issuer_and_a_local_view_does_not(
    live_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    token = issuer.mint()
    assert live_app.get("/local", headers=bearer(token)).json["sub"] == "alice@example.com"
    assert introspected(issuer) == 0
    assert live_app.get("/live", headers=bearer(token)).json["sub"] == "alice@example.com"
    assert introspected(issuer) == 1
    call = issuer.introspections[-1]
    assert (call.method, call.token, call.token_type_hint) == (
        "client_secret_basic",
        token,
        "access_token",
    )


def test_a_revoked_token_is_refused_on_a_live_view_only(
    make_config: Callable[..., Configurator], live_settings: dict[str, str], issuer: LoopbackIssuer
) -> None:
    app = _views(make_config(introspection_cache_ttl="0", **live_settings))
    token = issuer.mint()
    assert app.get("/live", headers=bearer(token)).status_int == 200
    issuer.revoke(token)
    response = app.get("/live", headers=bearer(token), status=401)
    assert response.json["error"] == "invalid_token"
    assert "not active" in response.json["error_description"]
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="api", error="invalid_token"'
    )
    # The local check cannot see a revocation: the token works until it expires.
    assert app.get("/local", headers=bearer(token)).status_int == 200


@pytest.mark.parametrize("read_before", [False, True], ids=["after", "before-and-after"])
def test_a_token_a_live_view_refused_has_no_claims(
    make_config: Callable[..., Configurator],
    live_settings: dict[str, str],
    issuer: LoopbackIssuer,
    read_before: bool,
) -> None:
    # pyramid_jwt's request.jwt_claims is {} for a token that is refused, also when
    # it passed the local check and introspection refused it, and also for code that
    # read it before the view (a tween) and reads it again once answered.
    from pyramid.events import NewResponse

    seen: list[dict[str, Any]] = []
    config = make_config(introspection_cache_ttl="0", **live_settings)
    config.add_subscriber(lambda event: seen.append(event.request.jwt_claims), NewResponse)
    if read_before:
        config.add_tween("tests.test_introspection.claims_reading_tween")
    app = _views(config)
    token = issuer.mint()
    app.get("/live", headers=bearer(token))
    assert seen[-1]["sub"] == "alice@example.com"
    issuer.revoke(token)
    app.get("/live", headers=bearer(token), status=401)
    assert seen[-1] == {}
    app.get("/local", headers=bearer(token))  # the local check alone: claims as ever
    assert seen[-1]["sub"] == "alice@example.com"


def claims_reading_tween(handler: Callable[..., Any], registry: Any) -> Callable[..., Any]:
    """Reads request.jwt_claims before the view runs (see the test above)."""

    def tween(request: Any) -> Any:
        request.jwt_claims  # noqa: B018 - reified now, before any view
        return handler(request)

    return tween


def test_a_cached_answer_hides_a_revocation_for_at_most_the_ttl(
    make_config: Callable[..., Configurator],
    live_settings: dict[str, str],
    issuer: LoopbackIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _views(make_config(introspection_cache_ttl="30", **live_settings))
    introspector = app.app.registry.okta.request_verifier.tokens.introspector
    now = [1_000_000.0]
    monkeypatch.setattr(introspector, "clock", lambda: now[0])
    token = issuer.mint()
    assert app.get("/live", headers=bearer(token)).status_int == 200
    issuer.revoke(token)
    now[0] += 29
    assert app.get("/live", headers=bearer(token)).status_int == 200
    assert introspected(issuer) == 1
    now[0] += 2
    assert app.get("/live", headers=bearer(token), status=401).json["error"] == "invalid_token"
    assert introspected(issuer) == 2


def test_a_live_view_without_a_token_is_challenged(
    live_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    response = live_app.get("/live", status=401)
    assert response.json["error"] == "unauthorized"
    assert introspected(issuer) == 0


def test_a_live_view_checks_the_permission_before_asking_the_issuer(
    make_config: Callable[..., Configurator], live_settings: dict[str, str], issuer: LoopbackIssuer
) -> None:
    config = make_config(**live_settings)
    config.add_route("admin", "/admin")
    config.add_view(
        lambda request: {},
        route_name="admin",
        renderer="json",
        permission="nobody.has.this",
        require_active_token=True,
    )
    app = webtest_app(config)
    assert (
        app.get("/admin", headers=bearer(issuer.mint()), status=403).json["error"]
        == "insufficient_scope"
    )
    assert introspected(issuer) == 0


def test_an_invalid_jwt_is_refused_before_the_issuer_is_asked(
    live_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    assert (
        live_app.get("/live", headers=bearer(issuer.mint(aud="api://other")), status=401).json[
            "error"
        ]
        == "invalid_token"
    )
    assert introspected(issuer) == 0


@pytest.mark.parametrize("mode", ["error", "garbage", "unauthorized", "redirect"])
def test_introspection_failure_is_503_on_live_views_and_nothing_else(
    live_app: webtest.TestApp, issuer: LoopbackIssuer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.introspection_mode = mode
    token = issuer.mint()
    with caplog.at_level(logging.DEBUG, logger="okta_pyramid"):
        response = live_app.get("/live", headers=bearer(token), status=503)
        again = live_app.get("/live", headers=bearer(token), status=503)
    assert response.json["error"] == "temporarily_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert "WWW-Authenticate" not in response.headers
    assert again.json["error"] == "temporarily_unavailable"
    # Views that need no live token keep working.
    assert live_app.get("/local", headers=bearer(token)).status_int == 200
    assert live_app.get("/public").status_int == 200
    # One warning for the incident, and never the token.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert all(
        token not in r.getMessage() and issuer.CLIENT_SECRET not in r.getMessage()
        for r in caplog.records
    )


def test_an_opaque_token_during_an_incident_is_503_logged_once(
    live_app: webtest.TestApp, issuer: LoopbackIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.introspection_mode = "error"
    tokens = [issuer.opaque() for _ in range(3)]
    with caplog.at_level(logging.DEBUG, logger="okta_pyramid"):
        for token in tokens:
            response = live_app.get("/local", headers=bearer(token), status=503)
            assert response.json["error"] == "temporarily_unavailable"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert not any(token in r.getMessage() for r in caplog.records for token in tokens)


def test_a_dpop_bound_jwt_on_a_live_view(live_app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    client = DPoPClient(issuer)
    url = "http://localhost/live"
    assert live_app.get("/live", headers=client.headers(url)).status_int == 200
    assert issuer.introspections[-1].token == client.token
    # The issuer binds the token to another key than its cnf.jkt says: refused.
    other = DPoPClient(issuer)
    # (An answer with no jti: one with another jti would describe another token.)
    issuer.introspection_answer = issuer.introspected(
        issuer.claims(cnf={"jkt": other.jkt}, jti=DROP)
    )
    client = DPoPClient(issuer)
    refused = live_app.get("/live", headers=client.headers(url), status=401)
    assert refused.json["error"] == "invalid_token"
    assert "another key" in refused.json["error_description"]


def test_an_opaque_dpop_bound_token_needs_its_proof(
    live_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    client = DPoPClient(issuer)
    token = issuer.opaque(cnf={"jkt": client.jkt})
    url = "http://localhost/local"
    assert live_app.get("/local", headers=client.headers(url, token=token)).status_int == 200
    # RFC 9449 §7.2: bound, so never a bearer token; a proof by another key fails.
    assert (
        live_app.get("/local", headers=bearer(token), status=401).json["error"] == "invalid_token"
    )
    stranger = DPoPClient(issuer)
    assert (
        live_app.get("/local", headers=stranger.headers(url, token=token), status=401).json["error"]
        == "invalid_dpop_proof"
    )


# -- okta.introspect_all ------------------------------------------------------------


def test_introspect_all_makes_every_protected_view_live(
    make_config: Callable[..., Configurator], live_settings: dict[str, str], issuer: LoopbackIssuer
) -> None:
    app = _views(make_config(introspect_all="true", introspection_cache_ttl="0", **live_settings))
    token = issuer.mint()
    issuer.revoke(token)
    assert app.get("/local", headers=bearer(token), status=401).json["error"] == "invalid_token"
    # A public view reads no token, and asks nobody.
    assert app.get("/public", headers=bearer(token)).status_int == 200
    assert introspected(issuer) == 1


def test_a_view_may_opt_out_of_introspect_all(
    make_config: Callable[..., Configurator], live_settings: dict[str, str], issuer: LoopbackIssuer
) -> None:
    config = make_config(introspect_all="true", **live_settings)
    config.add_route("fast", "/fast")
    config.add_view(
        lambda request: {}, route_name="fast", renderer="json", require_active_token=False
    )
    app = webtest_app(config)
    token = issuer.mint()
    issuer.revoke(token)
    assert app.get("/fast", headers=bearer(token)).status_int == 200
    assert introspected(issuer) == 0


def test_a_live_view_without_introspection_stops_start_up(
    make_config: Callable[..., Configurator],
) -> None:
    config = make_config()
    config.add_route("live", "/live")
    config.add_view(
        lambda request: {}, route_name="live", renderer="json", require_active_token=True
    )
    with pytest.raises(ConfigurationError, match="okta.introspection_client_id"):
        config.commit()


# -- opaque tokens ---------------------------------------------------------------------


def test_an_opaque_token_is_judged_by_introspection_on_any_protected_view(
    live_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    token = issuer.opaque(
        sub="bob@example.com",
        scp=["orders:read", "openid"],
        cid="0oa-opaque-client",
        groups=["Admins"],
    )
    claims = live_app.get("/local", headers=bearer(token)).json
    assert claims["sub"] == "bob@example.com" and "active" not in claims
    assert claims["scope"] == "orders:read openid"
    principals = live_app.get("/principals", headers=bearer(token)).json
    assert introspected(issuer) == 1  # the answer is cached
    assert {
        "user:bob@example.com",
        "client:0oa-opaque-client",
        "scope:orders:read",
        "group:Admins",
        "token:bearer",
    } <= set(principals)
    # An inactive one is refused.
    other = issuer.opaque()
    issuer.revoke(other)
    assert (
        live_app.get("/local", headers=bearer(other), status=401).json["error"] == "invalid_token"
    )


def test_an_answer_that_is_not_strict_json_is_503_never_500(
    live_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    issuer.introspection_answer = (
        b'{"active": true, "iss": "%s", "aud": "%s", '
        b'"sub": "alice@example.com", "weight": NaN}'
        % (issuer.issuer.encode(), issuer.audience.encode())
    )
    for path in ("/local", "/principals"):
        response = live_app.get(path, headers=bearer(issuer.opaque()), status=503)
        assert response.json["error"] == "temporarily_unavailable"


def test_an_opaque_token_without_introspection_is_refused(
    app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    assert (
        app.get("/api/whoami", headers=bearer(issuer.opaque()), status=401).json["error"]
        == "invalid_token"
    )
    assert introspected(issuer) == 0


def test_opaque_tokens_are_refused_without_a_call_unless_the_line_says_opaque(
    make_config: Callable[..., Configurator], issuer: LoopbackIssuer, live_settings: dict[str, str]
) -> None:
    # Okta's custom authorization servers issue JWTs: with introspection on and one
    # issuer, a token that is not one is still refused locally, never looked up.
    app = _views(make_config(**{**live_settings, "issuer": issuer.issuer}))
    for path in ("/live", "/local"):
        assert (
            app.get(path, headers=bearer(issuer.opaque()), status=401).json["error"]
            == "invalid_token"
        )
    assert introspected(issuer) == 0
    assert app.get("/live", headers=bearer(issuer.mint())).status_code == 200


def test_an_opaque_token_that_is_not_a_b64token_is_a_bad_request(
    live_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    live_app.get("/local", headers={"Authorization": "Bearer abc def"}, status=400)
    assert introspected(issuer) == 0


@pytest.mark.parametrize(
    "kind",
    [
        {"token_type": "refresh_token"},
        {"token_use": "refresh_token"},  # Ory Hydra
        {"typ": "Refresh"},
        {"typ": "ID"},
    ],
)  # Keycloak
def test_an_opaque_refresh_token_does_not_open_the_api(
    live_app: webtest.TestApp, issuer: LoopbackIssuer, kind: dict[str, str]
) -> None:
    token = issuer.opaque()
    issuer.introspection_answer = {
        "active": True,
        "iss": issuer.issuer,
        "sub": "alice@example.com",
        **kind,
    }
    assert (
        live_app.get("/local", headers=bearer(token), status=401).json["error"] == "invalid_token"
    )


@pytest.mark.parametrize(
    "kind", [{"token_type": "Bearer"}, {"token_use": "access_token"}, {"typ": "Bearer"}, {}]
)
def test_an_opaque_access_token_opens_the_api(
    live_app: webtest.TestApp, issuer: LoopbackIssuer, kind: dict[str, str]
) -> None:
    token = issuer.opaque()
    issuer.introspection_answer = {
        "active": True,
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "sub": "alice@example.com",
        **kind,
    }
    assert live_app.get("/local", headers=bearer(token)).json["sub"] == "alice@example.com"


# -- private_key_jwt through the settings ----------------------------------------------


@pytest.mark.parametrize("kty", ["RSA", "EC"])
def test_private_key_jwt_from_a_pem_file(
    make_config: Callable[..., Configurator], issuer: LoopbackIssuer, tmp_path: Path, kty: str
) -> None:
    client = issuer.add_key_client(kty=kty)
    pem = tmp_path / "client.pem"
    pem.write_bytes(client.pem)
    app = _views(
        make_config(
            introspection_client_id=client.client_id,
            introspection_auth_method="private_key_jwt",
            introspection_private_key=str(pem),
            introspection_key_id=client.kid,
        )
    )
    assert app.get("/live", headers=bearer(issuer.mint())).status_int == 200
    call = issuer.introspections[-1]
    assert call.method == "private_key_jwt", call.reason
    assert call.assertion_claims is not None and call.assertion_header is not None
    assert call.assertion_claims["aud"] == issuer.introspection_endpoint
    assert call.assertion_header["kid"] == client.kid


def test_client_secret_post(
    make_config: Callable[..., Configurator], issuer: LoopbackIssuer
) -> None:
    app = _views(
        make_config(
            introspection_client_id=issuer.CLIENT_ID,
            introspection_auth_method="client_secret_post",
            introspection_client_secret=issuer.CLIENT_SECRET,
        )
    )
    assert app.get("/live", headers=bearer(issuer.mint())).status_int == 200
    assert issuer.introspections[-1].method == "client_secret_post"


def test_a_wrong_secret_is_503_and_the_log_names_the_setting(
    make_config: Callable[..., Configurator],
    issuer: LoopbackIssuer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _views(
        make_config(
            introspection_client_id=issuer.CLIENT_ID, introspection_client_secret="not-the-secret"
        )
    )
    with caplog.at_level(logging.WARNING, logger="okta_pyramid"):
        app.get("/live", headers=bearer(issuer.mint()), status=503)
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "introspection client id" in text and "not-the-secret" not in text


# -- settings -----------------------------------------------------------------------------

ISSUER = "https://dev-123456.okta.com/oauth2/default"


def _parse(**extra: str) -> Any:
    return parse_settings({"okta.issuer": ISSUER, **{f"okta.{k}": v for k, v in extra.items()}})


def test_introspection_is_off_by_default() -> None:
    assert _parse().introspection is None


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"introspection_client_secret": "x" * 20}, "okta.introspection_client_secret"),
        ({"introspect_all": "true"}, "okta.introspect_all"),
        ({"introspection_auth_method": "private_key_jwt"}, "okta.introspection_auth_method"),
        ({"introspection_private_key": "/k.pem"}, "okta.introspection_private_key"),
        ({"introspection_client_id": "0oa1"}, "okta.introspection_client_secret"),
        (
            {
                "introspection_client_id": "0oa1",
                "introspection_auth_method": "tls_client_auth",
                "introspection_client_secret": "s",
            },
            "okta.introspection_auth_method",
        ),
        (
            {"introspection_client_id": "0oa1", "introspection_auth_method": "private_key_jwt"},
            "okta.introspection_private_key",
        ),
        (
            {
                "introspection_client_id": "0oa1",
                "introspection_auth_method": "private_key_jwt",
                "introspection_private_key": "/nonexistent/key.pem",
            },
            "okta.introspection_private_key",
        ),
        (
            {
                "introspection_client_id": "0oa1",
                "introspection_client_secret": "s",
                "introspection_private_key": "/k.pem",
            },
            "okta.introspection_private_key",
        ),
        (
            {
                "introspection_client_id": "0oa1",
                "introspection_client_secret": "s",
                "introspection_cache_ttl": "-1",
            },
            "okta.introspection_cache_ttl",
        ),
        (
            {
                "introspection_client_id": "0oa1",
                "introspection_client_secret": "s",
                "introspection_cache_ttl": "3601",
            },
            "okta.introspection_cache_ttl",
        ),
        (
            {"introspection_client_id": "two ids", "introspection_client_secret": "s"},
            "okta.introspection_client_id",
        ),
    ],
)
def test_wrong_introspection_settings_stop_start_up(extra: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        _parse(**extra)
    assert str(info.value).startswith(key + ":")


def test_a_private_key_jwt_secret_is_refused(tmp_path: Path, issuer: LoopbackIssuer) -> None:
    pem = tmp_path / "k.pem"
    pem.write_bytes(issuer.add_key_client().pem)
    with pytest.raises(ConfigurationError, match="^okta.introspection_client_secret:"):
        _parse(
            introspection_client_id="0oa1",
            introspection_auth_method="private_key_jwt",
            introspection_private_key=str(pem),
            introspection_client_secret="s3cret!",
        )


def test_a_file_that_is_not_a_key_is_refused_without_quoting_it(tmp_path: Path) -> None:
    pem = tmp_path / "k.pem"
    pem.write_text("-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigurationError) as info:
        _parse(
            introspection_client_id="0oa1",
            introspection_auth_method="private_key_jwt",
            introspection_private_key=str(pem),
        )
    assert str(info.value).startswith("okta.introspection_private_key:")
    assert "TOPSECRETMATERIAL" not in str(info.value)


def test_the_secret_is_never_in_the_settings_repr() -> None:
    settings = _parse(
        introspection_client_id="0oa1", introspection_client_secret="very-secret-value"
    )
    assert "very-secret-value" not in repr(settings)
    assert settings.introspection.client_secret == "very-secret-value"
    assert settings.introspection.cache_ttl == 30


# -- the endpoint --------------------------------------------------------------------


def test_the_endpoint_may_be_given_where_the_metadata_names_none(
    make_config: Callable[..., Configurator], live_settings: dict[str, str], issuer: LoopbackIssuer
) -> None:
    # Ory Hydra serves introspection on its admin port and names it nowhere.
    issuer.metadata_overrides = {"introspection_endpoint": None}
    token = issuer.mint()
    without = _views(make_config(**live_settings))
    without.get("/live", headers=bearer(token), status=503)
    given = _views(
        make_config(introspection_endpoint=issuer.introspection_endpoint, **live_settings)
    )
    assert given.get("/live", headers=bearer(token)).json["sub"] == "alice@example.com"
    assert introspected(issuer) == 1


@pytest.mark.parametrize(
    "issuers, endpoint, message",
    [
        (
            "https://a.example.com/oauth2/x",
            "http://admin.example.com/admin/oauth2/introspect",
            "must use https",
        ),
        (
            "https://a.example.com/oauth2/x\nhttps://a.example.com/oauth2/y",
            "https://a.example.com/introspect",
            "names one server's endpoint",
        ),
    ],
)
def test_the_endpoint_setting_is_checked(issuers: str, endpoint: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^okta.introspection_endpoint: .*{message}"):
        parse_settings(
            {
                "okta.issuer": issuers,
                "okta.introspection_endpoint": endpoint,
                "okta.introspection_client_id": "0oa1",
                "okta.introspection_client_secret": "s3cret",
            }
        )


# -- Okta's org authorization server ---------------------------------------------------


def test_the_org_server_is_refused_without_introspection() -> None:
    with pytest.raises(ConfigurationError, match="okta.introspection_client_id"):
        parse_settings({"okta.issuer": "https://acme.okta.com"})


def test_the_org_server_is_accepted_with_introspection_and_judged_by_it_alone() -> None:
    from okta_pyramid.judges import token_judge
    from okta_pyramid.tokens import AccessTokenVerifier, IntrospectingVerifier

    settings = parse_settings(
        {
            "okta.issuer": "https://acme.okta.com",
            "okta.introspection_client_id": "0oa1",
            "okta.introspection_client_secret": "s3cret",
        }
    )
    assert settings.org_server
    # Okta gives the org's tokens the org as audience.
    assert settings.audiences == ("https://acme.okta.com",)
    judge = token_judge(settings, AccessTokenVerifier(settings.issuer, settings.audiences))
    assert isinstance(judge, IntrospectingVerifier)
    assert judge.local is False
    assert not judge.judged_locally("a.jwt.token")


@pytest.mark.parametrize("issuer", ["https://acme.okta.com/", "https://acme.okta.com/oauth2/v1"])
def test_the_org_server_issuer_is_the_bare_org_url(issuer: str) -> None:
    with pytest.raises(ConfigurationError, match="^okta.issuer: .*write https://acme.okta.com$"):
        parse_settings(
            {
                "okta.issuer": issuer,
                "okta.introspection_client_id": "0oa1",
                "okta.introspection_client_secret": "s3cret",
            }
        )


def test_an_org_server_in_production_needs_its_audience() -> None:
    with pytest.raises(ConfigurationError, match="^okta.audience: .*https://acme.okta.com"):
        parse_settings(
            {
                "okta.issuer": "https://acme.okta.com",
                "okta.environment": "production",
                "okta.introspection_client_id": "0oa1",
                "okta.introspection_client_secret": "s3cret",
            }
        )


def test_org_server_tokens_are_introspected_even_when_they_are_jwts(
    make_config: Callable[..., Configurator],
    live_settings: dict[str, str],
    issuer: LoopbackIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loopback issuer cannot live at an okta.com host; the judge is what the
    # org setting switches, so switch it on the app built for the loopback issuer.
    app = _views(make_config(**live_settings))
    monkeypatch.setattr(app.app.registry.okta.request_verifier.tokens, "local", False)
    token = issuer.mint()
    assert app.get("/local", headers=bearer(token)).status_int == 200
    assert introspected(issuer) == 1
    # Judged by introspection already: the live view asks nothing more.
    assert app.get("/live", headers=bearer(token)).status_int == 200
    assert introspected(issuer) == 1
    issuer.revoke(token)
    assert app.app.registry.okta.request_verifier.tokens.introspector.cache is not None


def test_the_org_server_is_asked_only_about_its_own_jwts(
    make_config: Callable[..., Configurator],
    live_settings: dict[str, str],
    issuer: LoopbackIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its access tokens are JWTs; its refresh tokens are not, and introspect as
    # active: they, junk, and JWTs of other issuers are refused without a call.
    app = _views(make_config(**live_settings))
    judge = app.app.registry.okta.request_verifier.tokens
    monkeypatch.setattr(judge, "local", False)
    monkeypatch.setattr(judge, "opaque", False)
    for token in (
        issuer.opaque(),
        "a.b.c",
        issuer.mint(iss="https://other.example.com/oauth2/default"),
    ):
        response = app.get("/local", headers=bearer(token), status=401)
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert introspected(issuer) == 0
    app.get("/local", headers=bearer(issuer.mint()), status=200)
    assert introspected(issuer) == 1


def test_opaque_is_refused_on_an_org_server_line() -> None:
    with pytest.raises(ConfigurationError, match="^okta.issuer line 2: opaque=true: "):
        parse_settings(
            {
                "okta.issuer": "https://acme.okta.com/oauth2/default\n"
                "https://acme.okta.com opaque=true",
                "okta.introspection_client_id": "0oa1",
                "okta.introspection_client_secret": "s3cret",
            }
        )


# -- the demo -----------------------------------------------------------------------------


def test_the_demo_writes_need_a_live_token_when_introspection_is_on(
    make_app: Callable[..., webtest.TestApp], live_settings: dict[str, str], issuer: LoopbackIssuer
) -> None:
    app = make_app(introspection_cache_ttl="0", **live_settings)
    token = issuer.mint(scp=["messages:read", "messages:write"], groups=["Admins"])
    headers = bearer(token)
    app.post_json("/api/messages", {"text": "hello"}, headers=headers, status=201)
    app.get("/api/admin", headers=headers, status=200)
    issuer.revoke(token)
    app.post_json("/api/messages", {"text": "again"}, headers=headers, status=401)
    app.get("/api/admin", headers=headers, status=401)
    # Reading keeps the local check.
    assert [m["text"] for m in app.get("/api/messages", headers=headers).json["messages"]] == [
        "hello"
    ]
    app.get("/api/whoami", headers=headers, status=200)


def test_the_demo_without_introspection_keeps_the_local_check(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    app = make_app()
    token = issuer.mint(scp=["messages:write"])
    issuer.revoke(token)
    app.post_json("/api/messages", {"text": "hello"}, headers=bearer(token), status=201)
    assert introspected(issuer) == 0


def test_the_introspection_client_keeps_its_connection(
    make_config: Callable[..., Configurator], live_settings: dict[str, str], issuer: LoopbackIssuer
) -> None:
    app = _views(make_config(introspection_cache_ttl="0", **live_settings))
    token = issuer.mint()
    app.get("/local", headers=bearer(token))  # the keys: their own fetch
    before = issuer.connections
    for _ in range(5):
        assert app.get("/live", headers=bearer(token)).status_int == 200
    # Discovery and five calls, on one connection: no handshake per call.
    assert introspected(issuer) == 5
    assert issuer.connections - before == 1
