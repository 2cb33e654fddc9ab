"""The ``okta.*`` settings: parsed and validated once, at start-up.

Every key is read here and nowhere else. A wrong or missing value raises
:class:`pyramid.exceptions.ConfigurationError` with a message that starts with
the key, so a misconfigured deployment stops before it serves a request.
"""

from __future__ import annotations

import difflib
import importlib.util
import ipaddress
import os
import re
import ssl
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

from pyramid.exceptions import ConfigurationError
from pyramid.path import DottedNameResolver
from pyramid.settings import aslist, falsey, truthy

from .tokens.capacity import DEFAULT_SERVER_THREADS
from .tokens.client_auth import AUTH_METHODS as INTROSPECTION_AUTH_METHODS
from .tokens.client_auth import load_private_key
from .tokens.dpop import DEFAULT_ALGORITHMS as DEFAULT_DPOP_ALGORITHMS
from .tokens.dpop import DEFAULT_MAX_AGE as DEFAULT_DPOP_MAX_AGE
from .tokens.dpop import SUPPORTED_ALGORITHMS as DPOP_ALGORITHMS
from .tokens.fetch import DEFAULT_HTTP_TIMEOUT
from .tokens.introspection import DEFAULT_CACHE_TTL as DEFAULT_INTROSPECTION_CACHE_TTL
from .tokens.jwks import DEFAULT_JWKS_REFETCH_COOLDOWN
from .tokens.nonces import MIN_SECRET_BYTES
from .tokens.replay import DEFAULT_MAX_ENTRIES as DEFAULT_DPOP_REPLAY_STORE_SIZE
from .tokens.replay import MIN_ENTRIES as MIN_DPOP_REPLAY_STORE_SIZE
from .tokens.schemes import MODES as DPOP_MODES
from .tokens.shared import DEFAULT_TIMEOUT as DEFAULT_SHARED_STORE_TIMEOUT
from .tokens.shared import URL_OPTIONS as SHARED_STORE_URL_OPTIONS
from .tokens.urls import is_loopback_host
from .tokens.verifier import DEFAULT_AUDIENCE, DEFAULT_LEEWAY, DEFAULT_TOKEN_CACHE_SIZE

PREFIX = "okta."

MAX_LEEWAY = 300
DEFAULT_CORS_MAX_AGE = 600
DEFAULT_JWKS_REFRESH_INTERVAL = 300.0
ENVIRONMENTS = ("development", "production")
# Hosts of Okta-run orgs; an issuer at the root of one is the org authorization server.
OKTA_DOMAINS = ("okta.com", "oktapreview.com", "okta-emea.com", "okta-gov.com", "okta.mil")
DEFAULT_GROUPS_CLAIM = "groups"
MAX_TOKEN_CACHE_SIZE = 100_000
#: A proof older than this is refused whatever okta.dpop_max_age says: the replay
#: store must remember every proof for that long.
MAX_DPOP_MAX_AGE = 3600
#: Introspection answers are reused at most this long (seconds).
MAX_INTROSPECTION_CACHE_TTL = 3600
#: Seconds one call to the shared store may take, at most.
MAX_SHARED_STORE_TIMEOUT = 10
#: A private_key_jwt key file is a few KiB; anything larger is not one.
MAX_PRIVATE_KEY_BYTES = 64 * 1024
#: A server with more request threads than this is not one process's worth.
MAX_SERVER_THREADS = 1024
#: About 200 bytes an entry: 10 million hold some 2 GB.
MAX_DPOP_REPLAY_STORE_SIZE = 10_000_000
#: By default one DPoP key may hold this share of the replay store.
DPOP_REPLAY_KEY_SHARE = 8
#: ``okta.public_url``'s value for "the proxy sets the Host header": the URL a DPoP
#: proof must name is then built from the request's Host, on the operator's word.
PUBLIC_URL_FROM_PROXY = "from-proxy"

#: Every ``okta.*`` key the add-on reads. Any other key under the prefix is refused at
#: start-up: a misspelt key would otherwise leave its default silently in force.
SETTING_NAMES = frozenset(
    {
        "okta.issuer",
        "okta.audience",
        "okta.client_ids",
        "okta.leeway",
        "okta.http_timeout",
        "okta.jwks_refetch_cooldown",
        "okta.jwks_refresh_interval",
        "okta.protect_all",
        "okta.cors_allowed_origins",
        "okta.cors_max_age",
        "okta.realm",
        "okta.console",
        "okta.environment",
        "okta.groups_claim",
        "okta.required_claims",
        "okta.principals_callback",
        "okta.token_cache_size",
        "okta.dpop",
        "okta.dpop_algorithms",
        "okta.dpop_max_age",
        "okta.dpop_nonce",
        "okta.dpop_nonce_secret",
        "okta.dpop_replay_store_size",
        "okta.dpop_replay_key_quota",
        "okta.public_url",
        "okta.introspection_client_id",
        "okta.introspection_auth_method",
        "okta.introspection_client_secret",
        "okta.introspection_private_key",
        "okta.introspection_key_id",
        "okta.introspection_cache_ttl",
        "okta.introspection_endpoint",
        "okta.introspect_all",
        "okta.shared_store",
        "okta.shared_store_timeout",
        "okta.metrics",
        "okta.server_threads",
    }
)

# An issuer path of the shape Okta gives custom authorization servers: /oauth2/<id>.
_OKTA_SERVER_PATH = re.compile(r"/oauth2/[^/]+/?")


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
    console: bool = False
    jwks_refresh_interval: float = DEFAULT_JWKS_REFRESH_INTERVAL
    environment: str = "development"
    groups_claim: str = DEFAULT_GROUPS_CLAIM
    #: ``(name, value)`` pairs; ``value`` is ``None`` when the claim need only be present.
    required_claims: tuple[tuple[str, str | None], ...] = ()
    principals_callback: Callable[..., Any] | None = None
    token_cache_size: int = DEFAULT_TOKEN_CACHE_SIZE
    #: ``allowed``, ``required`` or ``disabled`` (docs/dpop.md).
    dpop: str = "allowed"
    dpop_algorithms: tuple[str, ...] = DEFAULT_DPOP_ALGORITHMS
    dpop_max_age: int = DEFAULT_DPOP_MAX_AGE
    dpop_nonce: bool = False
    #: ``None``: a random secret per process. Kept out of the dataclass's repr.
    dpop_nonce_secret: str | None = field(default=None, repr=False)
    #: Proofs (DPoP ``jti``) remembered at once, and the most one key may hold.
    dpop_replay_store_size: int = DEFAULT_DPOP_REPLAY_STORE_SIZE
    dpop_replay_key_quota: int = DEFAULT_DPOP_REPLAY_STORE_SIZE // DPOP_REPLAY_KEY_SHARE
    #: The API's external base URL (the application root), without a trailing slash.
    public_url: str | None = None
    #: ``okta.public_url = from-proxy``: the operator says the proxy in front sets the
    #: Host header, so the request's own URL may be trusted for DPoP's ``htu``.
    public_url_from_proxy: bool = False
    #: Token introspection (RFC 7662, docs/introspection.md); off when ``None``.
    introspection: IntrospectionSettings | None = None
    #: Every protected view needs a live token (introspection), not only those that
    #: say ``require_active_token=True``.
    introspect_all: bool = False
    #: The issuer is Okta's org authorization server: its tokens are judged by
    #: introspection alone, never locally.
    org_server: bool = False
    #: The Redis URL of the state the processes share (docs/deployment.md); ``None``:
    #: each process keeps its own. Kept out of the repr: it may hold a password.
    shared_store: str | None = field(default=None, repr=False)
    shared_store_timeout: float = DEFAULT_SHARED_STORE_TIMEOUT
    #: ``/metrics`` in the Prometheus text format (docs/metrics.md).
    metrics: bool = False
    #: The request threads of each process (waitress's ``threads``): the limits on
    #: waiting for the issuers are sized to it (docs/introspection.md).
    server_threads: int = DEFAULT_SERVER_THREADS
    #: Every trusted authorization server, one per line of ``okta.issuer``, in order.
    #: ``issuer``, ``audiences``, ``client_ids``, ``required_claims`` and ``org_server``
    #: above are the first one's (with one line, the only one's).
    issuers: tuple[IssuerSettings, ...] = ()

    def __post_init__(self) -> None:
        if not self.issuers:
            # Built from the fields above (a test, or code that builds settings itself).
            object.__setattr__(
                self,
                "issuers",
                (
                    IssuerSettings(
                        self.issuer,
                        self.audiences,
                        self.client_ids,
                        self.required_claims,
                        self.org_server,
                    ),
                ),
            )


@dataclass(frozen=True)
class IssuerSettings:
    """One trusted authorization server: a line of ``okta.issuer``, with the
    settings that apply to its tokens."""

    issuer: str
    audiences: tuple[str, ...] = (DEFAULT_AUDIENCE,)
    client_ids: tuple[str, ...] = ()
    #: ``okta.required_claims``, then the line's own ``require=`` options.
    required_claims: tuple[tuple[str, str | None], ...] = ()
    #: Okta's org authorization server, judged by introspection alone.
    org_server: bool = False
    #: Tokens that are not JWTs go to this issuer's introspection endpoint
    #: (``opaque=true``); without it they are refused with no call.
    opaque: bool = False


@dataclass(frozen=True)
class IntrospectionSettings:
    """How the API authenticates to the introspection endpoint, and the cache."""

    client_id: str
    auth_method: str = "client_secret_basic"
    #: Kept out of the repr: a secret never reaches a log line.
    client_secret: str | None = field(default=None, repr=False)
    #: The private_key_jwt key, loaded and checked at start-up.
    private_key: Any = field(default=None, repr=False)
    key_id: str | None = None
    cache_ttl: int = DEFAULT_INTROSPECTION_CACHE_TTL
    #: ``okta.introspection_endpoint``; ``None``: the issuer's metadata names it.
    endpoint: str | None = None


def _is_okta_host(host: str | None) -> bool:
    host = (host or "").lower()
    return any(host == domain or host.endswith("." + domain) for domain in OKTA_DOMAINS)


def refuse_unknown_keys(settings: Mapping[str, Any], prefix: str, known: Collection[str]) -> None:
    """Refuse a key under ``prefix`` that is not in ``known``, naming the closest one."""
    for key in sorted(k for k in settings if isinstance(k, str) and k.startswith(prefix)):
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"did you mean {close[0]}?" if close else "remove it or correct its name"
        raise ConfigurationError(f"{key}: is not a setting of okta_pyramid; {hint}")


def display_url(parts: SplitResult) -> str:
    """The URL without its user info, so a password never reaches a message."""
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=netloc).geturl()


def split_url(value: str, key: str) -> SplitResult:
    """``urlsplit(value)``, refusing (without quoting it) a URL whose host or port
    cannot be read, such as an unclosed IPv6 bracket or a port beyond 65535."""
    if any(c.isspace() or not c.isprintable() for c in value):
        # urlsplit would silently drop tabs and line breaks.
        raise ConfigurationError(
            f"{key}: must be one URL, with no spaces, line breaks or control characters inside"
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
        host = parts.netloc.rpartition("@")[2]
        if host.startswith("["):
            # Python 3.11+ refuses a bracketed host that is not an IPv6 address;
            # 3.10's urlsplit does not, so check it the same way on every Python.
            ipaddress.IPv6Address(host[1 : host.index("]")].partition("%")[0])
    except ValueError:
        raise ConfigurationError(
            f"{key}: is not a valid URL: its host or port cannot be read (an IPv6 "
            f"address goes in brackets, [::1]; a port is a number up to 65535)"
        ) from None
    return parts


def check_issuer_url(value: str, key: str = "okta.issuer") -> str:
    """Return the issuer URL if it is absolute https (http only on loopback)."""
    parts = split_url(value, key)
    if "@" in parts.netloc:
        raise ConfigurationError(
            f"{key}: must not contain user info (user:password@); an issuer URI never has it"
        )
    shown = display_url(parts)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            f"{key}: must be an absolute https URL such as "
            f"https://dev-123456.okta.com/oauth2/default, got {shown!r}"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigurationError(
            f"{key}: must use https; plain http is only accepted for a loopback "
            f"host (localhost, 127.0.0.0/8, ::1), got {shown!r}"
        )
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ConfigurationError(f"{key}: must not contain a query or fragment, got {shown!r}")
    return value


def check_no_trailing_slash(value: str, key: str = "okta.issuer") -> str:
    """Refuse an Okta issuer written with a trailing slash.

    Okta issuer URIs never end with ``/``, and the ``iss`` claim and the metadata's
    ``issuer`` are compared exactly (RFC 9068 §4, RFC 8414 §3.3), so with the slash
    every token would fail. Other issuers may end with one (Auth0's do), so only an
    issuer shaped like Okta's (an Okta host, or a ``/oauth2/<id>`` path) is refused.
    """
    parts = urlsplit(value)
    if not parts.path.endswith("/"):
        return value
    if _is_okta_host(parts.hostname) or _OKTA_SERVER_PATH.fullmatch(parts.path):
        raise ConfigurationError(
            f"{key}: must not end with '/': Okta issuer URIs have none and the iss "
            f"claim is compared exactly, so every token would fail; write "
            f"{display_url(parts).rstrip('/')}"
        )
    return value


def is_org_server(value: str, key: str = "okta.issuer") -> bool:
    """Whether ``value`` is an Okta *org* authorization server (``https://<org>.okta.com``)."""
    parts = split_url(value, key)
    # Its issuer is the bare org URL; its endpoints live under /oauth2/v1.
    return parts.path.strip("/") in ("", "oauth2", "oauth2/v1") and _is_okta_host(parts.hostname)


def check_not_org_server(value: str, key: str = "okta.issuer") -> str:
    """Refuse the Okta *org* authorization server (``https://<org>.okta.com``) where
    its tokens would have to be validated locally.

    Its access tokens are meant for Okta's own APIs: Okta does not let anyone else
    validate them (their keys are not for resource servers), so an API checking
    them locally would refuse every token. Introspection (RFC 7662) is the one way
    to accept them; otherwise use a custom authorization server, whose issuer has an
    ``/oauth2/<id>`` path such as ``.../oauth2/default``.
    """
    if is_org_server(value, key):
        parts = split_url(value, key)
        org = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        raise ConfigurationError(
            f"{key}: {display_url(parts)} is the Okta org authorization server, whose "
            f"access tokens cannot be validated by a resource server: use a custom "
            f"authorization server such as {org}/oauth2/default, or accept the org's "
            f"tokens by introspection (set okta.introspection_client_id and its "
            f"credentials, see docs/introspection.md)"
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
        raise ConfigurationError(f"{key}: must be at least {minimum:g}{upper} {unit}, got {raw!r}")
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


def _claim_name(settings: Mapping[str, Any], name: str, default: str) -> str:
    key = PREFIX + name
    value = str(settings.get(key) or "").strip() or default
    if len(value.split()) != 1 or not value.isprintable():
        raise ConfigurationError(f"{key}: must be one claim name, got {value!r}")
    return value


def _required_claims(settings: Mapping[str, Any]) -> tuple[tuple[str, str | None], ...]:
    """``okta.required_claims``: one per line, ``name`` or ``name = value``."""
    key = PREFIX + "required_claims"
    raw = settings.get(key) or ""
    lines = raw if isinstance(raw, (list, tuple)) else aslist(raw, flatten=False)
    return tuple(_requirement(key, str(line)) for line in lines)


def _callable(settings: Mapping[str, Any], name: str) -> Callable[..., Any] | None:
    key = PREFIX + name
    raw = settings.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = DottedNameResolver().maybe_resolve(raw.strip() if isinstance(raw, str) else raw)
    except (ImportError, ValueError, AttributeError) as exc:
        raise ConfigurationError(
            f"{key}: cannot import {raw!r} ({exc}); give a dotted name such as "
            f"myapp.security.principals or myapp.security:principals"
        ) from None
    if not callable(value):
        raise ConfigurationError(f"{key}: {raw!r} is not callable")
    return value


def _dpop_mode(settings: Mapping[str, Any]) -> str:
    key = PREFIX + "dpop"
    mode = str(settings.get(key) or "allowed").strip().lower()
    if mode not in DPOP_MODES:
        raise ConfigurationError(
            f"{key}: must be one of {', '.join(DPOP_MODES)}, got {settings.get(key)!r}"
        )
    return mode


def _dpop_algorithms(settings: Mapping[str, Any]) -> tuple[str, ...]:
    key = PREFIX + "dpop_algorithms"
    names = tuple(dict.fromkeys(aslist(settings.get(key) or "")))
    for name in names:
        if name not in DPOP_ALGORITHMS:
            raise ConfigurationError(
                f"{key}: {name[:20]!r} is not an algorithm for DPoP proofs; choose among "
                f"{' '.join(DPOP_ALGORITHMS)} (none and HS* cannot prove possession)"
            )
    return names or DEFAULT_DPOP_ALGORITHMS


def _nonce_secret(settings: Mapping[str, Any]) -> str | None:
    key = PREFIX + "dpop_nonce_secret"
    raw = settings.get(key)
    if raw is None or not str(raw).strip():
        return None
    secret = str(raw).strip()
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        # Never quote it: it is a secret, however wrong.
        raise ConfigurationError(
            f"{key}: must be at least {MIN_SECRET_BYTES} bytes (for example the output of "
            f"`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return secret


def _public_url(settings: Mapping[str, Any]) -> str | None:
    key = PREFIX + "public_url"
    raw = str(settings.get(key) or "").strip()
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
    ):
        raise ConfigurationError(
            f"{key}: must be the absolute http(s) URL where clients reach this API's root, "
            f"such as https://api.example.com or https://example.com/orders-api, with no "
            f"query or fragment; got {display_url(parts)!r}"
        )
    return raw.rstrip("/")


def _public_url_from_proxy(settings: Mapping[str, Any]) -> bool:
    return str(settings.get(PREFIX + "public_url") or "").strip().lower() == (PUBLIC_URL_FROM_PROXY)


def _replay_store(settings: Mapping[str, Any]) -> tuple[int, int]:
    """``okta.dpop_replay_store_size`` and ``okta.dpop_replay_key_quota``."""
    size = int(
        _number(
            settings,
            "dpop_replay_store_size",
            DEFAULT_DPOP_REPLAY_STORE_SIZE,
            minimum=MIN_DPOP_REPLAY_STORE_SIZE,
            maximum=MAX_DPOP_REPLAY_STORE_SIZE,
            integer=True,
            unit="proofs",
        )
    )
    quota = int(
        _number(
            settings,
            "dpop_replay_key_quota",
            max(1, size // DPOP_REPLAY_KEY_SHARE),
            minimum=1,
            maximum=size,
            integer=True,
            unit="proofs",
        )
    )
    return size, quota


def _text(settings: Mapping[str, Any], name: str) -> str | None:
    raw = settings.get(PREFIX + name)
    value = str(raw).strip() if raw is not None else ""
    return value or None


def _introspection(settings: Mapping[str, Any]) -> IntrospectionSettings | None:
    """The ``okta.introspection_*`` settings, or ``None`` when introspection is off."""
    client_id = _text(settings, "introspection_client_id")
    cache_ttl = int(
        _number(
            settings,
            "introspection_cache_ttl",
            DEFAULT_INTROSPECTION_CACHE_TTL,
            minimum=0,
            maximum=MAX_INTROSPECTION_CACHE_TTL,
            integer=True,
        )
    )
    if client_id is None:
        # A setting that shows an intent to introspect, without the client to do it
        # (production.ini's defaults for the others mean nothing yet).
        for name in (
            "introspection_client_secret",
            "introspection_private_key",
            "introspection_key_id",
            "introspection_auth_method",
            "introspect_all",
            "introspection_endpoint",
        ):
            value = _text(settings, name)
            if (
                value is None
                or (name == "introspection_auth_method" and value.lower() == "client_secret_basic")
                or (name == "introspect_all" and not _boolean(settings, name, False))
            ):
                continue
            raise ConfigurationError(
                f"okta.{name}: is set, but introspection is off: set "
                f"okta.introspection_client_id to the client the API introspects as"
            )
        return None
    if len(client_id.split()) != 1 or not client_id.isprintable():
        raise ConfigurationError(
            f"okta.introspection_client_id: must be one client id, got {client_id[:40]!r}"
        )
    method = (_text(settings, "introspection_auth_method") or "client_secret_basic").lower()
    if method not in INTROSPECTION_AUTH_METHODS:
        raise ConfigurationError(
            f"okta.introspection_auth_method: must be one of "
            f"{', '.join(INTROSPECTION_AUTH_METHODS)}, got "
            f"{settings.get(PREFIX + 'introspection_auth_method')!r}"
        )
    secret = _text(settings, "introspection_client_secret")
    key_path = _text(settings, "introspection_private_key")
    key_id = _text(settings, "introspection_key_id")
    private_key = None
    if method == "private_key_jwt":
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
        if key_id is not None and (len(key_id.split()) != 1 or not key_id.isprintable()):
            raise ConfigurationError(
                f"okta.introspection_key_id: must be one key id, got {key_id[:40]!r}"
            )
    else:
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
    endpoint = _text(settings, "introspection_endpoint")
    if endpoint is not None:
        check_issuer_url(endpoint, "okta.introspection_endpoint")
    return IntrospectionSettings(
        client_id=client_id,
        auth_method=method,
        client_secret=secret,
        private_key=private_key,
        key_id=key_id,
        cache_ttl=cache_ttl,
        endpoint=endpoint,
    )


def _shared_store(settings: Mapping[str, Any]) -> str | None:
    """The ``okta.shared_store`` Redis URL, or ``None``."""
    key = PREFIX + "shared_store"
    raw = _text(settings, "shared_store")
    if raw is None:
        return None
    parts = split_url(raw, key)
    if "@" in parts.path + parts.query + parts.fragment:
        # A "/", "?" or "#" in the password ended the URL's authority early: what
        # follows holds the password, so nothing of the URL is quoted.
        raise ConfigurationError(
            f"{key}: its user name or password holds a character that must be "
            f"percent-encoded (/ as %2F, ? as %3F, # as %23, @ as %40)"
        )
    shown = display_url(parts._replace(query=""))
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigurationError(
            f"{key}: must be a Redis URL, redis://host:port/db or rediss://host:port/db "
            f"(TLS), got {shown!r}"
        )
    if parts.path.strip("/") and not parts.path.strip("/").isdigit():
        raise ConfigurationError(
            f"{key}: the path names the database, a number such as /0; got {shown!r}"
        )
    if parts.fragment:
        raise ConfigurationError(f"{key}: must not contain a fragment, got {shown!r}")
    # redis-py lets a URL option win over what the store sets: a timeout, the
    # database, certificate checks (ssl_cert_reqs=none). Only TLS's files may be named.
    options = parse_qs(parts.query, keep_blank_values=True)
    for name, values in options.items():
        if name not in SHARED_STORE_URL_OPTIONS:
            named = name if re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name) else "an option"
            raise ConfigurationError(
                f"{key}: the URL option {named} is not accepted; the URL may name only "
                f"{', '.join(SHARED_STORE_URL_OPTIONS)} (with rediss://): the timeout is "
                f"okta.shared_store_timeout, the database is the path, and certificate "
                f"checks stay on"
            )
        if parts.scheme != "rediss":
            raise ConfigurationError(f"{key}: {name} is an option of TLS: use rediss://")
        if len(values) != 1 or not os.path.isfile(values[0]) or not os.access(values[0], os.R_OK):
            raise ConfigurationError(f"{key}: {name} must name one readable file")
    _client_certificate(
        key, options.get("ssl_certfile", [None])[0], options.get("ssl_keyfile", [None])[0]
    )
    if importlib.util.find_spec("redis") is None:
        raise ConfigurationError(
            f"{key}: needs redis-py, which is not installed: pip install 'okta_pyramid[redis]'"
        )
    return raw


class _PassPhraseAsked(Exception):
    """OpenSSL asked for the pass phrase of a private key."""


def _no_pass_phrase() -> bytes:
    raise _PassPhraseAsked


def _client_certificate(key: str, certfile: str | None, keyfile: str | None) -> None:
    """Load the store's client certificate and key as TLS will, or stop start-up.

    redis-py loads them at its first connection, inside a request: there a key
    protected by a pass phrase makes OpenSSL ask for it on the terminal, and a key
    that is not the certificate's fails every call. Messages name the options,
    never what the files hold.
    """
    if certfile is None:
        if keyfile is not None:
            raise ConfigurationError(
                f"{key}: ssl_keyfile is the private key of a client certificate: name "
                f"the certificate too (ssl_certfile)"
            )
        return
    holder = "ssl_keyfile" if keyfile is not None else "ssl_certfile"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        # A password callback that refuses: OpenSSL calls it for an encrypted key
        # instead of prompting on the terminal.
        context.load_cert_chain(certfile, keyfile, password=_no_pass_phrase)
    except _PassPhraseAsked:
        raise ConfigurationError(
            f"{key}: the private key in {holder} is protected by a pass phrase, which "
            f"the service cannot type: give it the key without one, in a file only the "
            f"service's user can read"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigurationError(
                f"{key}: the private key in {holder} is not the key of the certificate "
                f"in ssl_certfile"
            ) from None
        raise ConfigurationError(
            f"{key}: ssl_certfile must hold a PEM certificate, and "
            f"{'ssl_keyfile' if keyfile is not None else 'it or ssl_keyfile'} its PEM "
            f"private key; they could not be loaded"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"{key}: ssl_certfile or ssl_keyfile cannot be read "
            f"({exc.strerror or type(exc).__name__})"
        ) from None


def _metrics(settings: Mapping[str, Any]) -> bool:
    enabled = _boolean(settings, "metrics", False)
    if enabled and importlib.util.find_spec("prometheus_client") is None:
        raise ConfigurationError(
            "okta.metrics: needs prometheus_client, which is not installed: pip install "
            "'okta_pyramid[metrics]'"
        )
    return enabled


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


@dataclass(frozen=True)
class _IssuerDefaults:
    """What an ``okta.issuer`` line that does not say otherwise takes."""

    audiences: tuple[str, ...]
    client_ids: tuple[str, ...]
    required_claims: tuple[tuple[str, str | None], ...]
    introspection: bool
    production: bool


#: The options of an ``okta.issuer`` line (``name=value`` fields after the URL).
ISSUER_OPTIONS = ("client_ids", "require", "opaque")
# A field is an option when a bare name precedes its "="; an audience such as
# https://api.example.com/?v=1 is not mistaken for one. Any bare name counts, so a
# misspelt option (client-ids=, OPAQUE=) is refused rather than taken for an audience.
_OPTION = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)=(.*)")


def _issuer_lines(settings: Mapping[str, Any]) -> list[str]:
    raw = settings.get(PREFIX + "issuer") or ""
    lines = raw if isinstance(raw, (list, tuple)) else str(raw).splitlines()
    return [str(line).strip() for line in lines if str(line).strip()]


def _requirement(key: str, text: str) -> tuple[str, str | None]:
    """``name`` or ``name = value`` (or ``name=value``) as a required claim."""
    name, equals, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not name or len(name.split()) != 1 or not name.isprintable():
        raise ConfigurationError(
            f"{key}: each line must be a claim name, or 'name = value', got {text!r}"
        )
    if equals and not value:
        raise ConfigurationError(
            f"{key}: the value after '=' is empty in {text!r}; write only the "
            f"name to require that the claim is present"
        )
    return name, value if equals else None


def _looks_like_okta_issuer(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and _is_okta_host(parts.hostname)
        and bool(_OKTA_SERVER_PATH.fullmatch(parts.path))
    )


def _issuer_line(line: str, key: str, defaults: _IssuerDefaults) -> IssuerSettings:
    """One line of ``okta.issuer``: ``ISSUER [AUDIENCE ...] [option=value ...]``."""
    issuer, *fields = line.split()
    if issuer.count("://") > 1:
        # "A,B" (a list written the usual way) would start as one URL that no iss is.
        raise ConfigurationError(
            f"{key}: {issuer[:200]!r} holds two issuer URIs; put each issuer on a line of its own"
        )
    check_issuer_url(issuer, key)
    org_server = is_org_server(issuer, key)
    if not defaults.introspection:
        check_not_org_server(issuer, key)
    if org_server and urlsplit(issuer).path:
        parts = urlsplit(issuer)
        raise ConfigurationError(
            f"{key}: the Okta org authorization server's issuer is the bare org URL "
            f"(the iss of its tokens): write {parts.scheme}://{parts.netloc}"
        )
    if not org_server:
        check_no_trailing_slash(issuer, key)
    audiences: list[str] = []
    client_ids = defaults.client_ids
    required = list(defaults.required_claims)
    opaque = False
    seen: set[str] = set()
    for field_ in fields:
        option = _OPTION.fullmatch(field_)
        if option is None:
            if field_.startswith(("#", ";")):
                # An ini value has no inline comments: its words would be audiences.
                raise ConfigurationError(
                    f"{key}: {field_[:40]!r} starts a comment, but an ini value has none: "
                    f"every word after it would be an audience; put the comment on a "
                    f"line of its own"
                )
            if _looks_like_okta_issuer(field_):
                raise ConfigurationError(
                    f"{key}: {field_[:200]!r} after the issuer looks like another issuer "
                    f"URI, not an audience; put each issuer on a line of its own"
                )
            audiences.append(field_)
            continue
        name, value = option.groups()
        if name not in ISSUER_OPTIONS:
            close = difflib.get_close_matches(name.lower().replace("-", "_"), ISSUER_OPTIONS, n=1)
            hint = (
                f"did you mean {close[0]}?"
                if close
                else (f"the options are {', '.join(ISSUER_OPTIONS)}")
            )
            raise ConfigurationError(
                f"{key}: {name[:40]!r} is not an option of an issuer line; {hint}"
            )
        if name != "require" and name in seen:
            raise ConfigurationError(f"{key}: the option {name} is given twice")
        seen.add(name)
        if name == "client_ids":
            client_ids = tuple(filter(None, value.split(",")))
            if not client_ids:
                raise ConfigurationError(
                    f"{key}: client_ids= needs one or more client ids, separated by commas"
                )
        elif name == "require":
            required.append(_requirement(key, value))
        else:
            if value.lower() not in truthy:
                raise ConfigurationError(
                    f"{key}: opaque= takes only true (leave it out otherwise), got {value[:20]!r}"
                )
            if not defaults.introspection:
                raise ConfigurationError(
                    f"{key}: opaque=true needs token introspection: set "
                    f"okta.introspection_client_id and its credentials"
                )
            if org_server:
                # Its access tokens are JWTs; what it issues otherwise (refresh
                # tokens) introspects as active but must not open the API.
                raise ConfigurationError(
                    f"{key}: opaque=true: the Okta org authorization server's access "
                    f"tokens are JWTs; leave opaque= out of this line"
                )
            opaque = True
    audiences = audiences or list(defaults.audiences)
    if not audiences and defaults.production:
        # The default, api://default, is shared by every API on Okta's default
        # authorization server (RFC 9068 §4, RFC 8707): production must choose.
        where = (
            f"the org authorization server's tokens have {issuer}"
            if org_server
            else "in the Admin Console: Security > API > Authorization Servers, column Audience"
        )
        line_hint = "" if key == "okta.issuer" else f" (or after the issuer on {key})"
        raise ConfigurationError(
            f"okta.audience: is required when okta.environment = production{line_hint}; "
            f"set it to the audience your authorization server puts in this API's "
            f"tokens ({where})"
        )
    # The org authorization server cannot be given an audience: its tokens carry the org's.
    return IssuerSettings(
        issuer=issuer,
        audiences=tuple(dict.fromkeys(audiences))
        or ((issuer,) if org_server else (DEFAULT_AUDIENCE,)),
        client_ids=client_ids,
        required_claims=tuple(required),
        org_server=org_server and defaults.introspection,
        opaque=opaque,
    )


def parse_settings(settings: Mapping[str, Any]) -> OktaSettings:
    """Validate the ``okta.*`` keys of a Pyramid settings mapping."""
    refuse_unknown_keys(settings, PREFIX, SETTING_NAMES)
    lines = _issuer_lines(settings)
    if not lines:
        raise ConfigurationError(
            "okta.issuer: is required; set it to your authorization server's "
            "issuer URI, e.g. https://dev-123456.okta.com/oauth2/default"
        )
    introspection = _introspection(settings)
    environment = str(settings.get(PREFIX + "environment") or "development").strip()
    if environment not in ENVIRONMENTS:
        raise ConfigurationError(
            f"okta.environment: must be development or production, got {environment!r}"
        )
    defaults = _IssuerDefaults(
        audiences=tuple(aslist(settings.get(PREFIX + "audience") or "")),
        client_ids=tuple(aslist(settings.get(PREFIX + "client_ids") or "")),
        required_claims=_required_claims(settings),
        introspection=introspection is not None,
        production=environment == "production",
    )
    # With one line, messages name the key alone, as they always have.
    keys = (
        ["okta.issuer"]
        if len(lines) == 1
        else [f"okta.issuer line {number}" for number in range(1, len(lines) + 1)]
    )
    issuers: list[IssuerSettings] = []
    for key, line in zip(keys, lines):
        parsed = _issuer_line(line, key, defaults)
        for earlier in issuers:
            if earlier.issuer == parsed.issuer:
                raise ConfigurationError(f"{key}: {parsed.issuer} is listed twice")
        issuers.append(parsed)
    opaque = [key for key, parsed in zip(keys, issuers) if parsed.opaque]
    if len(opaque) > 1:
        # An opaque token says nothing of its issuer: it may be sent to one only.
        raise ConfigurationError(
            f"{opaque[1]}: opaque=true is also set on {opaque[0]}; tokens that are not "
            f"JWTs can be introspected at one authorization server only"
        )
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
    first = issuers[0]

    protect_all = _boolean(settings, "protect_all", True)

    realm = str(settings.get(PREFIX + "realm") or "api")
    if '"' in realm or "\\" in realm or not realm.isprintable():
        raise ConfigurationError(
            f"okta.realm: must be printable text without quotes or backslashes, got {realm!r}"
        )

    refresh = _number(
        settings, "jwks_refresh_interval", DEFAULT_JWKS_REFRESH_INTERVAL, minimum=0, maximum=86400
    )
    if 0 < refresh < 10:
        raise ConfigurationError(
            f"okta.jwks_refresh_interval: must be 0 (off) or at least 10 seconds, "
            f"got {settings.get(PREFIX + 'jwks_refresh_interval')!r}"
        )

    replay_size, replay_quota = _replay_store(settings)
    return OktaSettings(
        groups_claim=_claim_name(settings, "groups_claim", DEFAULT_GROUPS_CLAIM),
        required_claims=first.required_claims,
        principals_callback=_callable(settings, "principals_callback"),
        issuer=first.issuer,
        audiences=first.audiences,
        client_ids=first.client_ids,
        leeway=int(
            _number(settings, "leeway", DEFAULT_LEEWAY, minimum=0, maximum=MAX_LEEWAY, integer=True)
        ),
        http_timeout=_number(
            settings, "http_timeout", DEFAULT_HTTP_TIMEOUT, minimum=0.1, maximum=60
        ),
        jwks_refetch_cooldown=_number(
            settings, "jwks_refetch_cooldown", DEFAULT_JWKS_REFETCH_COOLDOWN, minimum=0
        ),
        protect_all=protect_all,
        cors_allowed_origins=_origins(settings),
        cors_max_age=int(
            _number(
                settings,
                "cors_max_age",
                DEFAULT_CORS_MAX_AGE,
                minimum=0,
                maximum=86400,
                integer=True,
            )
        ),
        realm=realm,
        console=_boolean(settings, "console", False),
        jwks_refresh_interval=refresh,
        environment=environment,
        token_cache_size=int(
            _number(
                settings,
                "token_cache_size",
                DEFAULT_TOKEN_CACHE_SIZE,
                minimum=0,
                maximum=MAX_TOKEN_CACHE_SIZE,
                integer=True,
                unit="tokens",
            )
        ),
        dpop=_dpop_mode(settings),
        dpop_algorithms=_dpop_algorithms(settings),
        dpop_max_age=int(
            _number(
                settings,
                "dpop_max_age",
                DEFAULT_DPOP_MAX_AGE,
                minimum=1,
                maximum=MAX_DPOP_MAX_AGE,
                integer=True,
            )
        ),
        dpop_nonce=_boolean(settings, "dpop_nonce", False),
        dpop_nonce_secret=_nonce_secret(settings),
        dpop_replay_store_size=replay_size,
        dpop_replay_key_quota=replay_quota,
        public_url=_public_url(settings),
        public_url_from_proxy=_public_url_from_proxy(settings),
        introspection=introspection,
        introspect_all=_boolean(settings, "introspect_all", False),
        org_server=first.org_server,
        issuers=tuple(issuers),
        shared_store=_shared_store(settings),
        shared_store_timeout=_number(
            settings,
            "shared_store_timeout",
            DEFAULT_SHARED_STORE_TIMEOUT,
            minimum=0.01,
            maximum=MAX_SHARED_STORE_TIMEOUT,
        ),
        metrics=_metrics(settings),
        server_threads=int(
            _number(
                settings,
                "server_threads",
                DEFAULT_SERVER_THREADS,
                minimum=1,
                maximum=MAX_SERVER_THREADS,
                integer=True,
                unit="threads",
            )
        ),
    )
