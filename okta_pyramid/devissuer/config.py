"""The ``devissuer.*`` settings of the development issuer, validated at start-up.

A wrong value raises :class:`pyramid.exceptions.ConfigurationError` whose message
starts with the key. The issuer URL itself is ``okta.issuer``: the resource server
and the development issuer must agree on it, so it is configured once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from pyramid.exceptions import ConfigurationError

from ..settings import is_loopback_host, parse_settings, refuse_unknown_keys

PREFIX = "devissuer."
DEFAULT_TOKEN_LIFETIME = 3600
# Okta lets an access token live between 5 minutes and 1 day; a shorter minimum
# is allowed here so that expiry can be tried out locally.
MIN_TOKEN_LIFETIME = 60
MAX_TOKEN_LIFETIME = 86400
DEFAULT_KEYS_DIR = ".devissuer"
DEFAULT_KEEP_KEYS = 2
#: Every ``devissuer.*`` key the development issuer reads; any other one is refused.
SETTING_NAMES = frozenset(
    {
        "devissuer.clients",
        "devissuer.token_lifetime",
        "devissuer.keys_dir",
        "devissuer.keep_keys",
        "devissuer.audience",
    }
)
#: RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}
#: The values of a client line's ``dpop=`` option: ``required`` is Okta's "Require
#: Demonstrating Proof of Possession (DPoP) header in token requests" (RFC 9449 §5.2
#: ``dpop_bound_access_tokens``); ``allowed``, the default, binds a token only when
#: the request carries a proof.
DPOP_OPTIONS = ("allowed", "required")
_LINE_SYNTAX = (
    "'client_id secret scope [scope ...] [dpop=required] [redirect=URI ...]' "
    "(secret '-' for a public client)"
)
#: The secret field of a public client (RFC 6749 §2.1): it has no secret, and proves
#: itself with PKCE alone (RFC 7636). Longer than no secret at all, so a line with a
#: missing field is still caught.
PUBLIC_SECRET = "-"  # noqa: S105 - the mark of no secret
#: The hosts of a loopback redirect URI, whose port may vary (RFC 8252 §7.3: "the
#: authorization server MUST allow any port to be specified at the time of the
#: request for loopback IP redirect URIs"). ``localhost`` is not one (§8.3).
LOOPBACK_REDIRECT_HOSTS = ("127.0.0.1", "[::1]")


@dataclass(frozen=True)
class Client:
    """A client of the development issuer.

    A confidential client (with a secret) may use the client-credentials grant; a
    client with redirect URIs may use the authorization-code grant with PKCE and
    refresh tokens (RFC 6749 §4.1, RFC 7636). A public client (no secret, RFC 6749
    §2.1) has redirect URIs only.
    """

    client_id: str
    secret: str
    scopes: frozenset[str]
    #: Every token request must carry a DPoP proof (RFC 9449 §5.2).
    dpop_required: bool = False
    #: The registered redirect URIs, exact strings (RFC 6749 §3.1.2).
    redirect_uris: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        """A public client has no secret to authenticate with (RFC 6749 §2.1)."""
        return self.secret == PUBLIC_SECRET

    def redirect_uri_allowed(self, uri: str) -> bool:
        """Whether ``uri`` is one of the registered redirect URIs: compared as exact
        strings (RFC 6749 §3.1.2.2; OAuth 2.0 Security BCP), except that a loopback
        IP redirect URI (``http://127.0.0.1/...``, ``http://[::1]/...``) matches with
        any port (RFC 8252 §7.3)."""
        if uri in self.redirect_uris:
            return True
        loose = _without_loopback_port(uri)
        return loose is not None and loose in {
            _without_loopback_port(registered) for registered in self.redirect_uris
        }

    def trusts_origin(self, origin: str) -> bool:
        """Whether a web page of ``origin`` may use this client from a browser (Okta's
        Trusted Origins): a public client trusts its redirect URIs' origins, and any
        port of a loopback IP redirect URI's host (RFC 8252 §7.3)."""
        return self.public and origin_key(origin) in {origin_key(uri) for uri in self.redirect_uris}

    def __repr__(self) -> str:  # never show the secret in a log line or traceback
        return (
            f"Client(client_id={self.client_id!r}, public={self.public!r}, "
            f"scopes={sorted(self.scopes)!r}, dpop_required={self.dpop_required!r}, "
            f"redirect_uris={list(self.redirect_uris)!r})"
        )


def origin_key(uri: str) -> str | None:
    """The RFC 6454 origin of ``uri`` as ``scheme://host[:port]`` (lowercase, no
    default port), with no port at all for a loopback IP host; ``None`` if ``uri``
    has no http(s) origin."""
    try:
        parts = urlsplit(uri.lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.netloc.rsplit("@", 1)[-1]
    host = host.rsplit(":", 1)[0] if port is not None else host
    if parts.scheme == "http" and host in LOOPBACK_REDIRECT_HOSTS:
        return f"http://{host}"
    if port is None or port == {"http": 80, "https": 443}[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _without_loopback_port(uri: str) -> str | None:
    """``uri`` with its port removed if it is an ``http`` loopback IP URI, else
    ``None``."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if parts.scheme != "http" or host not in LOOPBACK_REDIRECT_HOSTS:
        return None
    return parts._replace(netloc=host).geturl()


@dataclass(frozen=True)
class DevIssuerSettings:
    """Validated ``devissuer.*`` settings, plus the issuer and audience they serve."""

    issuer: str
    audience: str
    clients: tuple[Client, ...]
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    keys_dir: str = DEFAULT_KEYS_DIR
    keep_keys: int = DEFAULT_KEEP_KEYS

    @property
    def path(self) -> str:
        """The issuer's path on this host, e.g. ``/oauth2/default``."""
        return urlsplit(self.issuer).path.rstrip("/")

    def client(self, client_id: str) -> Client | None:
        for client in self.clients:
            if client.client_id == client_id:
                return client
        return None


def is_scope_token(value: str) -> bool:
    """True if ``value`` is one RFC 6749 §3.3 scope token."""
    return bool(value) and all(c in _SCOPE_CHARS for c in value)


def _clients(settings: Mapping[str, Any]) -> tuple[Client, ...]:
    key = PREFIX + "clients"
    lines = [line.split() for line in str(settings.get(key) or "").splitlines()]
    # A line that starts with an option (redirect=URI ...) continues the client above,
    # so a client with long redirect URIs can take several lines.
    entries: list[list[str]] = []
    for line in filter(None, lines):
        if "=" in line[0]:
            if not entries:
                raise ConfigurationError(
                    f"{key}: the first line must start with a client id, got an option "
                    f"{line[0][:40]!r}"
                )
            entries[-1].extend(line)
        else:
            entries.append(line)
    clients: list[Client] = []
    for fields in entries:
        if len(fields) < 3:
            raise ConfigurationError(
                f"{key}: each line must be {_LINE_SYNTAX}, got a line with {len(fields)} field(s)"
            )
        client_id, secret, *rest = fields
        # A field holding "=" is an option (dpop=required), so no scope here holds one.
        scopes = [field for field in rest if "=" not in field]
        options: dict[str, str] = {}
        redirect_uris: list[str] = []
        for name, value in (field.split("=", 1) for field in rest if "=" in field):
            if name == "redirect":  # the one option given once per value
                redirect_uris.append(_redirect_uri(key, client_id, value, redirect_uris))
                continue
            if name in options:
                raise ConfigurationError(
                    f"{key}: client {client_id!r} sets the option {name[:40]!r} twice"
                )
            options[name] = value
        if not scopes:
            raise ConfigurationError(
                f"{key}: client {client_id!r} has no scope; each line must be {_LINE_SYNTAX}"
            )
        bad = [s for s in scopes if not is_scope_token(s)]
        if bad:
            raise ConfigurationError(f"{key}: {bad[0]!r} is not a valid scope")
        if any(c.client_id == client_id for c in clients):
            raise ConfigurationError(f"{key}: client {client_id!r} is listed twice")
        if secret == PUBLIC_SECRET:
            if not redirect_uris:
                raise ConfigurationError(
                    f"{key}: public client {client_id!r} (secret '-') needs at least one "
                    "redirect=URI: it can only sign users in"
                )
        elif len(secret) < 8:
            raise ConfigurationError(
                f"{key}: the secret of client {client_id!r} must have at least 8 characters "
                "('-' for a public client)"
            )
        clients.append(
            Client(
                client_id,
                secret,
                frozenset(scopes),
                dpop_required=_dpop_option(key, client_id, options),
                redirect_uris=tuple(redirect_uris),
            )
        )
    if not clients:
        raise ConfigurationError(f"{key}: is required; one line per client: {_LINE_SYNTAX}")
    return tuple(clients)


def _redirect_uri(key: str, client_id: str, value: str, seen: list[str]) -> str:
    """A redirect URI as RFC 6749 §3.1.2 allows one: absolute, http(s), no fragment."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{key}: client {client_id!r}: redirect={value[:80]!r} is not an absolute http(s) URI"
        )
    if "#" in value:
        raise ConfigurationError(
            f"{key}: client {client_id!r}: redirect={value[:80]!r} has a fragment, "
            "which a redirect URI must not have (RFC 6749 §3.1.2)"
        )
    if value in seen:
        raise ConfigurationError(f"{key}: client {client_id!r} lists redirect={value[:80]!r} twice")
    return value


def _dpop_option(key: str, client_id: str, options: dict[str, str]) -> bool:
    unknown = sorted(set(options) - {"dpop"})
    if unknown:
        raise ConfigurationError(
            f"{key}: client {client_id!r} has an unknown option {unknown[0][:40]!r}; "
            "the options are dpop=required and redirect=URI (a scope cannot contain '=')"
        )
    value = options.get("dpop", "allowed")
    if value not in DPOP_OPTIONS:
        raise ConfigurationError(
            f"{key}: client {client_id!r}: dpop must be one of {', '.join(DPOP_OPTIONS)}, "
            f"got {value[:40]!r}"
        )
    return value == "required"


def _integer(
    settings: Mapping[str, Any], name: str, default: int, minimum: int, maximum: int
) -> int:
    key = PREFIX + name
    raw = settings.get(key)
    if raw is None or not str(raw).strip():
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigurationError(f"{key}: must be a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"{key}: must be between {minimum} and {maximum}, got {raw!r}")
    return value


def check_loopback_issuer(issuer: str) -> None:
    """Refuse to mint tokens for anything but an issuer on this machine."""
    if not is_loopback_host(urlsplit(issuer).hostname):
        raise ConfigurationError(
            "okta.issuer: the development issuer (okta_pyramid.devissuer) only runs "
            "when okta.issuer is a loopback URL such as "
            f"http://localhost:6543/oauth2/default; got {issuer!r}. Remove "
            "okta_pyramid.devissuer from pyramid.includes to use a real issuer."
        )


def parse_devissuer_servers(settings: Mapping[str, Any]) -> tuple[DevIssuerSettings, ...]:
    """Every authorization server the development issuer serves: the first
    ``okta.issuer`` line (:func:`parse_devissuer_settings`), then each further line
    on the same origin (scheme, host and port: this app's), such as
    ``http://localhost:6543/oauth2/partners``. Each further one mints tokens for its
    line's first audience, with its own keys in a folder of ``devissuer.keys_dir``
    named after its path; the clients are the same. Lines elsewhere (a real issuer)
    are left alone."""
    first = parse_devissuer_settings(settings)
    okta = parse_settings(settings)
    origin = urlsplit(first.issuer)[:2]
    servers = [first]
    for number, line in enumerate(okta.issuers[1:], start=2):
        if urlsplit(line.issuer)[:2] != origin:
            continue
        path = urlsplit(line.issuer).path.rstrip("/")
        for server in servers:
            if (path + "/").startswith(server.path + "/") or (server.path + "/").startswith(
                path + "/"
            ):
                raise ConfigurationError(
                    f"okta.issuer line {number}: the development issuer cannot serve "
                    f"{path or '/'} beside {server.path or '/'}: one path lies within the "
                    f"other; give each authorization server a path of its own, such as "
                    f"/oauth2/partners"
                )
        folder = path.strip("/").replace("/", "_") or "root"
        servers.append(
            replace(
                first,
                issuer=line.issuer,
                audience=line.audiences[0],
                keys_dir=os.path.join(first.keys_dir, folder),
            )
        )
    return tuple(servers)


def parse_devissuer_settings(settings: Mapping[str, Any]) -> DevIssuerSettings:
    """Validate the ``devissuer.*`` keys (and ``okta.issuer``, which must be loopback)."""
    okta = parse_settings(settings)
    refuse_unknown_keys(settings, PREFIX, SETTING_NAMES)
    check_loopback_issuer(okta.issuer)
    audience = str(settings.get(PREFIX + "audience") or "").strip() or okta.audiences[0]
    if audience not in okta.audiences:
        raise ConfigurationError(
            f"{PREFIX}audience: {audience!r} is not one of okta.audience, so this "
            "API would reject every token the development issuer mints"
        )
    keys_dir = str(settings.get(PREFIX + "keys_dir") or "").strip() or DEFAULT_KEYS_DIR
    return DevIssuerSettings(
        issuer=okta.issuer,
        audience=audience,
        clients=_clients(settings),
        token_lifetime=_integer(
            settings,
            "token_lifetime",
            DEFAULT_TOKEN_LIFETIME,
            MIN_TOKEN_LIFETIME,
            MAX_TOKEN_LIFETIME,
        ),
        keys_dir=os.path.abspath(keys_dir),
        keep_keys=_integer(settings, "keep_keys", DEFAULT_KEEP_KEYS, 1, 10),
    )
