from __future__ import annotations

import dataclasses

import pytest
from pyramid.exceptions import ConfigurationError

from okta_pyramid.settings import (
    ISSUER_OPTIONS,
    SETTING_NAMES,
    SETTINGS,
    OktaSettings,
    is_loopback_host,
    parse_settings,
)

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
    settings = parse(
        audience="api://a  api://b",
        client_ids="c1\nc2",
        leeway="0",
        http_timeout="2.5",
        jwks_refetch_cooldown="0",
        protect_all="false",
        cors_allowed_origins="https://app.example.com http://localhost:3000",
    )
    assert settings.audiences == ("api://a", "api://b")
    assert settings.client_ids == ("c1", "c2")
    assert settings.leeway == 0
    assert settings.http_timeout == 2.5
    assert settings.jwks_refetch_cooldown == 0
    assert settings.protect_all is False
    assert settings.cors_allowed_origins == ("https://app.example.com", "http://localhost:3000")


@pytest.mark.parametrize(
    "issuer",
    [
        "http://localhost:6543/oauth2/default",
        "http://127.0.0.1:8080/oauth2/default",
        "http://127.5.6.7/oauth2/default",
        "http://[::1]:6543/oauth2/default",
        "https://example.com/oauth2/aus1",
    ],
)
def test_accepted_issuers(issuer: str) -> None:
    assert parse_settings({"okta.issuer": issuer}).issuer == issuer


@pytest.mark.parametrize(
    ("values", "key"),
    [
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
        (
            {"okta.issuer": ISSUER, "okta.cors_allowed_origins": "https://a.example.com/path"},
            "okta.cors_allowed_origins",
        ),
        (
            {"okta.issuer": ISSUER, "okta.cors_allowed_origins": "app.example.com"},
            "okta.cors_allowed_origins",
        ),
        (
            {"okta.issuer": ISSUER, "okta.cors_allowed_origins": "https://App.example.com"},
            "okta.cors_allowed_origins",
        ),
        ({"okta.issuer": ISSUER, "okta.cors_max_age": "-1"}, "okta.cors_max_age"),
        ({"okta.issuer": ISSUER, "okta.realm": 'a"b'}, "okta.realm"),
    ],
)
def test_wrong_values_name_the_key(values: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_settings(values)
    assert str(info.value).startswith(key + ":")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("localhost.example.com", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback_host(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


# -- keys ---------------------------------------------------------------------------


class Recording(dict):
    """A settings mapping that remembers which keys were read."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def test_setting_names_are_exactly_the_keys_read() -> None:
    settings = Recording({"okta.issuer": ISSUER})
    parse_settings(settings)
    assert {key for key in settings.read if key.startswith("okta.")} == SETTING_NAMES


def test_each_key_is_declared_once_in_the_table() -> None:
    names = [setting.name for setting in SETTINGS]
    assert len(names) == len(set(names))
    assert {setting.key for setting in SETTINGS} == SETTING_NAMES


def test_every_field_comes_from_the_table_or_from_the_issuers() -> None:
    # A field is a key's value as is, or what parse_settings assembles from several.
    assembled = {
        "issuer",
        "audiences",
        "client_ids",
        "required_claims",
        "org_server",
        "issuers",
        "introspection",
        "public_url_from_proxy",
    }
    from_table = {setting.name for setting in SETTINGS if setting.is_field}
    assert from_table.isdisjoint(assembled)
    assert {field.name for field in dataclasses.fields(OktaSettings)} == from_table | assembled


@pytest.mark.parametrize(
    ("values", "first"),
    [
        ({"okta.leeway": "x", "okta.http_timeout": "x"}, "okta.leeway:"),
        ({"okta.server_threads": "0", "okta.protect_all": "maybe"}, "okta.protect_all:"),
        ({"okta.issuer": "ftp://x.example.com", "okta.leeway": "x"}, "okta.issuer:"),
        (
            {"okta.environment": "staging", "okta.introspection_cache_ttl": "x"},
            "okta.introspection_",
        ),
    ],
)
def test_with_several_mistakes_the_first_checked_is_reported(
    values: dict[str, str], first: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_settings({"okta.issuer": ISSUER, **values})
    assert str(info.value).startswith(first)


@pytest.mark.parametrize(
    ("key", "closest"),
    [
        ("okta.audiance", "okta.audience"),
        ("okta.audiences", "okta.audience"),
        ("okta.client_id", "okta.client_ids"),
        ("okta.leway", "okta.leeway"),
        ("okta.Issuer", "okta.issuer"),
        ("okta.cors_origins", "okta.cors_allowed_origins"),
    ],
)
def test_an_unknown_key_is_refused_naming_the_closest(key: str, closest: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_settings({"okta.issuer": ISSUER, key: "api://orders"})
    assert str(info.value) == (f"{key}: is not a setting of okta_pyramid; did you mean {closest}?")


def test_an_unknown_key_with_no_close_one_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.zzz: is not a setting .*remove it"):
        parse_settings({"okta.issuer": ISSUER, "okta.zzz": "1"})


def test_other_prefixes_are_left_to_their_owners() -> None:
    assert (
        parse_settings(
            {"okta.issuer": ISSUER, "oktaish.x": "1", "pyramid.x": "1", "tm.attempts": "3"}
        ).issuer
        == ISSUER
    )


# -- the issuer URL -----------------------------------------------------------------


def test_an_issuer_option_with_no_close_name_lists_the_options() -> None:
    assert ISSUER_OPTIONS == ("client_ids", "require", "opaque")
    with pytest.raises(ConfigurationError) as info:
        parse_settings({"okta.issuer": f"{ISSUER} zzz=1"})
    assert str(info.value) == (
        "okta.issuer: 'zzz' is not an option of an issuer line; "
        "the options are client_ids, require, opaque"
    )


@pytest.mark.parametrize(
    "issuer",
    [
        "https://dev-123456.okta.com/oauth2/\x00default",
        "https://dev-123456.okta.com/oauth2/de\x7ffault",
    ],
)
def test_an_issuer_with_control_characters_inside_is_refused(issuer: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.issuer: must be one URL"):
        parse_settings({"okta.issuer": issuer})


def test_two_issuers_on_one_line_are_refused() -> None:
    # What follows the issuer on its line is audiences; another issuer there is a slip.
    with pytest.raises(
        ConfigurationError,
        match=r"^okta\.issuer: 'https://dev-7.okta.com/"
        r"oauth2/default' after the issuer looks "
        r"like another issuer URI",
    ):
        parse_settings({"okta.issuer": f"{ISSUER} https://dev-7.okta.com/oauth2/default"})


def test_what_follows_the_issuer_on_its_line_is_audiences() -> None:
    parsed = parse_settings({"okta.issuer": f"{ISSUER}  api://orders\tapi://orders-v2"})
    assert parsed.issuer == ISSUER
    assert parsed.audiences == ("api://orders", "api://orders-v2")


@pytest.mark.parametrize(
    "issuer",
    [
        "https://dev-123456.okta.com/oauth2/default/",
        "https://dev-123456.oktapreview.com/oauth2/aus1a2b3c4d5e6f7g8h9/",
        "https://login.example.com/oauth2/default/",  # Okta behind a custom domain
        "http://localhost:6543/oauth2/default/",
    ],
)
def test_an_okta_issuer_with_a_trailing_slash_is_refused(issuer: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_settings({"okta.issuer": issuer})
    assert str(info.value).startswith("okta.issuer: must not end with '/'")
    assert str(info.value).endswith(f"write {issuer[:-1]}")


def test_an_issuer_that_really_ends_with_a_slash_is_accepted() -> None:
    # Auth0's issuer is the tenant URL with a slash; iss carries it the same way.
    assert parse_settings({"okta.issuer": "https://tenant.auth0.com/"}).issuer == (
        "https://tenant.auth0.com/"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("okta.issuer", "https://[::1/oauth2/default"),
        ("okta.issuer", "https://[app]/oauth2/default"),
        ("okta.issuer", "https://dev-1.okta.com:99999/oauth2/default"),
        ("okta.issuer", "https://dev-1.okta.com:https/oauth2/default"),
        ("okta.cors_allowed_origins", "https://[app"),
        ("okta.cors_allowed_origins", "https://app.example.com https://app.example.com:70000"),
    ],
)
def test_an_unreadable_url_is_refused_in_one_line(key: str, value: str) -> None:
    settings = {"okta.issuer": ISSUER, key: value}
    with pytest.raises(ConfigurationError) as info:
        parse_settings(settings)
    assert str(info.value).startswith(f"{key}: is not a valid URL")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("okta.issuer", "https://admin:pw-s3cret@dev-1.okta.com/oauth2/default"),
        ("okta.issuer", "http://admin:pw-s3cret@example.com/oauth2/default"),
        ("okta.issuer", "https://admin:pw-s3cret@[::1/oauth2/default"),
        ("okta.issuer", "ftp://admin:pw-s3cret@example.com/x"),
        ("okta.cors_allowed_origins", "https://admin:pw-s3cret@app.example.com"),
        ("okta.cors_allowed_origins", "https://admin:pw-s3cret@App.example.com/path"),
    ],
)
def test_credentials_in_a_url_are_never_quoted(key: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_settings({"okta.issuer": ISSUER, key: value})
    assert str(info.value).startswith(f"{key}: ")
    assert "s3cret" not in str(info.value) and "admin" not in str(info.value)


# -- the audience in production -------------------------------------------------------


@pytest.mark.parametrize("audience", [None, "", "  "])
def test_production_needs_an_explicit_audience(audience: str | None) -> None:
    settings = {"okta.issuer": ISSUER, "okta.environment": "production"}
    if audience is not None:
        settings["okta.audience"] = audience
    with pytest.raises(
        ConfigurationError,
        match=r"^okta\.audience: is required when "
        r"okta\.environment = production",
    ):
        parse_settings(settings)


def test_production_accepts_a_named_audience() -> None:
    settings = parse_settings(
        {"okta.issuer": ISSUER, "okta.environment": "production", "okta.audience": "api://orders"}
    )
    assert settings.audiences == ("api://orders",)


def test_development_defaults_the_audience() -> None:
    assert parse_settings({"okta.issuer": ISSUER}).audiences == ("api://default",)
