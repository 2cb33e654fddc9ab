"""The Pyramid 2 security policy: an ``Authorization: Bearer`` access token becomes
an identity and principals. Nothing else happens here; views declare permissions
and :mod:`okta_pyramid.errors` turns a denial into the right HTTP answer.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qsl

from pyramid.authorization import ACLHelper, Everyone
from pyramid.interfaces import ISecurityPolicy
from pyramid.request import Request, RequestLocalCache
from pyramid_jwt import JWTAuthenticationPolicy
from zope.interface import implementer

from .exceptions import InvalidToken, IssuerUnavailable
from .principals import principals_for
from .verifier import AccessTokenVerifier

log = logging.getLogger(__name__)

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class MalformedRequest(Exception):
    """The request carries credentials in a way RFC 6750 does not allow."""


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value.

    Returns ``None`` when the header is absent or uses another scheme; raises
    :class:`MalformedRequest` when it says Bearer but is not ``Bearer <token>``
    (empty, several tokens, characters outside b64token). The scheme is compared
    case-insensitively (RFC 6750 §2.1, RFC 9110 §11.1).
    """
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = credentials.strip(" ")
    if not _B64TOKEN.fullmatch(token):
        raise MalformedRequest(
            "the Authorization header must be 'Bearer' followed by one access token"
        )
    return token


class BearerTokenReader(JWTAuthenticationPolicy):
    """pyramid-jwt's request-to-claims adapter, made RFC 6750-strict and fed by the
    JWKS-backed :class:`AccessTokenVerifier` instead of one static key.

    It is never registered as a (Pyramid 1) authentication policy; the security
    policy below calls it. Its hooks raise instead of returning ``{}`` so the caller
    can tell "no token" from "bad token" from "issuer down".
    """

    def __init__(self, verifier: AccessTokenVerifier) -> None:
        super().__init__(private_key=None, algorithm="RS256", auth_type="Bearer",
                         leeway=verifier.leeway)
        self.verifier = verifier
        # The WSGI name of the header (RFC 3875 §4.1.18), looked up without webob's
        # per-request header view.
        self._environ_key = "HTTP_" + self.http_header.upper().replace("-", "_")

    def get_claims(self, request: Request) -> dict[str, Any] | None:
        """The validated claims, or ``None`` when the request has no bearer token."""
        # Most API requests have no query string; then there is nothing to parse.
        query = request.environ.get("QUERY_STRING")
        if query and _has_access_token(query):
            # RFC 6750 §2.3 is optional and leaks tokens into logs and history.
            raise MalformedRequest(
                "access tokens are only accepted in the Authorization header, "
                "not in the query string"
            )
        token = parse_bearer(request.environ.get(self._environ_key))
        if token is None:
            return None
        return self.jwt_decode(request, token)

    def jwt_decode(self, request: Request, token: str) -> dict[str, Any]:
        return self.verifier.verify(token)


def _has_access_token(query: str) -> bool:
    # Parsed from the raw string: webob's request.GET raises on bytes that are not
    # UTF-8 (?%ff), and this runs before any view could turn that into a 400.
    return any(name == "access_token"
               for name, _ in parse_qsl(query, keep_blank_values=True, errors="replace"))


@dataclass(frozen=True)
class TokenIdentity:
    """The caller, as described by a validated access token."""

    claims: dict[str, Any] = field(repr=False)
    #: Claims to principals; the policy passes the configured mapping.
    principals_of: Callable[[Mapping[str, Any]], Iterable[str]] = field(
        default=principals_for, repr=False, compare=False)

    @property
    def subject(self) -> str | None:
        return self.claims.get("sub")

    @property
    def client_id(self) -> str | None:
        return self.claims.get("cid")

    def __principals__(self) -> list[str]:
        """``Authenticated``, ``user:``, ``client:``, ``scope:`` and ``group:`` principals
        (see :func:`okta_pyramid.principals.principals_for`)."""
        return list(self.principals_of(self.claims))


@dataclass(frozen=True)
class Authentication:
    """The verdict on a request's credentials, reached once per request.

    ``error`` is ``None`` with no identity when the request carried no token
    (RFC 6750 §3.1: then no error code is sent).
    """

    identity: TokenIdentity | None = None
    error: str | None = None
    description: str | None = None
    reason: str | None = None
    retry_after: int | None = None


@implementer(ISecurityPolicy)
class OktaSecurityPolicy:
    """Authenticate with an Okta access token; authorize with the context's ACL."""

    def __init__(
        self,
        verifier: AccessTokenVerifier,
        *,
        realm: str = "api",
        principals: Callable[[Mapping[str, Any]], Iterable[str]] = principals_for,
    ) -> None:
        self.verifier = verifier
        self.realm = realm
        self.principals = principals
        self.reader = BearerTokenReader(verifier)
        self.helper = ACLHelper()
        self._cache = RequestLocalCache(self._authenticate)

    def authenticate(self, request: Request) -> Authentication:
        """Judge the request's token; computed once per request and reused."""
        return self._cache.get_or_create(request)

    def identity(self, request: Request) -> TokenIdentity | None:
        return self.authenticate(request).identity

    def authenticated_userid(self, request: Request) -> str | None:
        identity = self.identity(request)
        return identity.subject if identity is not None else None

    def permits(self, request: Request, context: Any, permission: str) -> Any:
        identity = self.identity(request)
        principals = [Everyone]
        if identity is not None:
            principals.extend(identity.__principals__())
        return self.helper.permits(context, principals, permission)

    def remember(self, request: Request, userid: Any, **kw: Any) -> list:
        # The client sends its token with every request; there is nothing to set.
        return []

    def forget(self, request: Request, **kw: Any) -> list:
        # Likewise: a bearer token is discarded by the client, not by a header.
        return []

    def _authenticate(self, request: Request) -> Authentication:
        # Whatever the verdict, the response depended on this header.
        request.add_response_callback(_vary_on_authorization)
        try:
            claims = self.reader.get_claims(request)
        except MalformedRequest as exc:
            log.info("request rejected: reason=invalid_request client=%s", request.remote_addr)
            return Authentication(error="invalid_request", description=str(exc),
                                  reason="invalid_request")
        except InvalidToken as exc:
            log.info("token rejected: reason=%s client=%s", exc.reason, request.remote_addr)
            return Authentication(error="invalid_token", description=exc.description,
                                  reason=exc.reason)
        except IssuerUnavailable as exc:
            log.warning("token not judged: reason=%s client=%s", exc.reason,
                        request.remote_addr)
            return Authentication(error="temporarily_unavailable",
                                  description=exc.description, reason=exc.reason,
                                  retry_after=exc.retry_after)
        if claims is None:
            return Authentication()
        return Authentication(identity=TokenIdentity(claims, self.principals))


def _vary_on_authorization(request: Request, response: Any) -> None:
    if "Vary" not in response.headers:
        response.headers["Vary"] = "Authorization"  # the common case, without parsing
        return
    response.vary = tuple(dict.fromkeys((*(response.vary or ()), "Authorization")))
