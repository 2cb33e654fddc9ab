from __future__ import annotations

import pytest
from pyramid.exceptions import ConfigurationError

from okta_pyramid.app import main
from okta_pyramid.app.environ import expand_settings, expand_value

ENV = {"OKTA_ISSUER": "https://example.okta.com/oauth2/default", "EMPTY": "", "PCT": "50%"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${OKTA_ISSUER}", "https://example.okta.com/oauth2/default"),
        ("${MISSING:-api://default}", "api://default"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${MISSING:-}", ""),
        ("${OKTA_ISSUER:-ignored}", "https://example.okta.com/oauth2/default"),
        ("a ${PCT} b", "a 50% b"),
        ("$${OKTA_ISSUER}", "${OKTA_ISSUER}"),
        ("no references", "no references"),
    ],
)
def test_expands_references(value: str, expected: str) -> None:
    assert expand_value("okta.x", value, ENV) == expected


@pytest.mark.parametrize("value", ["${MISSING}", "${EMPTY}"])
def test_required_variable_names_setting_and_variable(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        expand_value("okta.issuer", value, ENV)
    message = str(info.value)
    assert message.startswith("okta.issuer: ")
    assert value[2:-1] in message


@pytest.mark.parametrize(
    "value",
    [
        "$OKTA_ISSUER",
        "${OKTA_ISSUER",
        "${1X}",
        "cost $5",
        "${OKTA_ISSUER:default}",
        "${OKTA_ISSUER-x}",
    ],
)
def test_stray_dollar_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.x: "):
        expand_value("okta.x", value, ENV)


@pytest.mark.parametrize(
    ("value", "position"),
    [
        ("postgresql://app:pa$word@db/orders", 20),
        ("$", 1),
        ("ok ${OKTA_ISSUER} then $x", 24),
    ],
)
def test_a_refusal_names_the_position_never_the_value(value: str, position: int) -> None:
    with pytest.raises(ConfigurationError) as info:
        expand_value("sqlalchemy.url", value, ENV)
    message = str(info.value)
    assert message == (
        f"sqlalchemy.url: the '$' at character {position} must start "
        "${NAME} or ${NAME:-default} (or be written $$)"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # A default holding another reference: nested expansion is not supported.
        ("${A:-${OKTA_ISSUER}}", "okta.x: the default of ${A:-...} at character 1 holds a '$'"),
        ("x ${A:-$$}", "okta.x: the default of ${A:-...} at character 3 holds a '$'"),
        ("${A:-{x}", "okta.x: the default of ${A:-...} at character 1 holds a '$' or '{'"),
        # A brace left over after a reference.
        ("${B:-x}}", "okta.x: the '}' at character 8 closes no reference; remove it"),
        ("${OKTA_ISSUER}}", "okta.x: the '}' at character 15 closes no reference; remove it"),
    ],
)
def test_what_the_expansion_does_not_understand_is_refused(value: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        expand_value("okta.x", value, ENV)
    assert str(info.value).startswith(expected)


def test_expand_settings_leaves_other_values_alone() -> None:
    settings = {"okta.issuer": "${OKTA_ISSUER}", "n": 3, "plain": "x"}
    assert expand_settings(settings, ENV) == {
        "okta.issuer": ENV["OKTA_ISSUER"],
        "n": 3,
        "plain": "x",
    }


def test_main_reads_settings_from_the_environment(issuer, monkeypatch) -> None:
    monkeypatch.setenv("TEST_OKTA_ISSUER", issuer.issuer)
    app = main(
        {},
        **{
            "okta.issuer": "${TEST_OKTA_ISSUER}",
            "okta.audience": "${TEST_OKTA_AUDIENCE:-api://default}",
            "okta.jwks_refresh_interval": "0",
        },
    )
    assert app.registry.okta.settings.issuer == issuer.issuer
    assert app.registry.okta.settings.audiences == ("api://default",)


def test_main_without_the_variable_raises_naming_it(monkeypatch) -> None:
    monkeypatch.delenv("TEST_OKTA_ISSUER", raising=False)
    with pytest.raises(ConfigurationError, match="okta.issuer: .*TEST_OKTA_ISSUER"):
        main({}, **{"okta.issuer": "${TEST_OKTA_ISSUER}"})
