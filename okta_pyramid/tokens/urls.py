"""Host and authority helpers (RFC 3986)."""

from __future__ import annotations

import ipaddress
import re

__all__ = ["is_loopback_host", "split_authority"]

# RFC 3986 §3.2.2: reg-name, which an IPv4address also matches; never empty in an
# http(s) URI (RFC 9110 §4.2.1). ASCII classes only: no other character is a host's.
_REG_NAME = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
# RFC 3986 §3.2.2 IPvFuture, its "v" in lower case as the DPoP htu has always
# been read (a host is compared in lower case).
_IPV_FUTURE = re.compile(r"v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+")
# RFC 3986 §3.2.3 port = *DIGIT, held to TCP's range (five digits, then the value).
_PORT = re.compile(r"[0-9]{1,5}")


def split_authority(authority: str) -> tuple[str, str]:
    """The host and the port of an RFC 3986 authority without userinfo,
    ``host [ ":" port ]``, each as written: ``("[::1]", "8080")``, ``("api", "")``.

    The host is a reg-name or IPv4 address (not empty, as in an http(s) URI), or an
    IPv6 address (without a zone identifier) or IPvFuture in brackets, which are
    kept; the port is empty or one to five digits, at most 65535.

    Raises :class:`ValueError` ("not a host", "not an IP literal" or "not a port")
    for anything else, userinfo included (the host grammar has no ``@``).
    """
    if authority.startswith("["):
        literal, bracket, port = authority[1:].partition("]")
        if not bracket:
            raise ValueError("not an IP literal")
        if port:
            if port[0] != ":":
                raise ValueError("not a host")
            port = port[1:]
        if not _is_ip_literal(literal):
            raise ValueError("not an IP literal")
        host = authority[: len(literal) + 2]
    else:
        host, _, port = authority.partition(":")
        if _REG_NAME.fullmatch(host) is None:
            raise ValueError("not a host")
    if port and (_PORT.fullmatch(port) is None or int(port) > 65535):
        raise ValueError("not a port")
    return host, port


def _is_ip_literal(literal: str) -> bool:
    # IPv6address or IPvFuture; RFC 3986 has no zone identifier ("%eth0"), which
    # Python's ipaddress would accept.
    if _IPV_FUTURE.fullmatch(literal) is not None:
        return True
    if "%" in literal or not literal.isascii():
        return False
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return True


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
