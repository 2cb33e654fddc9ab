"""The ``okta.*`` settings: parsed and validated once, at start-up.

Every key is read here and nowhere else. A wrong or missing value raises
:class:`pyramid.exceptions.ConfigurationError` with a message that starts with
the key, so a misconfigured deployment stops before it serves a request.

:mod:`.table` declares every key once; :func:`.parse.parse_settings` reads them
into :class:`.model.OktaSettings`. :mod:`.values` holds the kinds of value a key
may hold, :mod:`.issuer_lines` the grammar of ``okta.issuer``, :mod:`.introspection`
and :mod:`.shared_store` the rules of those keys, :mod:`.urls` the URL checks.
"""

from __future__ import annotations

from ..tokens.capacity import DEFAULT_SERVER_THREADS
from ..tokens.client_auth import AUTH_METHODS as INTROSPECTION_AUTH_METHODS
from ..tokens.client_auth import load_private_key
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
from ..tokens.shared import URL_OPTIONS as SHARED_STORE_URL_OPTIONS
from ..tokens.urls import is_loopback_host
from ..tokens.verifier import DEFAULT_AUDIENCE, DEFAULT_LEEWAY, DEFAULT_TOKEN_CACHE_SIZE
from .introspection import MAX_PRIVATE_KEY_BYTES
from .issuer_lines import ISSUER_OPTIONS
from .model import (
    DEFAULT_CORS_MAX_AGE,
    DEFAULT_GROUPS_CLAIM,
    DEFAULT_JWKS_REFRESH_INTERVAL,
    DPOP_REPLAY_KEY_SHARE,
    IntrospectionSettings,
    IssuerSettings,
    OktaSettings,
)
from .parse import parse_settings
from .table import (
    ENVIRONMENTS,
    MAX_DPOP_MAX_AGE,
    MAX_DPOP_REPLAY_STORE_SIZE,
    MAX_INTROSPECTION_CACHE_TTL,
    MAX_LEEWAY,
    MAX_SERVER_THREADS,
    MAX_SHARED_STORE_TIMEOUT,
    MAX_TOKEN_CACHE_SIZE,
    PUBLIC_URL_FROM_PROXY,
    SETTING_NAMES,
    SETTINGS,
)
from .urls import (
    OKTA_DOMAINS,
    check_issuer_url,
    check_no_trailing_slash,
    check_not_org_server,
    display_url,
    is_org_server,
    split_url,
)
from .values import PREFIX, Setting, refuse_unknown_keys

# What okta_pyramid.settings offers, as it did when it was one module.
__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_CORS_MAX_AGE",
    "DEFAULT_DPOP_ALGORITHMS",
    "DEFAULT_DPOP_MAX_AGE",
    "DEFAULT_DPOP_REPLAY_STORE_SIZE",
    "DEFAULT_GROUPS_CLAIM",
    "DEFAULT_HTTP_TIMEOUT",
    "DEFAULT_INTROSPECTION_CACHE_TTL",
    "DEFAULT_JWKS_REFETCH_COOLDOWN",
    "DEFAULT_JWKS_REFRESH_INTERVAL",
    "DEFAULT_LEEWAY",
    "DEFAULT_SERVER_THREADS",
    "DEFAULT_SHARED_STORE_TIMEOUT",
    "DEFAULT_TOKEN_CACHE_SIZE",
    "DPOP_ALGORITHMS",
    "DPOP_MODES",
    "DPOP_REPLAY_KEY_SHARE",
    "ENVIRONMENTS",
    "INTROSPECTION_AUTH_METHODS",
    "ISSUER_OPTIONS",
    "MAX_DPOP_MAX_AGE",
    "MAX_DPOP_REPLAY_STORE_SIZE",
    "MAX_INTROSPECTION_CACHE_TTL",
    "MAX_LEEWAY",
    "MAX_PRIVATE_KEY_BYTES",
    "MAX_SERVER_THREADS",
    "MAX_SHARED_STORE_TIMEOUT",
    "MAX_TOKEN_CACHE_SIZE",
    "MIN_DPOP_REPLAY_STORE_SIZE",
    "MIN_SECRET_BYTES",
    "OKTA_DOMAINS",
    "PREFIX",
    "PUBLIC_URL_FROM_PROXY",
    "SETTINGS",
    "SETTING_NAMES",
    "SHARED_STORE_URL_OPTIONS",
    "IntrospectionSettings",
    "IssuerSettings",
    "OktaSettings",
    "Setting",
    "check_issuer_url",
    "check_no_trailing_slash",
    "check_not_org_server",
    "display_url",
    "is_loopback_host",
    "is_org_server",
    "load_private_key",
    "parse_settings",
    "refuse_unknown_keys",
    "split_url",
]
