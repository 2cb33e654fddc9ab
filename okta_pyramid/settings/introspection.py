"""The ``okta.introspection_*`` settings: how the API authenticates to the
introspection endpoint (RFC 7662, docs/introspection.md), and what each method needs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pyramid.exceptions import ConfigurationError

from ..tokens.client_auth import AUTH_METHODS as INTROSPECTION_AUTH_METHODS
from ..tokens.client_auth import load_private_key
from .model import IntrospectionSettings, IssuerSettings
from .urls import check_issuer_url
from .values import PREFIX, Values, check_one_word, text

#: A private_key_jwt key file is a few KiB; anything larger is not one.
MAX_PRIVATE_KEY_BYTES = 64 * 1024


def auth_method(values: Values, key: str) -> str:
    """``okta.introspection_auth_method``; client_secret_basic by default."""
    raw = values.settings.get(key)
    method = (text(raw) or "client_secret_basic").lower()
    if method not in INTROSPECTION_AUTH_METHODS:
        raise ConfigurationError(
            f"okta.introspection_auth_method: must be one of "
            f"{', '.join(INTROSPECTION_AUTH_METHODS)}, got {raw!r}"
        )
    return method


def introspection_endpoint(values: Values, key: str) -> str | None:
    """``okta.introspection_endpoint``; ``None``: the issuer's metadata names it."""
    endpoint = text(values.settings.get(key))
    if endpoint is not None:
        check_issuer_url(endpoint, "okta.introspection_endpoint")
    return endpoint


def parse_introspection(values: Values) -> IntrospectionSettings | None:
    """The ``okta.introspection_*`` settings, or ``None`` when introspection is off."""
    cache_ttl = values["introspection_cache_ttl"]
    client_id = values["introspection_client_id"]
    if client_id is None:
        _refuse_introspection_settings(values)
        return None
    method = values["introspection_auth_method"]
    secret = values["introspection_client_secret"]
    key_path = values["introspection_private_key"]
    key_id = values["introspection_key_id"]
    private_key = None
    if method == "private_key_jwt":
        private_key = _private_key_jwt(secret, key_path, key_id)
    else:
        _client_secret_method(method, secret, key_path, key_id)
    return IntrospectionSettings(
        client_id=client_id,
        auth_method=method,
        client_secret=secret,
        private_key=private_key,
        key_id=key_id,
        cache_ttl=cache_ttl,
        endpoint=values["introspection_endpoint"],
    )


def _refuse_introspection_settings(values: Values) -> None:
    """A setting that shows an intent to introspect, without the client to do it
    (production.ini's defaults for the others mean nothing yet)."""
    for name in (
        "introspection_client_secret",
        "introspection_private_key",
        "introspection_key_id",
        "introspection_auth_method",
        "introspect_all",
        "introspection_endpoint",
    ):
        value = text(values.settings.get(PREFIX + name))
        if (
            value is None
            or (name == "introspection_auth_method" and value.lower() == "client_secret_basic")
            or (name == "introspect_all" and not values[name])
        ):
            continue
        raise ConfigurationError(
            f"okta.{name}: is set, but introspection is off: set "
            f"okta.introspection_client_id to the client the API introspects as"
        )


def _private_key_jwt(secret: str | None, key_path: str | None, key_id: str | None) -> Any:
    """The client's private key, for okta.introspection_auth_method = private_key_jwt."""
    if secret is not None:
        raise ConfigurationError(
            "okta.introspection_client_secret: is not used with private_key_jwt; "
            "remove it (the private key proves the client's identity)"
        )
    if key_path is None:
        raise ConfigurationError(
            "okta.introspection_private_key: is required with "
            "okta.introspection_auth_method = private_key_jwt; give the path of the "
            "client's PEM private key file"
        )
    private_key = _private_key(key_path)
    if key_id is not None:
        check_one_word(key_id, "okta.introspection_key_id", "key id")
    return private_key


def _client_secret_method(
    method: str, secret: str | None, key_path: str | None, key_id: str | None
) -> None:
    """Check the settings of client_secret_basic and client_secret_post."""
    for name, value in (
        ("introspection_private_key", key_path),
        ("introspection_key_id", key_id),
    ):
        if value is not None:
            raise ConfigurationError(
                f"okta.{name}: is only used with okta.introspection_auth_method = "
                f"private_key_jwt (now {method})"
            )
    if secret is None:
        raise ConfigurationError(
            f"okta.introspection_client_secret: is required with "
            f"okta.introspection_auth_method = {method}; in production.ini it comes "
            f"from OKTA_INTROSPECTION_CLIENT_SECRET"
        )


def check_introspection_issuers(
    introspection: IntrospectionSettings | None, issuers: tuple[IssuerSettings, ...]
) -> None:
    """Refuse introspection settings that cannot serve every issuer."""
    if introspection is not None and introspection.endpoint is not None and len(issuers) > 1:
        raise ConfigurationError(
            "okta.introspection_endpoint: names one server's endpoint, and okta.issuer "
            "has several lines; leave it out (each issuer's metadata names its own)"
        )
    if introspection is not None and introspection.client_secret is not None:
        hosts = sorted({(urlsplit(line.issuer).hostname or "") for line in issuers})
        if len(hosts) > 1:
            # Every line's issuer is asked about its tokens with the one client: a
            # secret belongs to one server and must not be shown to the others.
            raise ConfigurationError(
                f"okta.introspection_auth_method: {introspection.auth_method} would send "
                f"the introspection client secret to the authorization servers of "
                f"{len(hosts)} hosts ({', '.join(hosts)}); list the issuers of one host "
                f"only, or use private_key_jwt, whose assertion is made for each "
                f"endpoint and useless at any other"
            )


def _private_key(path: str) -> Any:
    key = PREFIX + "introspection_private_key"
    try:
        with open(path, "rb") as file:
            pem = file.read(MAX_PRIVATE_KEY_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(
            f"{key}: cannot read {path!r} ({exc.strerror or type(exc).__name__})"
        ) from None
    if len(pem) > MAX_PRIVATE_KEY_BYTES:
        raise ConfigurationError(f"{key}: {path!r} is larger than a private key file")
    try:
        return load_private_key(pem)
    except ValueError as exc:
        # The message describes the file, never its content.
        raise ConfigurationError(f"{key}: {path!r}: {exc}") from None
