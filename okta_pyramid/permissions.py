"""Permission names used by views, and the ACL that grants them.

Views name these constants instead of string literals, so an audit of who may do
what starts here.
"""
from __future__ import annotations

from pyramid.authorization import ALL_PERMISSIONS, Allow, Authenticated, Deny, Everyone

#: Any caller with a valid access token.
AUTHENTICATED = "authenticated"


class Root:
    """Root of the resource tree: the ACL that maps principals to permissions."""

    __acl__ = [
        (Allow, Authenticated, AUTHENTICATED),
        (Deny, Everyone, ALL_PERMISSIONS),
    ]

    def __init__(self, request: object) -> None:
        self.request = request
