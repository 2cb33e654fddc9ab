"""The Pyramid 2 security policy: an ``Authorization: Bearer`` access token becomes
an identity and principals. Nothing else happens here; views declare permissions
and :mod:`okta_pyramid.errors` turns a denial into the right HTTP answer.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterable, Mapping, NamedTuple
from urllib.parse import parse_qsl

from pyramid.authorization import ACLHelper, Everyone
from pyramid.interfaces import ISecurityPolicy
from pyramid.request import Request
from pyramid_jwt import JWTAuthenticationPolicy
from zope.interface import implementer

from .tokens.exceptions import InvalidToken, IssuerUnavailable
from .principals import principals_for
from .tokens.verifier import AccessTokenVerifier, VerifiedToken

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
    token = _bearer_credentials(header)
    if token is not None:
        _check_b64token(token)
    return token


def _bearer_credentials(header: str | None) -> str | None:
    # What follows "Bearer", not yet checked against the b64token syntax.
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip(" ")


def _check_b64token(token: str) -> None:
    if not _B64TOKEN.fullmatch(token):
        raise MalformedRequest(
            "the Authorization header must be 'Bearer' followed by one access token"
        )


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
        token = self.get_token(request)
        return None if token is None else token.claims()

    def get_token(self, request: Request) -> VerifiedToken | None:
        """The validated token, or ``None`` when the request has no bearer token."""
        # Most API requests have no query string; then there is nothing to parse.
        query = request.environ.get("QUERY_STRING")
        if query and _has_access_token(query):
            # RFC 6750 §2.3 is optional and leaks tokens into logs and history.
            raise MalformedRequest(
                "access tokens are only accepted in the Authorization header, "
                "not in the query string"
            )
        token = _bearer_credentials(request.environ.get(self._environ_key))
        if token is None:
            return None
        try:
            return self.verifier.verify_token(token)
        except InvalidToken:
            # Credentials outside the b64token syntax are a malformed request (400),
            # not a bad token (401). Such text can never verify (a JWS is base64url
            # and dots, a subset), so the syntax is checked only once verification
            # has failed, and a valid token is not scanned twice.
            _check_b64token(token)
            raise

    def jwt_decode(self, request: Request, token: str) -> dict[str, Any]:
        return self.verifier.verify(token)


def _has_access_token(query: str) -> bool:
    # Parsed from the raw string: webob's request.GET raises on bytes that are not
    # UTF-8 (?%ff), and this runs before any view could turn that into a 400.
    return any(name == "access_token"
               for name, _ in parse_qsl(query, keep_blank_values=True, errors="replace"))


class TokenIdentity:
    """The caller, as described by a validated access token."""

    __slots__ = ("token", "principals_of", "_claims")

    def __init__(self, token: VerifiedToken,
                 principals_of: Callable[[Mapping[str, Any]], Iterable[str]] = principals_for
                 ) -> None:
        #: The validated token, shared by every request that presents it.
        self.token = token
        #: Claims to principals; the policy passes the configured mapping.
        self.principals_of = principals_of
        self._claims: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<TokenIdentity subject={self.subject!r}>"

    @property
    def claims(self) -> dict[str, Any]:
        """The token's claims: this request's own copy, which a view may change."""
        claims = self._claims
        if claims is None:
            claims = self._claims = self.token.claims()
        return claims

    @property
    def subject(self) -> str | None:
        return self.claims.get("sub")

    @property
    def client_id(self) -> str | None:
        return self.claims.get("cid")

    @property
    def principals(self) -> tuple[str, ...]:
        """The principals, computed once per token (see :meth:`__principals__`)."""
        return self.token.principals(self.principals_of)

    def __principals__(self) -> list[str]:
        """``Authenticated``, ``user:``, ``client:``, ``scope:`` and ``group:`` principals
        (see :func:`okta_pyramid.principals.principals_for`)."""
        return list(self.principals)


class Authentication(NamedTuple):
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
        # What pyramid's RequestLocalCache does, kept in the request's own __dict__:
        # the verdict lives and dies with the request, at a fraction of the cost of a
        # WeakKeyDictionary and a finished callback. One key per policy, so two
        # applications sharing a request never share a verdict.
        self._verdict_key = f"_okta_pyramid_authentication_{id(self):x}"

    def authenticate(self, request: Request) -> Authentication:
        """Judge the request's token; computed once per request and reused."""
        attributes = request.__dict__
        verdict = attributes.get(self._verdict_key)
        if verdict is None:
            verdict = attributes[self._verdict_key] = self._authenticate(request)
        return verdict

    def identity(self, request: Request) -> TokenIdentity | None:
        return self.authenticate(request).identity

    def authenticated_userid(self, request: Request) -> str | None:
        identity = self.identity(request)
        return identity.subject if identity is not None else None

    def permits(self, request: Request, context: Any, permission: str) -> Any:
        identity = self.identity(request)
        if identity is None:
            return self.helper.permits(context, _ANONYMOUS, permission)
        return self.helper.permits(context, (Everyone, *identity.principals), permission)

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
            token = self.reader.get_token(request)
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
        if token is None:
            return _NO_TOKEN
        return Authentication(identity=TokenIdentity(token, self.principals))


_ANONYMOUS = (Everyone,)
_NO_TOKEN = Authentication()


def _vary_on_authorization(request: Request, response: Any) -> None:
    headerlist = response.headerlist
    for name, _ in headerlist:
        if name.lower() == "vary":
            response.vary = tuple(dict.fromkeys((*(response.vary or ()), "Authorization")))
            return
    headerlist.append(("Vary", "Authorization"))  # the common case, without parsing
