"""The table of ``okta.*`` keys: each declared once, with how its value is read, and
the rules of the keys that need more than a kind of value."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from typing import Any

from pyramid.exceptions import ConfigurationError
from pyramid.settings import aslist

from ..tokens.capacity import DEFAULT_SERVER_THREADS
from ..tokens.dpop import DEFAULT_ALGORITHMS as DEFAULT_DPOP_ALGORITHMS
from ..tokens.dpop import DEFAULT_MAX_AGE as DEFAULT_DPOP_MAX_AGE
from ..tokens.dpop import SUPPORTED_ALGORITHMS as DPOP_ALGORITHMS
from ..tokens.fetch import DEFAULT_HTTP_TIMEOUT
from ..tokens.introspection import DEFAULT_CACHE_TTL as DEFAULT_INTROSPECTION_CACHE_TTL
from ..tokens.jwks import DEFAULT_JWKS_REFETCH_COOLDOWN
from ..tokens.nonces import MIN_SECRET_BYTES
from ..tokens.replay import DEFAULT_MAX_ENTRIES as DEFAULT_DPOP_REPLAY_STORE_SIZE
from ..tokens.replay import MIN_ENTRIES as MIN_DPOP_REPLAY_STORE_SIZE
from ..tokens.schemes import MODES as DPOP_MODES
from ..tokens.shared import DEFAULT_TIMEOUT as DEFAULT_SHARED_STORE_TIMEOUT
from ..tokens.urls import normalize_url
from ..tokens.verifier import DEFAULT_LEEWAY, DEFAULT_TOKEN_CACHE_SIZE
from .introspection import auth_method, introspection_endpoint
from .issuer_lines import issuer_lines
from .model import (
    DEFAULT_CORS_MAX_AGE,
    DEFAULT_GROUPS_CLAIM,
    DEFAULT_JWKS_REFRESH_INTERVAL,
    DPOP_REPLAY_KEY_SHARE,
)
from .shared_store import shared_store, shared_store_min_replicas
from .urls import display_url, split_url
from .values import (
    PREFIX,
    Boolean,
    ClaimName,
    Number,
    OneWord,
    Setting,
    Values,
    dotted_callable,
    optional_text,
    required_claims,
    text,
    words,
)

MAX_LEEWAY = 300
ENVIRONMENTS = ("development", "production")
MAX_TOKEN_CACHE_SIZE = 100_000
#: A proof older than this is refused whatever okta.dpop_max_age says: the replay
#: store must remember every proof for that long.
MAX_DPOP_MAX_AGE = 3600
#: Introspection answers are reused at most this long (seconds).
MAX_INTROSPECTION_CACHE_TTL = 3600
#: Seconds one call to the shared store may take, at most.
MAX_SHARED_STORE_TIMEOUT = 10
#: A server with more request threads than this is not one process's worth.
MAX_SERVER_THREADS = 1024
#: About 200 bytes an entry: 10 million hold some 2 GB.
MAX_DPOP_REPLAY_STORE_SIZE = 10_000_000
#: ``okta.public_url``'s value for "the proxy sets the Host header": the URL a DPoP
#: proof must name is then built from the request's Host, on the operator's word.
PUBLIC_URL_FROM_PROXY = "from-proxy"
#: ``okta.scopes_supported``'s values for "from the ACLs" and "leave the member out".
SCOPES_AUTO = "auto"
SCOPES_NONE = "none"
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


# -- the keys that need more than a kind of value -----------------------------------


def _environment(values: Values, key: str) -> str:
    """``development`` (the default) or ``production``."""
    environment = str(values.settings.get(key) or "development").strip()
    if environment not in ENVIRONMENTS:
        raise ConfigurationError(
            f"okta.environment: must be development or production, got {environment!r}"
        )
    return environment


def _realm(values: Values, key: str) -> str:
    """The realm of the challenges; ``api`` by default."""
    realm = str(values.settings.get(key) or "api")
    if '"' in realm or "\\" in realm or not realm.isprintable():
        raise ConfigurationError(
            f"okta.realm: must be printable text without quotes or backslashes, got {realm!r}"
        )
    return realm


_REFRESH_INTERVAL = Number(DEFAULT_JWKS_REFRESH_INTERVAL, minimum=0, maximum=86400)


def _refresh_interval(values: Values, key: str) -> float:
    """Seconds between background key refreshes: 0 (off), or 10 and more."""
    refresh = _REFRESH_INTERVAL(values, key)
    if 0 < refresh < 10:
        raise ConfigurationError(
            f"okta.jwks_refresh_interval: must be 0 (off) or at least 10 seconds, "
            f"got {values.settings.get(key)!r}"
        )
    return refresh


def _origins(values: Values, key: str) -> tuple[str, ...]:
    origins = []
    for origin in aslist(values.settings.get(key) or ""):
        if origin == "*":
            origins.append(origin)
            continue
        parts = split_url(origin, key)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or "@" in parts.netloc
            or parts.path
            or parts.query
            or parts.fragment
            or origin.endswith(("?", "#"))
            or origin != origin.lower()
        ):
            # An origin (RFC 6454) has no user info; never quote one that does.
            shown = display_url(parts)
            raise ConfigurationError(
                f"{key}: each origin must be scheme://host[:port] in lower case "
                f"with no user info or path, such as https://app.example.com, or *; "
                f"got {shown!r}"
            )
        origins.append(origin)
    return tuple(origins)


def _dpop_mode(values: Values, key: str) -> str:
    raw = values.settings.get(key)
    mode = str(raw or "allowed").strip().lower()
    if mode not in DPOP_MODES:
        raise ConfigurationError(f"{key}: must be one of {', '.join(DPOP_MODES)}, got {raw!r}")
    return mode


def _dpop_algorithms(values: Values, key: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(aslist(values.settings.get(key) or "")))
    for name in names:
        if name not in DPOP_ALGORITHMS:
            raise ConfigurationError(
                f"{key}: {name[:20]!r} is not an algorithm for DPoP proofs; choose among "
                f"{' '.join(DPOP_ALGORITHMS)} (none and HS* cannot prove possession)"
            )
    return names or DEFAULT_DPOP_ALGORITHMS


def _nonce_secret(values: Values, key: str) -> str | None:
    secret = text(values.settings.get(key))
    if secret is None:
        return None
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        # Never quote it: it is a secret, however wrong.
        raise ConfigurationError(
            f"{key}: must be at least {MIN_SECRET_BYTES} bytes (for example the output of "
            f"`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return secret


def _replay_key_quota(values: Values, key: str) -> int:
    """At most the whole replay store; by default a share of it."""
    size = values["dpop_replay_store_size"]
    quota = Number(
        max(1, size // DPOP_REPLAY_KEY_SHARE), minimum=1, maximum=size, integer=True, unit="proofs"
    )
    return int(quota(values, key))


def _public_url(values: Values, key: str) -> str | None:
    raw = str(values.settings.get(key) or "").strip()
    if not raw or raw.lower() == PUBLIC_URL_FROM_PROXY:
        return None
    parts = split_url(raw, key)
    if "@" in parts.netloc:
        raise ConfigurationError(f"{key}: must not contain user info (user:password@)")
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or raw.endswith(("?", "#"))
        or not _is_uri(raw)
    ):
        raise ConfigurationError(
            f"{key}: must be the absolute http(s) URL where clients reach this API's root, "
            f"such as https://api.example.com or https://example.com/orders-api, with no "
            f"query or fragment; got {display_url(parts)!r}"
        )
    return raw.rstrip("/")


def _is_uri(url: str) -> bool:
    # What DPoP compares a proof's htu with must itself be a URI the core can read
    # (RFC 3986: a port of at most five digits, a host it can parse).
    try:
        normalize_url(url)
    except ValueError:
        return False
    return True


def public_url_from_proxy(settings: Mapping[str, Any]) -> bool:
    """``okta.public_url = from-proxy``: the operator vouches for the Host header."""
    return str(settings.get(PREFIX + "public_url") or "").strip().lower() == (PUBLIC_URL_FROM_PROXY)


def _scopes_supported(values: Values, key: str) -> tuple[str, ...] | None:
    """The protected-resource metadata's ``scopes_supported``: ``auto`` (the default)
    derives them from the application's ACLs, ``none`` leaves the member out."""
    names = tuple(dict.fromkeys(aslist(values.settings.get(key) or "")))
    if not names or names == (SCOPES_AUTO,):
        return None
    if names == (SCOPES_NONE,):
        return ()
    for name in names:
        # RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        if name in (SCOPES_AUTO, SCOPES_NONE) or not _SCOPE_TOKEN.fullmatch(name):
            raise ConfigurationError(
                f"{key}: must be auto, none, or scope names separated by whitespace "
                f"(RFC 6749 §3.3: printable ASCII without quotes or backslashes); "
                f"got {name[:40]!r}"
            )
    return names


def _resource_name(values: Values, key: str) -> str | None:
    name = text(values.settings.get(key))
    if name is not None and (not name.isprintable() or len(name) > 200):
        raise ConfigurationError(
            f"{key}: must be one line of printable text, at most 200 characters"
        )
    return name


def _page_url(values: Values, key: str) -> str | None:
    """A page for people (documentation, policy, terms): an absolute http(s) URL."""
    raw = text(values.settings.get(key))
    if raw is None:
        return None
    parts = split_url(raw, key)
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.fragment
        or raw.endswith("#")
    ):
        raise ConfigurationError(
            f"{key}: must be an absolute http(s) URL with no user info or fragment, "
            f"such as https://example.com/docs/api; got {display_url(parts)!r}"
        )
    return raw


def _metrics(values: Values, key: str) -> bool:
    enabled = Boolean(False)(values, key)
    if enabled and importlib.util.find_spec("prometheus_client") is None:
        raise ConfigurationError(
            "okta.metrics: needs prometheus_client, which is not installed: pip install "
            "'okta_pyramid[metrics]'"
        )
    return enabled


# -- the keys -----------------------------------------------------------------------

#: Every ``okta.*`` key, declared once. The keys that are not fields are read as
#: parse_settings assembles the issuers and introspection from them; then the fields
#: of :class:`OktaSettings` are converted in this order. With several mistakes, the
#: first one met is the one reported.
SETTINGS: tuple[Setting, ...] = (
    # The trusted issuers, one a line, and what their tokens must say.
    Setting("issuer", issuer_lines, is_field=False),
    Setting("audience", words, is_field=False),
    Setting("client_ids", words, is_field=False),
    Setting("required_claims", required_claims, is_field=False),
    # Token introspection (docs/introspection.md): on with a client id.
    Setting("introspection_client_id", OneWord("client id"), is_field=False),
    Setting("introspection_auth_method", auth_method, is_field=False),
    Setting("introspection_client_secret", optional_text, is_field=False),
    Setting("introspection_private_key", optional_text, is_field=False),
    Setting("introspection_key_id", optional_text, is_field=False),
    Setting(
        "introspection_cache_ttl",
        Number(
            DEFAULT_INTROSPECTION_CACHE_TTL,
            minimum=0,
            maximum=MAX_INTROSPECTION_CACHE_TTL,
            integer=True,
        ),
        is_field=False,
    ),
    Setting("introspection_endpoint", introspection_endpoint, is_field=False),
    # The fields of OktaSettings.
    Setting("environment", _environment),
    Setting("protect_all", Boolean(True)),
    Setting("realm", _realm),
    Setting("jwks_refresh_interval", _refresh_interval),
    Setting(
        "dpop_replay_store_size",
        Number(
            DEFAULT_DPOP_REPLAY_STORE_SIZE,
            minimum=MIN_DPOP_REPLAY_STORE_SIZE,
            maximum=MAX_DPOP_REPLAY_STORE_SIZE,
            unit="proofs",
            integer=True,
        ),
    ),
    Setting("dpop_replay_key_quota", _replay_key_quota),
    Setting("groups_claim", ClaimName(DEFAULT_GROUPS_CLAIM)),
    Setting("principals_callback", dotted_callable),
    Setting("leeway", Number(DEFAULT_LEEWAY, minimum=0, maximum=MAX_LEEWAY, integer=True)),
    Setting("http_timeout", Number(DEFAULT_HTTP_TIMEOUT, minimum=0.1, maximum=60)),
    Setting("jwks_refetch_cooldown", Number(DEFAULT_JWKS_REFETCH_COOLDOWN, minimum=0)),
    Setting("cors_allowed_origins", _origins),
    Setting("cors_max_age", Number(DEFAULT_CORS_MAX_AGE, minimum=0, maximum=86400, integer=True)),
    Setting("console", Boolean(False)),
    Setting(
        "token_cache_size",
        Number(
            DEFAULT_TOKEN_CACHE_SIZE,
            minimum=0,
            maximum=MAX_TOKEN_CACHE_SIZE,
            unit="tokens",
            integer=True,
        ),
    ),
    Setting("dpop", _dpop_mode),
    Setting("dpop_algorithms", _dpop_algorithms),
    Setting(
        "dpop_max_age",
        Number(DEFAULT_DPOP_MAX_AGE, minimum=1, maximum=MAX_DPOP_MAX_AGE, integer=True),
    ),
    Setting("dpop_nonce", Boolean(False)),
    Setting("dpop_nonce_secret", _nonce_secret),
    Setting("public_url", _public_url),
    Setting("introspect_all", Boolean(False)),
    Setting("shared_store", shared_store),
    Setting(
        "shared_store_timeout",
        Number(DEFAULT_SHARED_STORE_TIMEOUT, minimum=0.01, maximum=MAX_SHARED_STORE_TIMEOUT),
    ),
    Setting("shared_store_min_replicas", shared_store_min_replicas),
    Setting("metrics", _metrics),
    # Protected-resource metadata (RFC 9728, docs/discovery.md).
    Setting("resource_metadata", Boolean(True)),
    Setting("scopes_supported", _scopes_supported),
    Setting("resource_name", _resource_name),
    Setting("resource_documentation", _page_url),
    Setting("resource_policy_uri", _page_url),
    Setting("resource_tos_uri", _page_url),
    Setting(
        "server_threads",
        Number(
            DEFAULT_SERVER_THREADS,
            minimum=1,
            maximum=MAX_SERVER_THREADS,
            unit="threads",
            integer=True,
        ),
    ),
)

#: The table by name.
TABLE: Mapping[str, Setting] = {setting.name: setting for setting in SETTINGS}

#: Every ``okta.*`` key the add-on reads. Any other key under the prefix is refused at
#: start-up: a misspelt key would otherwise leave its default silently in force.
SETTING_NAMES = frozenset(setting.key for setting in SETTINGS)
