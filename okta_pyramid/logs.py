"""Log lines a collector can parse, each tied to the request that caused it.

- Every request gets a request id: a sane inbound ``X-Request-ID`` (set by a proxy
  or the caller) is kept, anything else is replaced by a fresh one. The id is echoed
  in the response's ``X-Request-ID`` header and attached to every log line written
  while the request is handled.
- :class:`JSONFormatter` writes one JSON object per line (``time``, ``level``,
  ``logger``, ``message``, ``request_id``); production.ini uses it.

What is logged about a request is decided where it is logged: the security policy
logs a rejected token's reason code and the client address, never the token.
"""

from __future__ import annotations

import contextvars
import datetime
import itertools
import json
import logging
import re
import secrets
from collections.abc import Callable

from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.tweens import INGRESS

log = logging.getLogger(__name__)

HEADER = "X-Request-ID"
ENVIRON_KEY = "okta_pyramid.request_id"
# What proxies and tracing systems send (UUIDs, hex, Heroku/ALB ids); anything else,
# such as control characters or a 10 kB header, is not repeated into logs.
_SANE_ID = re.compile(r"[A-Za-z0-9._:=+/@-]{1,128}")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "okta_pyramid_request_id", default=None
)


# A random per-process prefix and a counter: unique ids without asking the kernel
# for randomness on every request (uuid4 costs a getrandom call per request).
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(1)


def new_request_id() -> str:
    """A fresh request id: 32 hex digits, unique within and across processes."""
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def current_request_id() -> str | None:
    """The id of the request being handled by this thread, if any."""
    return _current.get()


def request_id(request: Request) -> str:
    """The request's id (taken from ``X-Request-ID`` when sane, else generated)."""
    rid = request.environ.get(ENVIRON_KEY)
    if rid is None:
        inbound = request.headers.get(HEADER, "")
        rid = inbound if _SANE_ID.fullmatch(inbound) else new_request_id()
        request.environ[ENVIRON_KEY] = rid
    return rid


class RequestIdTween:
    """Tags the request, its log lines and its response with the request id."""

    def __init__(self, handler: Callable[[Request], Response], registry: Registry) -> None:
        self.handler = handler

    def __call__(self, request: Request) -> Response:
        rid = request_id(request)
        token = _current.set(rid)
        try:
            response = self.handler(request)
        finally:
            _current.reset(token)
        response.headers[HEADER] = rid
        return response


class JSONFormatter(logging.Formatter):
    """One JSON object per line; newlines in messages cannot forge extra lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = current_request_id()
        if rid is not None:
            entry["request_id"] = rid
        if record.threadName:
            entry["thread"] = record.threadName
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def includeme(config: Configurator) -> None:
    # Outermost, so every answer (preflights and error views included) carries the id.
    config.add_tween("okta_pyramid.logs.RequestIdTween", under=INGRESS)
