"""The okta_pyramid application: the add-on, the demonstration API and the server.

Everything here is the application's choice, not the add-on's: the request-id and
JSON-log tween, the health checks, the demonstration views, environment
expansion of the ini's values and the waitress start-up. An application of your
own includes the add-on (``config.include("okta_pyramid")``) and picks from these
what it wants.
"""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.router import Router

from .environ import expand_settings
from .server import refuse_to_start

__all__ = ["main"]


def main(global_config: dict[str, Any], **settings: Any) -> Router:
    """The WSGI application that ``pserve development.ini`` serves.

    Setting values may name environment variables (``${OKTA_ISSUER}``, see
    :mod:`okta_pyramid.app.environ`). Under ``pserve`` a refused configuration ends
    the process with one log line naming the setting; called from Python, it raises
    :class:`~pyramid.exceptions.ConfigurationError`.
    """
    try:
        with Configurator(settings=expand_settings(settings)) as config:
            config.include("okta_pyramid")
            config.include("okta_pyramid.logs")
            config.include("okta_pyramid.health")
            config.include(".demo")
        return config.make_wsgi_app()
    except ConfigurationError as exc:
        if global_config.get("__script__") == "pserve":
            # An operator reads one line naming the setting, not a traceback.
            refuse_to_start(exc)
        raise
