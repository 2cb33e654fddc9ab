"""Permission names used by views, and the ACL that grants them.

Views name these constants instead of string literals, so an audit of who may do
what starts here. An ACL grants a permission to principals
(:mod:`okta_pyramid.principals`): ``(Allow, scope("messages:read"), READ_MESSAGES)``
lets a token carrying that scope read messages.
"""
from __future__ import annotations

from typing import Any

from pyramid.authorization import (
    ALL_PERMISSIONS,
    ACLHelper,
    Allow,
    Authenticated,
    Deny,
    Everyone,
)

from .principals import group, scope

__all__ = ["AUTHENTICATED", "READ_MESSAGES", "WRITE_MESSAGES", "ADMINISTER", "Root",
           "group", "scope", "scopes_granting"]

#: Any caller with a valid access token.
AUTHENTICATED = "authenticated"

# The demonstration API's permissions; its ACL (okta_pyramid.demo.routes) grants them.
#: Read the message board: tokens with scope ``messages:read``.
READ_MESSAGES = "messages.read"
#: Post to the message board: tokens with scope ``messages:write``.
WRITE_MESSAGES = "messages.write"
#: The administration endpoint: callers in the group ``Admins``.
ADMINISTER = "admin"

_SCOPE_PREFIX = scope("")


class Root:
    """Root of the resource tree: the ACL that maps principals to permissions."""

    __acl__ = [
        (Allow, Authenticated, AUTHENTICATED),
        (Deny, Everyone, ALL_PERMISSIONS),
    ]

    def __init__(self, request: object) -> None:
        self.request = request


def scopes_granting(context: Any, permission: str) -> list[str]:
    """The scopes that, by the ACLs of ``context`` and its lineage, grant ``permission``.

    This is what a 403 names in its ``scope`` attribute (RFC 6750 §3). When several
    scopes each grant the permission, all are listed: a token with every one of them
    certainly passes.
    """
    allowed = ACLHelper().principals_allowed_by_permission(context, permission)
    return sorted(
        principal[len(_SCOPE_PREFIX):]
        for principal in allowed
        if isinstance(principal, str) and principal.startswith(_SCOPE_PREFIX)
    )
