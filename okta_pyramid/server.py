"""waitress, with its settings read from the environment where the ini says so.

``[server:main] use = egg:okta_pyramid#waitress`` takes every waitress setting, so
``listen = ${WAITRESS_LISTEN:-*:6543}`` reads the listen address from the
environment. A setting that comes out empty is left to waitress's default, which
lets an ini offer an optional setting such as ``trusted_proxy``.

Before serving it refuses, with one line naming the setting, what waitress would
accept but should not run: ``expose_tracebacks`` (a traceback in a response), and
``trusted_proxy`` without ``trusted_proxy_headers`` (every client would appear to
be the proxy, and per-client logs and limits would be blind).
"""
from __future__ import annotations

import logging
import sys
from typing import Any, Callable, NoReturn

from pyramid.exceptions import ConfigurationError
from waitress import serve
from waitress.adjustments import Adjustments, asbool

from .environ import expand_value

log = logging.getLogger(__name__)


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


def server_factory(global_conf: dict[str, Any], **settings: Any) -> Callable[[Any], int]:
    """``paste.server_factory`` entry point: a function that serves an app with waitress.

    The settings are checked here, when the server is loaded and before the
    application is built, so a refusal ends the process with a non-zero status.
    """
    try:
        kw = waitress_settings(settings)
    except ConfigurationError as exc:
        refuse_to_start(exc)

    def serve_app(app: Any) -> int:
        serve(app, **kw)
        return 0

    return serve_app
