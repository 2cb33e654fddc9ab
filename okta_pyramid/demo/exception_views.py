"""JSON answers for requests no view handles, so nothing ever renders a traceback."""
from __future__ import annotations

import logging

from pyramid.exceptions import URLDecodeError
from pyramid.httpexceptions import HTTPException
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config, notfound_view_config

from ..errors import json_error

log = logging.getLogger(__name__)


@notfound_view_config()
def not_found(request: Request) -> Response:
    return json_error(404, "not_found", "no such endpoint")


@exception_view_config(HTTPException)
def http_exception(exc: HTTPException, request: Request) -> Response:
    if exc.code < 400:
        return exc
    return json_error(exc.code, exc.title.lower().replace(" ", "_"), exc.title)


@exception_view_config(URLDecodeError)
def undecodable_path(exc: URLDecodeError, request: Request) -> Response:
    # The path is not UTF-8 (e.g. /api/%ff): a bad request, not a server error.
    return json_error(400, "invalid_request", "the request path is not valid UTF-8")


@exception_view_config(Exception)
def server_error(exc: Exception, request: Request) -> Response:
    # The raw PATH_INFO: decoding request.path may be what failed.
    log.exception("unhandled %s on %s %r", type(exc).__name__, request.method,
                  request.environ.get("PATH_INFO"))
    return json_error(500, "server_error", "the server failed to answer this request")
