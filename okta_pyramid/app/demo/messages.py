"""The demonstration message board: reading needs scope ``messages:read``, posting
needs ``messages:write``, ``/api/admin`` needs group ``Admins`` (see the ACL in
:mod:`okta_pyramid.app.demo.resources`). Views only name the permission.

Posting and ``/api/admin`` change or reveal state, so where token introspection is
configured (development.ini) they also need a live token: a revoked token is
refused there at once, while reading keeps the local check only.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from okta_pyramid.errors import json_error
from okta_pyramid.parts import okta_parts

from .resources import ADMINISTER, READ_MESSAGES, WRITE_MESSAGES

log = logging.getLogger(__name__)

#: Longest accepted message text, in characters.
MAX_TEXT_LENGTH = 500
#: Larger request bodies are refused unread (HTTP 413).
MAX_BODY_BYTES = 8 * 1024
#: The board keeps this many messages; posting more drops the oldest.
CAPACITY = 100


@dataclass(frozen=True)
class Message:
    id: int
    text: str
    author: str | None
    created_at: str


class MessageStore:
    """Messages in memory: thread-safe (waitress serves from several threads) and
    bounded, so posting cannot exhaust memory."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._messages: deque[Message] = deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, text: str, author: str | None) -> Message:
        created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            message = Message(next(self._ids), text, author, created_at)
            self._messages.append(message)
        return message

    def all(self) -> list[Message]:
        """Every message kept, oldest first."""
        with self._lock:
            return list(self._messages)

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)


class BadBody(Exception):
    """The request body is not an acceptable message."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def message_text(request: Request) -> str:
    """The ``text`` of a JSON body ``{"text": "..."}``, stripped; or :class:`BadBody`."""
    media_type = request.content_type.lower()  # RFC 9110 §8.3.1: case-insensitive
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise BadBody(
            415,
            "unsupported_media_type",
            "send the message as JSON with 'Content-Type: application/json'",
        )
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BadBody(413, "payload_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes")
    body = request.body_file.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise BadBody(413, "payload_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes")
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadBody(400, "invalid_body", "the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise BadBody(400, "invalid_body", 'the body must be a JSON object: {"text": "..."}')
    if "text" not in document:
        raise BadBody(400, "invalid_body", "the field 'text' is required")
    text = document["text"]
    if not isinstance(text, str):
        raise BadBody(400, "invalid_body", "the field 'text' must be a string")
    text = text.strip()
    if not text:
        raise BadBody(400, "invalid_body", "the field 'text' must not be empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise BadBody(
            400, "invalid_body", f"the field 'text' must be at most {MAX_TEXT_LENGTH} characters"
        )
    return text


@view_config(
    route_name="messages", request_method=("GET", "HEAD"), renderer="json", permission=READ_MESSAGES
)
def list_messages(request: Request) -> dict[str, Any]:
    """The messages on the board, oldest first."""
    store: MessageStore = request.registry.message_store
    return {"messages": [asdict(message) for message in store.all()]}


def post_message(request: Request) -> dict[str, Any] | Response:
    """Add a message; answers 201 with it, or a 4xx JSON error for a bad body."""
    try:
        text = message_text(request)
    except BadBody as exc:
        log.info("message rejected: reason=%s client=%s", exc.error, request.remote_addr)
        return json_error(exc.status, exc.error, exc.description)
    store: MessageStore = request.registry.message_store
    message = store.add(text, request.identity.subject)
    request.response.status = 201
    return asdict(message)


def admin(request: Request) -> dict[str, Any]:
    """For administrators: who they are to the API, and the state of the board."""
    request.response.cache_control = "no-store"
    store: MessageStore = request.registry.message_store
    return {
        "message": "Welcome, administrator.",
        "principals": request.identity.__principals__(),
        "messages": {"count": len(store), "capacity": store.capacity},
    }


def includeme(config: Configurator) -> None:
    """The views that need a live token when introspection is configured."""
    live = okta_parts(config.registry).settings.introspection is not None
    config.add_view(
        post_message,
        route_name="messages",
        request_method="POST",
        renderer="json",
        permission=WRITE_MESSAGES,
        require_active_token=live,
    )
    config.add_view(
        admin,
        route_name="admin",
        request_method=("GET", "HEAD"),
        renderer="json",
        permission=ADMINISTER,
        require_active_token=live,
    )
