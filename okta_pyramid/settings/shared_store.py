"""``okta.shared_store``: the Redis URL of the state the processes share
(docs/deployment.md: one server, Sentinel's primary or a cluster), checked, with its
TLS client certificate, before the first request needs it; and
``okta.shared_store_min_replicas``."""

from __future__ import annotations

import importlib.util
import os
import re
import ssl
from urllib.parse import SplitResult, parse_qs, urlsplit

from pyramid.exceptions import ConfigurationError

from ..tokens.shared import CLUSTER_SCHEMES, MAX_MIN_REPLICAS, SENTINEL_SCHEMES, split_servers
from ..tokens.shared import URL_OPTIONS as SHARED_STORE_URL_OPTIONS
from .urls import display_url, split_url
from .values import Number, Values, text


def shared_store(values: Values, key: str) -> str | None:
    """The ``okta.shared_store`` Redis URL, or ``None``."""
    raw = text(values.settings.get(key))
    if raw is None:
        return None
    if raw.partition("://")[0].lower() in SENTINEL_SCHEMES + CLUSTER_SCHEMES:
        return _servers(raw, key)
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
            f"(TLS), redis+sentinel://host:26379,host:26379/service_name or "
            f"redis+cluster://host:6379,host:6379 (rediss+ for TLS), got {shown!r}"
        )
    if parts.path.strip("/") and not parts.path.strip("/").isdigit():
        raise ConfigurationError(
            f"{key}: the path names the database, a number such as /0; got {shown!r}"
        )
    if parts.fragment:
        raise ConfigurationError(f"{key}: must not contain a fragment, got {shown!r}")
    options = _url_options(parts, key)
    _client_certificate(
        key, options.get("ssl_certfile", [None])[0], options.get("ssl_keyfile", [None])[0]
    )
    _redis_py(key)
    return raw


def _servers(raw: str, key: str) -> str:
    """A ``redis+sentinel://`` or ``redis+cluster://`` URL (``rediss+`` for TLS)."""
    try:
        servers = split_servers(raw)
    except ValueError as exc:
        # The core's messages quote no part of the URL but its scheme and hosts.
        raise ConfigurationError(f"{key}: {exc}") from None
    files = dict(servers.options)
    _url_options(
        urlsplit(f"{'rediss' if servers.tls else 'redis'}://x/?{raw.partition('?')[2]}"), key
    )
    _client_certificate(key, files.get("ssl_certfile"), files.get("ssl_keyfile"))
    _redis_py(key)
    return raw


def _redis_py(key: str) -> None:
    if importlib.util.find_spec("redis") is None:
        raise ConfigurationError(
            f"{key}: needs redis-py, which is not installed: pip install 'okta_pyramid[redis]'"
        )


def shared_store_min_replicas(values: Values, key: str) -> int:
    """How many replicas must acknowledge a DPoP proof's mark (``WAIT``): 0 by
    default; more only with ``okta.shared_store``."""
    replicas = int(
        Number(0, minimum=0, maximum=MAX_MIN_REPLICAS, integer=True, unit="replicas")(values, key)
    )
    if replicas and values["shared_store"] is None:
        raise ConfigurationError(
            f"{key}: replicas of the shared store are waited for only with okta.shared_store"
        )
    return replicas


def _url_options(parts: SplitResult, key: str) -> dict[str, list[str]]:
    """The options of the store's URL: only the files of TLS, each readable."""
    # redis-py lets a URL option win over what the store sets: a timeout, the
    # database, certificate checks (ssl_cert_reqs=none). Only TLS's files may be named.
    options = parse_qs(parts.query, keep_blank_values=True)
    for name, files in options.items():
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
        if len(files) != 1 or not os.path.isfile(files[0]) or not os.access(files[0], os.R_OK):
            raise ConfigurationError(f"{key}: {name} must name one readable file")
    return options


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
