"""The Pyramid 2 security policy: the credentials of a request become a verdict, and a
verdict an identity and principals. Nothing else happens here: views declare
permissions, and :mod:`okta_pyramid.errors` turns a verdict into an HTTP answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from pyramid.authorization import ACLAllowed, ACLHelper, Authenticated, Everyone
from pyramid.config import Configurator
from pyramid.decorator import reify
from pyramid.interfaces import ISecurityPolicy
from pyramid.request import Request
from zope.interface import implementer

from .bearer import BearerTokenReader
from .parts import okta_parts
from .permissions import AUTHENTICATED, ROOT_ACL
from .principals import BEARER_TOKEN, DPOP_TOKEN, configured_principals, principals_for
from .principals import issuer as issuer_principal
from .tokens import (
    DPoPProof,
    InvalidToken,
    IssuerUnavailable,
    ReplayStoreFull,
    RequestVerifier,
    TokenJudge,
    VerifiedToken,
)
from .tokens.exceptions import MalformedRequest
from .tokens.introspection import IntrospectionUnavailable
from .tokens.schemes import BEARER, DPOP
from .tokens.shared import SharedStoreUnavailable

log = logging.getLogger(__name__)


class TokenIdentity:
    """The caller, as described by a validated access token."""

    __slots__ = ("_claims", "principals_of", "proof", "scheme", "token")

    def __init__(
        self,
        token: VerifiedToken,
        principals_of: Callable[[Mapping[str, Any]], Iterable[str]] = principals_for,
        scheme: str = BEARER,
        proof: DPoPProof | None = None,
    ) -> None:
        #: The validated token, shared by every request that presents it.
        self.token = token
        #: Claims to principals; the policy passes the configured mapping.
        self.principals_of = principals_of
        #: ``Bearer`` or ``DPoP``: how this request presented the token.
        self.scheme = scheme
        #: The request's DPoP proof (``DPoP`` scheme only).
        self.proof = proof
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
        """The principals of the token, computed once per token, and the principal of
        how this request presented it (``token:dpop`` or ``token:bearer``)."""
        return self.acl_principals()[1:]

    def acl_principals(self) -> tuple[str, ...]:
        """What an ACL is checked against: ``Everyone``, then :attr:`principals`.

        Computed once per token, not per request: a token comes from one issuer and
        is presented with one scheme (a bound token only as ``DPoP``, an unbound one
        only as ``Bearer``), so the whole tuple is derived from it alone.
        """
        return self.token.principals(_acl_principals(self.principals_of, self.token, self.scheme))

    def __principals__(self) -> list[str]:
        """``Authenticated``, ``user:``, ``client:``, ``scope:``, ``group:``, ``issuer:``
        and ``token:`` principals (see :mod:`okta_pyramid.principals`)."""
        return list(self.principals)


class Authentication(NamedTuple):
    """The verdict on a request's credentials, reached once per request.

    ``failure`` is the exception that refused them; with neither identity nor
    failure the request carried no token. :mod:`okta_pyramid.errors` answers it.
    """

    identity: TokenIdentity | None = None
    failure: Exception | None = None
    #: The scheme the request used (``Bearer`` or ``DPoP``), ``None`` without credentials:
    #: an error goes in the challenge of this scheme (RFC 9449 §7.1).
    scheme: str | None = None

    @property
    def reason(self) -> str | None:
        """The short code logged for a failure."""
        return getattr(self.failure, "reason", None)


@implementer(ISecurityPolicy)
class OktaSecurityPolicy:
    """Authenticate with an Okta access token; authorize with the context's ACL."""

    def __init__(
        self,
        verifier: TokenJudge,
        *,
        realm: str = "api",
        principals: Callable[[Mapping[str, Any]], Iterable[str]] = principals_for,
        request_verifier: RequestVerifier | None = None,
        public_url: str | None = None,
    ) -> None:
        self.verifier = verifier
        self.realm = realm
        self.principals = principals
        self.reader = BearerTokenReader(
            verifier, request_verifier=request_verifier, public_url=public_url
        )
        #: Judges scheme, binding and DPoP proof (``okta.dpop``).
        self.request_verifier = self.reader.request_verifier
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

    def judged(self, request: Request) -> Authentication | None:
        """The verdict on ``request`` if it was reached, without reaching it."""
        return request.__dict__.get(self._verdict_key)

    def identity(self, request: Request) -> TokenIdentity | None:
        return self.authenticate(request).identity

    def authenticated_userid(self, request: Request) -> str | None:
        identity = self.identity(request)
        return identity.subject if identity is not None else None

    def permits(self, request: Request, context: Any, permission: str) -> Any:
        verdict = request.__dict__.get(self._verdict_key)  # authenticate(), inlined
        if verdict is None:
            verdict = self.authenticate(request)
        identity = verdict.identity
        if identity is None:
            return self.helper.permits(context, _ANONYMOUS, permission)
        principals = identity.acl_principals()
        if (
            permission == AUTHENTICATED
            and getattr(context, "__acl__", None) is ROOT_ACL
            and Authenticated in principals
        ):
            # The add-on's own root ACL, as ACLHelper reads it: its first entry
            # allows exactly this, so neither the rest nor the lineage is read.
            return _root_allowed(principals, context)
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
            verified = self.reader.verified_request(request)
        except MalformedRequest as exc:
            log.info("request rejected: reason=%s client=%s", exc.reason, request.remote_addr)
            return Authentication(failure=exc, scheme=self._scheme(request))
        except InvalidToken as exc:
            log.info("token rejected: reason=%s client=%s", exc.reason, request.remote_addr)
            return Authentication(failure=exc, scheme=self._scheme(request))
        except (IssuerUnavailable, ReplayStoreFull, SharedStoreUnavailable) as exc:
            # An introspection or shared store incident is logged once, where it
            # happens, not once per request it affects.
            log.log(
                logging.DEBUG
                if isinstance(exc, (IntrospectionUnavailable, SharedStoreUnavailable))
                else logging.WARNING,
                "token not judged: reason=%s client=%s",
                exc.reason,
                request.remote_addr,
            )
            return Authentication(failure=exc, scheme=self._scheme(request))
        if verified is None:
            return _NO_TOKEN
        token, scheme, proof = verified
        if proof is not None and proof.next_nonce is not None:
            # RFC 9449 §8.2: the next nonce before the client's one expires.
            request.add_response_callback(_NonceOnResponse(proof.next_nonce))
        # tuple.__new__, as for the verdicts of the token core: the NamedTuple's own
        # __new__ costs as much again on every request.
        return _tuple(
            Authentication, (TokenIdentity(token, self.principals, scheme, proof), None, scheme)
        )

    def _scheme(self, request: Request) -> str | None:
        # The header's own scheme, even when the query string made the request
        # malformed: the challenge is that of the scheme the client used.
        credentials = self.reader.header_credentials(request)
        return None if credentials is None else credentials.scheme


def _root_allowed(principals: tuple[str, ...], context: Any) -> ACLAllowed:
    """The ``ACLAllowed`` that ACLHelper answers when the first entry of
    :data:`~okta_pyramid.permissions.ROOT_ACL` lets a caller in, with the same
    attributes and message, made without ``PermitsResult.__new__``'s calls (0.44
    µs instead of 0.65; tests/test_hot_path.py holds it to ACLHelper's answer)."""
    allowed = _int(ACLAllowed, 1)
    allowed.s = _ACL_RESULT_FORMAT
    allowed.args = ("ACLAllowed", AUTHENTICATED, _ROOT_ACE, ROOT_ACL, context, principals)
    allowed.permission = AUTHENTICATED
    allowed.ace = _ROOT_ACE
    allowed.acl = ROOT_ACL
    allowed.principals = principals
    allowed.context = context
    return allowed


_ROOT_ACE = ROOT_ACL[0]
#: ACLPermitsResult's own format, so that ``msg`` reads as ACLHelper's does.
_ACL_RESULT_FORMAT = "%s permission %r via ACE %r in ACL %r on context %r for principals %r"
_int = int.__new__
_ANONYMOUS = (Everyone,)
_NO_TOKEN = Authentication()
_tuple = tuple.__new__
_SCHEME_PRINCIPALS = {BEARER: BEARER_TOKEN, DPOP: DPOP_TOKEN}


class _ACLPrincipals:
    """Claims to every principal an ACL is checked against, for tokens of one issuer
    presented with one scheme: ``Everyone``, what ``principals_of`` finds in the
    claims, the issuer's principal and the scheme's. The token remembers the result
    (:meth:`~okta_pyramid.tokens.VerifiedToken.principals`), so it is computed once
    per token."""

    __slots__ = ("policy_principals", "principals_of")

    def __init__(
        self,
        principals_of: Callable[[Mapping[str, Any]], Iterable[str]],
        issuer: str | None,
        scheme: str,
    ) -> None:
        self.principals_of = principals_of
        # Added by the policy, never found in the claims (okta_pyramid.principals).
        self.policy_principals = (
            *(() if issuer is None else (issuer_principal(issuer),)),
            _SCHEME_PRINCIPALS[scheme],
        )

    def __call__(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        return (Everyone, *self.principals_of(claims), *self.policy_principals)


# (claims-to-principals function, issuer URL, scheme) -> its _ACLPrincipals. The URL is
# a verifier's, never a token's own text, and the functions are the policies' (one
# each), so this holds a few entries per configured issuer and application.
_ACL_PRINCIPALS: dict[tuple[Any, str | None, str], _ACLPrincipals] = {}
_MAX_ACL_PRINCIPALS = 1024


def _acl_principals(
    principals_of: Callable[[Mapping[str, Any]], Iterable[str]], token: VerifiedToken, scheme: str
) -> _ACLPrincipals:
    key = (principals_of, token.issuer, scheme)
    found = _ACL_PRINCIPALS.get(key)
    if found is None:
        if len(_ACL_PRINCIPALS) >= _MAX_ACL_PRINCIPALS:
            _ACL_PRINCIPALS.clear()  # many applications in one process (tests)
        found = _ACL_PRINCIPALS.setdefault(key, _ACLPrincipals(*key))
    return found


class _NonceOnResponse:
    """Sends a fresh DPoP nonce with the response (RFC 9449 §8.2)."""

    __slots__ = ("nonce",)

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce

    def __call__(self, request: Request, response: Any) -> None:
        response.headers["DPoP-Nonce"] = self.nonce
        # A nonce is for one client: no shared cache may hand it to another.
        response.cache_control = "no-store"


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
    return okta_parts(request.registry).policy.authenticate(request)


def jwt_claims(request: Request) -> dict[str, Any]:
    """pyramid_jwt's ``request.jwt_claims``: the validated claims, or ``{}`` (also when
    the scheme, the token's binding or the DPoP proof is refused)."""
    return okta_parts(request.registry).policy.reader.get_claims(request)


class OktaRequest(Request):
    """Pyramid's request with pyramid_jwt's ``request.jwt_claims``.

    A property on the class costs nothing until it is read, where one added with
    ``config.add_request_method`` makes Pyramid build a class for every request.
    """

    @reify
    def jwt_claims(self) -> dict[str, Any]:
        return jwt_claims(self)


def includeme(config: Configurator) -> None:
    """Install the security policy (and ``request.jwt_claims``) for ````registry.okta``.

    An application with its own request factory gets ``request.jwt_claims`` by
    deriving its request class from :class:`OktaRequest`.
    """
    okta = okta_parts(config.registry)
    settings = okta.settings
    policy = OktaSecurityPolicy(
        okta.verifier,
        realm=settings.realm,
        principals=configured_principals(settings),
        request_verifier=okta.request_verifier,
        public_url=settings.public_url,
    )
    okta.security_policy = policy
    config.set_security_policy(policy)
    # An application's own set_request_factory wins over this one (Pyramid's rule
    # for actions of an included package).
    config.set_request_factory(OktaRequest)
