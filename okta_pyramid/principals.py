"""From a validated access token's claims to Pyramid principals.

:func:`principals_for` is the one place where claims become principals; the
security policy calls it (or the callable named by ``okta.principals_callback``)
for every authorization decision, and ACLs grant permissions to what it returns:

========================  =============================================================
``system.Authenticated``  every caller with a valid token (``Authenticated``)
``user:<sub>``            the token's subject (``sub``)
``client:<id>``           the OAuth client the token was issued to (``cid`` at Okta,
                          ``client_id`` in RFC 9068 and introspection answers)
``scope:<name>``          each scope granted: Okta's ``scp`` array, or a space-separated
                          ``scope`` string (RFC 9068 §2.2.3, RFC 8693 §4.2)
``group:<name>``          each entry of the groups claim (``okta.groups_claim``,
                          default ``groups``)
``issuer:<url>``          the authorization server that vouched for the token: the
                          ``okta.issuer`` line whose verifier (or introspection
                          endpoint) accepted it, exactly as configured
``token:dpop``            the request proved possession of the token's key (a
                          sender-constrained token sent with a valid DPoP proof,
                          RFC 9449); see :data:`DPOP_TOKEN`
``token:bearer``          the token was sent as a plain bearer token (RFC 6750)
========================  =============================================================

The ``issuer:`` and ``token:`` principals describe who vouched for the token and
how the request presented it, not what the token claims, so the security policy
adds them itself; :func:`principals_for` and ``okta.principals_callback`` never
see them, and those a callback returns are dropped. With several issuers, an ACL
can confine one issuer's callers::

    (Deny, issuer("https://acme.okta.com/oauth2/aus9partners"), "admin")

The prefixes keep the namespaces apart: a group called ``system.Authenticated``
or a scope called ``Admins`` can never stand in for another kind of principal.
Claim values of an unexpected JSON type are ignored, never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pyramid.authorization import Authenticated

from .settings import DEFAULT_GROUPS_CLAIM, OktaSettings

log = logging.getLogger(__name__)


#: The principal of a request whose token is sender-constrained and came with a valid
#: DPoP proof. An ACL that denies :data:`BEARER_TOKEN` first requires DPoP for a
#: permission (docs/dpop.md).
DPOP_TOKEN = "token:dpop"  # noqa: S105 - a principal's name, not a secret
#: The principal of a request whose token was sent as ``Authorization: Bearer``.
BEARER_TOKEN = "token:bearer"  # noqa: S105 - a principal's name, not a secret


def user(sub: str) -> str:
    """The principal of the token subject ``sub``."""
    return f"user:{sub}"


def client(cid: str) -> str:
    """The principal of the OAuth client ``cid``."""
    return f"client:{cid}"


def scope(name: str) -> str:
    """The principal of a token that was granted the scope ``name``."""
    return f"scope:{name}"


def group(name: str) -> str:
    """The principal of a caller whose groups claim lists ``name``."""
    return f"group:{name}"


def issuer(url: str) -> str:
    """The principal of a token accepted on the word of the issuer ``url``."""
    return f"issuer:{url}"


def scopes_of(claims: Mapping[str, Any]) -> list[str]:
    """The scopes a token grants, from ``scp`` and ``scope``, in order, without repeats.

    Okta sends ``scp`` as a JSON array; RFC 9068 and most other issuers send
    ``scope`` as one space-separated string; some send ``scp`` as a string too.
    Both claims are read and both shapes are accepted.
    """
    return list(
        dict.fromkeys(
            _strings(claims.get("scp"), split=True) + _strings(claims.get("scope"), split=True)
        )
    )


def groups_of(claims: Mapping[str, Any], groups_claim: str = DEFAULT_GROUPS_CLAIM) -> list[str]:
    """The group names in ``claims[groups_claim]``: an array of strings, or one string.

    A single string is one group (Okta group names may contain spaces).
    """
    return list(dict.fromkeys(_strings(claims.get(groups_claim), split=False)))


def principals_for(claims: Mapping[str, Any], settings: OktaSettings | None = None) -> list[str]:
    """The principals of a caller holding a validated token with these ``claims``.

    ``settings`` supplies ``groups_claim``; without it the claim is ``groups``.
    To add principals of your own, name a function with this signature in
    ``okta.principals_callback`` and start from this one::

        def principals(claims, settings):
            found = principals_for(claims, settings)
            if claims.get("tier") == "gold":
                found.append("role:gold")
            return found
    """
    groups_claim = settings.groups_claim if settings is not None else DEFAULT_GROUPS_CLAIM
    principals = [Authenticated]
    sub = claims.get("sub")
    if isinstance(sub, str) and sub:
        principals.append(user(sub))
    cid = claims["cid"] if "cid" in claims else claims.get("client_id")
    if isinstance(cid, str) and cid:
        principals.append(client(cid))
    principals += [scope(name) for name in scopes_of(claims)]
    principals += [group(name) for name in groups_of(claims, groups_claim)]
    return principals


def configured_principals(settings: OktaSettings) -> Callable[[Mapping[str, Any]], list[str]]:
    """The claims-to-principals function of an application: ``okta.principals_callback``
    if set, else :func:`principals_for`, called with ``settings``."""
    callback = settings.principals_callback
    if callback is None:
        return lambda claims: principals_for(claims, settings)

    def principals(claims: Mapping[str, Any]) -> list[str]:
        # issuer: and token: are the security policy's to add (who vouched for the
        # token, how it was presented): a callback that hands claim values on as
        # principals must not let a token claim them.
        return [
            name
            for name in callback(claims, settings)
            if not (isinstance(name, str) and name.startswith(_POLICY_PREFIXES))
        ]

    return principals


_POLICY_PREFIXES = ("issuer:", "token:")


def _strings(value: Any, *, split: bool) -> list[str]:
    # A claim of the wrong JSON type (number, object, nested list) grants nothing.
    if isinstance(value, str):
        items: list[Any] = value.split() if split else [value]
    elif isinstance(value, list):
        items = value
    else:
        return []
    return [item for item in items if isinstance(item, str) and item and not item.isspace()]
