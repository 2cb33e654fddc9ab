"""The demonstration API's permissions and the ACL that grants them.

Its views name these constants instead of string literals, so an audit of who may
do what starts here.
"""

from __future__ import annotations

from typing import ClassVar

from pyramid.authorization import Allow

from okta_pyramid.permissions import ACE, DENY_BEARER_TOKENS, Root
from okta_pyramid.principals import group, scope

#: Read the message board: tokens with scope ``messages:read``.
READ_MESSAGES = "messages.read"
#: Post to the message board: tokens with scope ``messages:write``.
WRITE_MESSAGES = "messages.write"
#: The administration endpoint: callers in the group ``Admins``.
ADMINISTER = "admin"


class ApiResource(Root):
    """The context of the scope- and group-protected endpoints.

    Its ACL is the whole authorization policy of those endpoints: which scope or
    group grants which permission. The root's entries follow, ending with a deny.
    """

    __acl__: ClassVar[tuple[ACE, ...]] = (
        (Allow, scope("messages:read"), READ_MESSAGES),
        (Allow, scope("messages:write"), WRITE_MESSAGES),
        (Allow, group("Admins"), ADMINISTER),
        *Root.__acl__,
    )


class SenderConstrained(Root):
    """The context of the endpoints that need a DPoP-bound token: every permission is
    denied to a token sent as ``Bearer``, then the root's entries apply."""

    __acl__: ClassVar[tuple[ACE, ...]] = (DENY_BEARER_TOKENS, *Root.__acl__)
