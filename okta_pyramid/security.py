"""The Pyramid 2 security policy: the credentials of a request become a verdict, and a
verdict an identity and principals. Nothing else happens here: views declare
permissions, and :mod:`okta_pyramid.errors` turns a verdict into an HTTP answer.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterable, Mapping, NamedTuple
from urllib.parse import parse_qsl

from pyramid.authorization import ACLHelper, Everyone
from pyramid.config import Configurator
from pyramid.decorator import reify
from pyramid.interfaces import ISecurityPolicy
from pyramid.request import Request
from pyramid_jwt import JWTAuthenticationPolicy
from zope.interface import implementer

from .principals import configured_principals, principals_for
from .tokens import AccessTokenVerifier, InvalidToken, IssuerUnavailable, VerifiedToken
from .tokens.exceptions import VerificationError

log = logging.getLogger(__name__)

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class MalformedRequest(Exception):
    """The request carries credentials in a way RFC 6750 does not allow (HTTP 400)."""

    reason = "invalid_request"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class BearerTokenReader(JWTAuthenticationPolicy):
    """pyramid_jwt's reader of the token in a request, kept to RFC 6750 and fed by the
    JWKS-backed :class:`~okta_pyramid.tokens.AccessTokenVerifier`.

    Its hooks do the work, as in pyramid_jwt: :meth:`token` reads the
    ``self.http_header`` header for the ``self.auth_type`` scheme, :meth:`jwt_decode`
    asks the verifier. The security policy calls :meth:`verified_token`;
    ``request.jwt_claims`` calls :meth:`get_claims`. It is not a (Pyramid 1)
    authentication policy, and the parts of that role it inherits refuse to act.
    """

    def __init__(self, verifier: AccessTokenVerifier, *, http_header: str = "Authorization",
                 auth_type: str = "Bearer") -> None:
        super().__init__(private_key=None, algorithm="RS256", leeway=verifier.leeway,
                         http_header=http_header, auth_type=auth_type)
        self.verifier = verifier
        self._scheme = auth_type.lower()
        # The WSGI name of the header (RFC 3875 §4.1.18), looked up without webob's
        # per-request header view.
        self._environ_key = "HTTP_" + http_header.upper().replace("-", "_")

    def token(self, request: Request) -> str | None:
        """What follows ``Bearer`` in the request's header, or ``None`` when there is
        no such header. The scheme is compared case-insensitively (RFC 6750 §2.1,
        RFC 9110 §11.1).

        Raises :class:`MalformedRequest` for a token in the query string. Text that
        is not a b64token is refused by :meth:`verified_token`, only once the
        verifier has refused it, so that a valid token is not scanned twice (a JWS
        is base64url and dots, a subset of b64token).
        """
        # Most API requests have no query string; then there is nothing to parse.
        query = request.environ.get("QUERY_STRING")
        if query and _has_access_token(query):
            # RFC 6750 §2.3 is optional and leaks tokens into logs and history.
            raise MalformedRequest(
                "access tokens are only accepted in the Authorization header, "
                "not in the query string"
            )
        header = request.environ.get(self._environ_key)
        if not header:
            return None
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != self._scheme:
            return None
        return credentials.strip(" ")

    def verified_token(self, request: Request) -> VerifiedToken | None:
        """The request's validated token, or ``None`` when it has none; raises
        :class:`MalformedRequest` or a :class:`~okta_pyramid.tokens.VerificationError`."""
        token = self.token(request)
        if token is None:
            return None
        try:
            return self.verifier.verify_token(token)
        except InvalidToken:
            if not _B64TOKEN.fullmatch(token):
                # Not "Bearer <token>": a malformed request (400), not a bad token (401).
                raise MalformedRequest(
                    "the Authorization header must be 'Bearer' followed by one access token"
                ) from None
            raise

    # -- pyramid_jwt's hooks --------------------------------------------------------

    def get_claims(self, request: Request) -> dict[str, Any]:
        """The validated claims, or ``{}`` when the request has no acceptable token
        (pyramid_jwt's contract, behind ``request.jwt_claims``)."""
        try:
            token = self.token(request)
        except MalformedRequest:
            return {}
        return {} if token is None else self.jwt_decode(request, token)

    def jwt_decode(self, request: Request, token: str) -> dict[str, Any]:
        """The token's claims if the verifier accepts it, else ``{}``."""
        try:
            return self.verifier.verify(token)
        except VerificationError:
            return {}

    # -- what a resource server does not do -------------------------------------------

    def create_token(self, *args: Any, **kw: Any) -> str:
        raise NotImplementedError(
            "okta_pyramid only verifies access tokens; the authorization server issues them")

    def remember(self, request: Request, principal: Any, **kw: Any) -> list:
        # The client sends its token with every request; there is nothing to set.
        return []

    def forget(self, request: Request, **kw: Any) -> list:
        # Likewise: a bearer token is discarded by the client, not by a header.
        return []

    def unauthenticated_userid(self, request: Request) -> str | None:
        """The ``sub`` of the request's validated token (as pyramid_jwt answers)."""
        return self.get_claims(request).get("sub")

    def authenticated_userid(self, request: Request) -> Any:
        raise NotImplementedError(
            "okta_pyramid authenticates with a Pyramid 2 security policy: "
            "use request.authenticated_userid or request.identity")

    def effective_principals(self, request: Request) -> Any:
        raise NotImplementedError(
            "okta_pyramid authorizes with a Pyramid 2 security policy: "
            "use request.identity.__principals__()")


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
    def principals(self) -> tuple[str, ...]:
        """The principals, computed once per token (see :meth:`__principals__`)."""
        return self.token.principals(self.principals_of)

    def __principals__(self) -> list[str]:
        """``Authenticated``, ``user:``, ``client:``, ``scope:`` and ``group:`` principals
        (see :func:`okta_pyramid.principals.principals_for`)."""
        return list(self.principals)


class Authentication(NamedTuple):
    """The verdict on a request's credentials, reached once per request.

    ``failure`` is the exception that refused them; with neither identity nor
    failure the request carried no token. :mod:`okta_pyramid.errors` answers it.
    """

    identity: TokenIdentity | None = None
    failure: Exception | None = None

    @property
    def reason(self) -> str | None:
        """The short code logged for a failure."""
        return getattr(self.failure, "reason", None)


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
            token = self.reader.verified_token(request)
        except MalformedRequest as exc:
            log.info("request rejected: reason=%s client=%s", exc.reason, request.remote_addr)
            return Authentication(failure=exc)
        except InvalidToken as exc:
            log.info("token rejected: reason=%s client=%s", exc.reason, request.remote_addr)
            return Authentication(failure=exc)
        except IssuerUnavailable as exc:
            log.warning("token not judged: reason=%s client=%s", exc.reason,
                        request.remote_addr)
            return Authentication(failure=exc)
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


def authentication(request: Request) -> Authentication:
    """The add-on's verdict on ``request``, whatever policy the application registered
    (its own, or one that wraps it); computed once per request."""
    return request.registry.okta_security_policy.authenticate(request)


def jwt_claims(request: Request) -> dict[str, Any]:
    """pyramid_jwt's ``request.jwt_claims``: the validated claims, or ``{}``."""
    return request.registry.okta_security_policy.reader.get_claims(request)


class OktaRequest(Request):
    """Pyramid's request with pyramid_jwt's ``request.jwt_claims``.

    A property on the class costs nothing until it is read, where one added with
    ``config.add_request_method`` makes Pyramid build a class for every request.
    """

    @reify
    def jwt_claims(self) -> dict[str, Any]:
        return jwt_claims(self)


def includeme(config: Configurator) -> None:
    """Install the security policy (and ``request.jwt_claims``) for ``registry.okta_verifier``.

    An application with its own request factory gets ``request.jwt_claims`` by
    deriving its request class from :class:`OktaRequest`.
    """
    settings = config.registry.okta_settings
    policy = OktaSecurityPolicy(config.registry.okta_verifier, realm=settings.realm,
                                principals=configured_principals(settings))
    config.registry.okta_security_policy = policy
    config.set_security_policy(policy)
    # An application's own set_request_factory wins over this one (Pyramid's rule
    # for actions of an included package).
    config.set_request_factory(OktaRequest)
