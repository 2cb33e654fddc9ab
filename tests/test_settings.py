from __future__ import annotations

import pytest
from pyramid.exceptions import ConfigurationError

from okta_pyramid.settings import OktaSettings, is_loopback_host, parse_settings

ISSUER = "https://dev-123456.okta.com/oauth2/default"


def parse(**values: str) -> OktaSettings:
    return parse_settings({"okta.issuer": ISSUER, **{f"okta.{k}": v for k, v in values.items()}})


def test_defaults() -> None:
    settings = parse()
    assert settings == OktaSettings(issuer=ISSUER)
    assert settings.audiences == ("api://default",)
    assert settings.leeway == 60
    assert settings.http_timeout == 5
    assert settings.jwks_refetch_cooldown == 30
    assert settings.protect_all is True
    assert settings.cors_allowed_origins == ()


def test_values_are_converted() -> None:
    settings = parse(audience="api://a  api://b", client_ids="c1\nc2", leeway="0",
                     http_timeout="2.5", jwks_refetch_cooldown="0", protect_all="false",
                     cors_allowed_origins="https://app.example.com http://localhost:3000")
    assert settings.audiences == ("api://a", "api://b")
    assert settings.client_ids == ("c1", "c2")
    assert settings.leeway == 0
    assert settings.http_timeout == 2.5
    assert settings.jwks_refetch_cooldown == 0
    assert settings.protect_all is False
    assert settings.cors_allowed_origins == ("https://app.example.com", "http://localhost:3000")


@pytest.mark.parametrize("issuer", [
    "http://localhost:6543/oauth2/default",
    "http://127.0.0.1:8080/oauth2/default",
    "http://127.5.6.7/oauth2/default",
    "http://[::1]:6543/oauth2/default",
    "https://example.com/oauth2/aus1",
])
def test_accepted_issuers(issuer: str) -> None:
    assert parse_settings({"okta.issuer": issuer}).issuer == issuer


@pytest.mark.parametrize(("values", "key"), [
    ({"okta.issuer": ""}, "okta.issuer"),
    ({}, "okta.issuer"),
    ({"okta.issuer": "http://dev-123456.okta.com/oauth2/default"}, "okta.issuer"),
    ({"okta.issuer": "http://10.0.0.1/oauth2/default"}, "okta.issuer"),
    ({"okta.issuer": "dev-123456.okta.com/oauth2/default"}, "okta.issuer"),
    ({"okta.issuer": "ftp://example.com/x"}, "okta.issuer"),
    ({"okta.issuer": "https://user:pw@example.com/x"}, "okta.issuer"),
    ({"okta.issuer": "https://example.com/x?y=1"}, "okta.issuer"),
    ({"okta.issuer": ISSUER, "okta.leeway": "301"}, "okta.leeway"),
    ({"okta.issuer": ISSUER, "okta.leeway": "-1"}, "okta.leeway"),
    ({"okta.issuer": ISSUER, "okta.leeway": "1.5"}, "okta.leeway"),
    ({"okta.issuer": ISSUER, "okta.leeway": "soon"}, "okta.leeway"),
    ({"okta.issuer": ISSUER, "okta.http_timeout": "0"}, "okta.http_timeout"),
    ({"okta.issuer": ISSUER, "okta.http_timeout": "nan"}, "okta.http_timeout"),
    ({"okta.issuer": ISSUER, "okta.http_timeout": "61"}, "okta.http_timeout"),
    ({"okta.issuer": ISSUER, "okta.jwks_refetch_cooldown": "-5"}, "okta.jwks_refetch_cooldown"),
    ({"okta.issuer": ISSUER, "okta.protect_all": "maybe"}, "okta.protect_all"),
    ({"okta.issuer": ISSUER, "okta.cors_allowed_origins": "https://a.example.com/path"},
     "okta.cors_allowed_origins"),
    ({"okta.issuer": ISSUER, "okta.cors_allowed_origins": "app.example.com"},
     "okta.cors_allowed_origins"),
    ({"okta.issuer": ISSUER, "okta.cors_allowed_origins": "https://App.example.com"},
     "okta.cors_allowed_origins"),
    ({"okta.issuer": ISSUER, "okta.cors_max_age": "-1"}, "okta.cors_max_age"),
    ({"okta.issuer": ISSUER, "okta.realm": 'a"b'}, "okta.realm"),
])
def test_wrong_values_name_the_key(values: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_settings(values)
    assert str(info.value).startswith(key + ":")


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True), ("127.255.0.9", True),
    ("::1", True), ("localhost.example.com", False), ("10.0.0.1", False),
    ("example.com", False), ("", False), (None, False),
])
def test_is_loopback_host(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
