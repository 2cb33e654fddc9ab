"""URLs and their parts (RFC 3986): the authority, normalization, loopback hosts."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote

__all__ = ["is_loopback_host", "normalize_url", "split_authority"]

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


# -- normalization: RFC 3986 §6.2.2 and §6.2.3 --------------------------------------

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)(?:[?#].*)?", re.S)
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_PCT_LOWER = re.compile(r"%[0-9a-f]{2}")
_PATH = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters a path may hold as they are; the rest is percent-encoded on the request's side.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


def _percent(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def normalize_url(url: str, *, lenient: bool = False) -> str:
    """The http(s) ``url`` without query and fragment, normalized as RFC 3986 §6.2.2
    and §6.2.3 do: scheme and host in lower case, percent-encoded unreserved
    characters decoded and other percent-encodings in upper case, dot segments
    removed, an empty path made ``/``, the scheme's default port (or an empty
    port) removed.

    Raises :class:`ValueError` for anything that is not an absolute http(s) URL with
    a host, for characters a URI cannot hold, and so for userinfo (the host grammar
    has no ``@``; RFC 9110 §4.2.4 deprecates userinfo in http(s) URIs).
    ``lenient`` percent-encodes (as UTF-8) such characters in the path instead: for
    the request's own URL, which the server rebuilt from raw bytes.
    """
    parts = _URL.fullmatch(url)
    if parts is None:
        raise ValueError("not an absolute URL with an authority")
    scheme, authority, path = parts.groups()
    scheme = scheme.lower()
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port is None:
        raise ValueError("not an http or https URL")
    host, port = split_authority(authority)
    port = str(int(port)) if port else ""
    host = _PCT_LOWER.sub(lambda m: m.group(0).upper(), _PCT.sub(_percent, host).lower())
    if _PATH.fullmatch(path) is None:
        if not lenient:
            raise ValueError("the path holds characters a URI cannot")
        path = quote(path, safe=_PATH_SAFE)
        if _PATH.fullmatch(path) is None:
            raise ValueError("the path holds a stray %")
    path = _remove_dot_segments(_PCT.sub(_percent, path)) or "/"
    netloc = host if port in ("", default_port) else f"{host}:{port}"
    return f"{scheme}://{netloc}{path}"


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 §5.2.4, for the absolute path (or empty path) of a URL with authority.
    if "." not in path:
        return path
    segments = path.split("/")
    out: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    result = "/" + "/".join(out)
    if segments[-1] in (".", "..") and not result.endswith("/"):
        result += "/"
    return result


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
