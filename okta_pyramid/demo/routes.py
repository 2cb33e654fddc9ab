"""The application's routes, and the ACL of its demonstration endpoints."""
from __future__ import annotations

from pyramid.authorization import Allow
from pyramid.config import Configurator

from ..permissions import ADMINISTER, READ_MESSAGES, WRITE_MESSAGES, Root, group, scope
from .messages import MessageStore


class ApiResource(Root):
    """The context of the scope- and group-protected endpoints.

    Its ACL is the whole authorization policy of those endpoints: which scope or
    group grants which permission. The root's entries follow, ending with a deny.
    """

    __acl__ = [
        (Allow, scope("messages:read"), READ_MESSAGES),
        (Allow, scope("messages:write"), WRITE_MESSAGES),
        (Allow, group("Admins"), ADMINISTER),
        *Root.__acl__,
    ]


def includeme(config: Configurator) -> None:
    config.add_route("hello", "/api/hello")
    config.add_route("whoami", "/api/whoami")
    config.add_route("messages", "/api/messages", factory=ApiResource)
    config.add_route("admin", "/api/admin", factory=ApiResource)
    config.registry.message_store = MessageStore()
