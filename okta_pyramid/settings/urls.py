"""The URLs of the settings: read without quoting a password, and the issuer's rules."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

from pyramid.exceptions import ConfigurationError

from ..tokens.urls import is_loopback_host

# Hosts of Okta-run orgs; an issuer at the root of one is the org authorization server.
OKTA_DOMAINS = ("okta.com", "oktapreview.com", "okta-emea.com", "okta-gov.com", "okta.mil")


# An issuer path of the shape Okta gives custom authorization servers: /oauth2/<id>.
_OKTA_SERVER_PATH = re.compile(r"/oauth2/[^/]+/?")


def _is_okta_host(host: str | None) -> bool:
    host = (host or "").lower()
    return any(host == domain or host.endswith("." + domain) for domain in OKTA_DOMAINS)


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


def looks_like_okta_issuer(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and _is_okta_host(parts.hostname)
        and bool(_OKTA_SERVER_PATH.fullmatch(parts.path))
    )
