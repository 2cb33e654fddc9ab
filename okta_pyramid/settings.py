"""The ``okta.*`` settings: parsed and validated once, at start-up.

Every key is read here and nowhere else. A wrong or missing value raises
:class:`pyramid.exceptions.ConfigurationError` with a message that starts with
the key, so a misconfigured deployment stops before it serves a request.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from pyramid.exceptions import ConfigurationError
from pyramid.settings import aslist, falsey, truthy

PREFIX = "okta."

DEFAULT_AUDIENCE = "api://default"
DEFAULT_LEEWAY = 60
MAX_LEEWAY = 300
DEFAULT_HTTP_TIMEOUT = 5.0
DEFAULT_JWKS_REFETCH_COOLDOWN = 30.0
DEFAULT_CORS_MAX_AGE = 600
#: Verified tokens kept in memory (each costs about its payload, ~1 KiB at Okta).
DEFAULT_TOKEN_CACHE_SIZE = 4096
MAX_TOKEN_CACHE_SIZE = 100_000


@dataclass(frozen=True)
class OktaSettings:
    """Validated ``okta.*`` settings."""

    issuer: str
    audiences: tuple[str, ...] = (DEFAULT_AUDIENCE,)
    client_ids: tuple[str, ...] = ()
    leeway: int = DEFAULT_LEEWAY
    http_timeout: float = DEFAULT_HTTP_TIMEOUT
    jwks_refetch_cooldown: float = DEFAULT_JWKS_REFETCH_COOLDOWN
    protect_all: bool = True
    cors_allowed_origins: tuple[str, ...] = ()
    cors_max_age: int = DEFAULT_CORS_MAX_AGE
    realm: str = "api"
    token_cache_size: int = DEFAULT_TOKEN_CACHE_SIZE


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer_url(value: str, key: str = "okta.issuer") -> str:
    """Return the issuer URL if it is absolute https (http only on loopback)."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            f"{key}: must be an absolute https URL such as "
            f"https://dev-123456.okta.com/oauth2/default, got {value!r}"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigurationError(
            f"{key}: must use https; plain http is only accepted for a loopback "
            f"host (localhost, 127.0.0.0/8, ::1), got {value!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            f"{key}: must not contain a query, fragment or credentials, got {value!r}"
        )
    return value


def _number(
    settings: Mapping[str, Any],
    name: str,
    default: float,
    *,
    minimum: float,
    maximum: float | None = None,
    integer: bool = False,
    unit: str = "seconds",
) -> float:
    key = PREFIX + name
    raw = settings.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    try:
        value = int(str(raw).strip()) if integer else float(str(raw).strip())
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigurationError(f"{key}: must be {kind} of {unit}, got {raw!r}") from None
    if value != value or value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum:g}" if maximum is not None else ""
        raise ConfigurationError(
            f"{key}: must be at least {minimum:g}{upper} {unit}, got {raw!r}"
        )
    return value


def _boolean(settings: Mapping[str, Any], name: str, default: bool) -> bool:
    key = PREFIX + name
    raw = settings.get(key)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in truthy:
        return True
    if text in falsey:
        return False
    raise ConfigurationError(f"{key}: must be true or false, got {raw!r}")


def _origins(settings: Mapping[str, Any]) -> tuple[str, ...]:
    key = PREFIX + "cors_allowed_origins"
    origins = []
    for origin in aslist(settings.get(key) or ""):
        if origin == "*":
            origins.append(origin)
            continue
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or origin != origin.lower()
        ):
            raise ConfigurationError(
                f"{key}: each origin must be scheme://host[:port] in lower case "
                f"with no path, such as https://app.example.com, or *; got {origin!r}"
            )
        origins.append(origin)
    return tuple(origins)


def parse_settings(settings: Mapping[str, Any]) -> OktaSettings:
    """Validate the ``okta.*`` keys of a Pyramid settings mapping."""
    issuer = (settings.get(PREFIX + "issuer") or "").strip()
    if not issuer:
        raise ConfigurationError(
            "okta.issuer: is required; set it to your authorization server's "
            "issuer URI, e.g. https://dev-123456.okta.com/oauth2/default"
        )
    check_issuer_url(issuer)

    audiences = tuple(aslist(settings.get(PREFIX + "audience") or DEFAULT_AUDIENCE))
    client_ids = tuple(aslist(settings.get(PREFIX + "client_ids") or ""))

    protect_all = _boolean(settings, "protect_all", True)

    realm = str(settings.get(PREFIX + "realm") or "api")
    if '"' in realm or "\\" in realm or not realm.isprintable():
        raise ConfigurationError(
            f"okta.realm: must be printable text without quotes or backslashes, got {realm!r}"
        )

    return OktaSettings(
        issuer=issuer,
        audiences=audiences,
        client_ids=client_ids,
        leeway=int(_number(settings, "leeway", DEFAULT_LEEWAY, minimum=0,
                           maximum=MAX_LEEWAY, integer=True)),
        http_timeout=_number(settings, "http_timeout", DEFAULT_HTTP_TIMEOUT,
                             minimum=0.1, maximum=60),
        jwks_refetch_cooldown=_number(settings, "jwks_refetch_cooldown",
                                      DEFAULT_JWKS_REFETCH_COOLDOWN, minimum=0),
        protect_all=protect_all,
        cors_allowed_origins=_origins(settings),
        cors_max_age=int(_number(settings, "cors_max_age", DEFAULT_CORS_MAX_AGE,
                                 minimum=0, maximum=86400, integer=True)),
        realm=realm,
        token_cache_size=int(_number(settings, "token_cache_size", DEFAULT_TOKEN_CACHE_SIZE,
                                     minimum=0, maximum=MAX_TOKEN_CACHE_SIZE, integer=True,
                                     unit="tokens")),
    )
