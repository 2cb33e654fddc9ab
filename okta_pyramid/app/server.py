"""waitress, with its settings read from the environment where the ini says so.

``[server:main] use = egg:okta_pyramid#waitress`` takes every waitress setting, so
``listen = ${WAITRESS_LISTEN:-*:6543}`` reads the listen address from the
environment. A setting that comes out empty is left to waitress's default, which
lets an ini offer an optional setting such as ``trusted_proxy``.

Before serving it refuses, with one line naming the setting, what waitress would
accept but should not run: ``expose_tracebacks`` (a traceback in a response),
``trusted_proxy`` without ``trusted_proxy_headers`` (every client would appear to
be the proxy, and per-client logs and limits would be blind), and a port beyond
65535 (the system would wrap it: 99999 becomes 34463).

It binds the listening sockets when the server is loaded, before the application
is built, so an address already in use (or one this machine does not have) ends
start-up with one line naming the address and how to choose another.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from typing import Any, NoReturn

from pyramid.exceptions import ConfigurationError
from waitress import serve
from waitress.adjustments import Adjustments, asbool, aslist

from .environ import expand_value

log = logging.getLogger(__name__)

MAX_PORT = 65535
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def refuse_to_start(exc: Exception) -> NoReturn:
    """End a server process that must not start: one log line, exit status 1."""
    log.critical("refusing to start: %s", exc)
    sys.stderr.flush()
    raise SystemExit(1)


def waitress_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Expand ``${NAME}`` references, drop empty values, and check the result."""
    result = {}
    for key, value in settings.items():
        if isinstance(value, str):
            value = expand_value(f"server:main {key}", value).strip()
            if not value:
                continue
        result[key] = value
    if asbool(result.get("expose_tracebacks")):
        raise ConfigurationError(
            "server:main expose_tracebacks: must be false; a traceback in a response "
            "tells an attacker about the code"
        )
    if result.get("trusted_proxy") and not result.get("trusted_proxy_headers"):
        raise ConfigurationError(
            "server:main trusted_proxy: is set, so set trusted_proxy_headers too (e.g. "
            "x-forwarded-for x-forwarded-proto); otherwise every client appears to be "
            "the proxy"
        )
    _check_ports(result)
    for key, value in result.items():
        # Convert one key at a time, so the message names the setting that is wrong.
        cast = Adjustments._param_map.get(key)
        if cast is None:
            continue  # an unknown key: the check of the whole set below names it
        try:
            converted = cast(value)
        except ValueError as exc:
            raise ConfigurationError(f"server:main {key}: {exc} (got {value!r})") from None
        if key in ("threads", "connection_limit") and converted < 1:
            # waitress accepts these, then never answers a request.
            raise ConfigurationError(f"server:main {key}: must be at least 1, got {value!r}")
    try:
        Adjustments(**result)
    except ValueError as exc:
        raise ConfigurationError(f"server:main: {exc}") from None
    return result


def _check_ports(settings: dict[str, Any]) -> None:
    """Refuse a port that is not a number from 0 to 65535 (0: any free port)."""
    if "port" in settings:
        _check_port("port", str(settings["port"]).strip())
    for address in aslist(settings.get("listen", "")):
        _host, colon, port = address.rpartition(":")
        if colon and "]" not in port:
            _check_port("listen", port)


def _check_port(key: str, port: str) -> None:
    if not (port.isascii() and port.isdigit() and int(port) <= MAX_PORT):
        raise ConfigurationError(
            f"server:main {key}: the port {port[:12]!r} is not a number from 0 to {MAX_PORT}"
        )


def _address(sockaddr: tuple[Any, ...]) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listen_hint(global_conf: dict[str, Any], raw_listen: Any) -> str:
    """Where this deployment sets its address: the ini's http_port, a variable, listen."""
    if "http_port" in global_conf:
        ini = os.path.basename(str(global_conf.get("__file__") or "")) or "the ini file"
        return f"choose another port with http_port in {ini}"
    names = _VARIABLE.findall(str(raw_listen or ""))
    if names:
        return f"choose another address with the environment variable {names[0]}"
    return "choose another address with listen in [server:main]"


def bind_sockets(kw: dict[str, Any], hint: str) -> list[socket.socket]:
    """Bind the addresses of ``listen`` as waitress would, refusing one that is taken."""
    adj = Adjustments(**kw)
    if adj.unix_socket or adj.sockets:
        return []  # waitress binds those itself
    sockets: list[socket.socket] = []
    try:
        for family, socktype, proto, sockaddr in adj.listen:
            sock = socket.socket(family, socktype, proto)
            sockets.append(sock)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                raise ConfigurationError(
                    f"server:main listen: cannot listen on {_address(sockaddr)} ({reason}); "
                    f"stop what uses it, or {hint}"
                ) from None
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class WaitressServer:
    """The sockets bound when the server was loaded, served by waitress when called."""

    def __init__(self, sockets: list[socket.socket], settings: dict[str, Any]) -> None:
        self.sockets = sockets
        self.settings = settings

    def __call__(self, app: Any) -> int:
        kw = dict(self.settings)
        if self.sockets:
            for key in ("listen", "host", "port"):
                kw.pop(key, None)
            kw["sockets"] = self.sockets
        serve(app, **kw)
        return 0

    def close(self) -> None:
        """Release the sockets of a server that will not serve."""
        for sock in self.sockets:
            sock.close()


def server_factory(global_conf: dict[str, Any], **settings: Any) -> WaitressServer:
    """``paste.server_factory`` entry point: a callable that serves an app with waitress.

    The settings are checked and the addresses bound here, when the server is
    loaded and before the application is built, so a refusal ends the process
    with one line and a non-zero status (``pserve`` would report a failure while
    serving as an exit with status 0, and a bind error as a traceback).
    """
    try:
        kw = waitress_settings(settings)
        sockets = bind_sockets(kw, _listen_hint(global_conf, settings.get("listen")))
    except ConfigurationError as exc:
        refuse_to_start(exc)
    return WaitressServer(sockets, kw)
