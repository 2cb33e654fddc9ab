"""The add-on's permission and root ACL, and how a denial finds the scopes it names.

An application's own ACLs grant its permissions to principals
(:mod:`okta_pyramid.principals`): ``(Allow, scope("orders:read"), READ_ORDERS)``
lets a token carrying that scope read orders (docs/authorization.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pyramid.authorization import (
    ALL_PERMISSIONS,
    ACLHelper,
    Allow,
    Authenticated,
    Deny,
    Everyone,
)

from .principals import BEARER_TOKEN, scope

__all__ = ["ACE", "AUTHENTICATED", "DENY_BEARER_TOKENS", "ROOT_ACL", "Root", "scopes_granting"]

#: Any caller with a valid access token.
AUTHENTICATED = "authenticated"
#: The first entry of an ACL whose permissions need a sender-constrained token: a
#: token sent as ``Bearer`` gets none of them, and the denial is answered 401 with a
#: ``DPoP`` challenge (RFC 9449 §7.1) rather than 403 (docs/dpop.md).
DENY_BEARER_TOKENS: ACE = (Deny, BEARER_TOKEN, ALL_PERMISSIONS)

_SCOPE_PREFIX = scope("")


#: An ACL entry: ``(Allow or Deny, principal, permission or permissions)``.
ACE = tuple[str, str, Any]


#: The root's ACL: any caller with a valid token has :data:`AUTHENTICATED`, and no one
#: has any other permission. The security policy knows it by identity (a context whose
#: ``__acl__`` is this very tuple) and decides its first entry without ACLHelper.
ROOT_ACL: tuple[ACE, ...] = (
    (Allow, Authenticated, AUTHENTICATED),
    (Deny, Everyone, ALL_PERMISSIONS),
)


class Root:
    """Root of the resource tree: the ACL that maps principals to permissions."""

    __acl__: ClassVar[tuple[ACE, ...]] = ROOT_ACL

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
        principal[len(_SCOPE_PREFIX) :]
        for principal in allowed
        if isinstance(principal, str) and principal.startswith(_SCOPE_PREFIX)
    )
