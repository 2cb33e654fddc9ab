"""JSON answers for requests no view handles, so nothing ever renders a traceback."""

from __future__ import annotations

import logging

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config

from okta_pyramid.errors import add_json_error_views, json_error

log = logging.getLogger(__name__)


@exception_view_config(Exception)
def server_error(exc: Exception, request: Request) -> Response:
    # The raw PATH_INFO: decoding request.path may be what failed.
    log.error(
        "unhandled %s on %s %r",
        type(exc).__name__,
        request.method,
        request.environ.get("PATH_INFO"),
        exc_info=exc,  # an exception view runs after the handler: name the exception
    )
    return json_error(500, "server_error", "the server failed to answer this request")


def includeme(config: Configurator) -> None:
    """The JSON 404, HTTP-error and undecodable-path answers of the add-on's errors
    module; ``server_error`` comes with the scan."""
    add_json_error_views(config)
