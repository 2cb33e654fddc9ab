"""The Pyramid 2 security policy: the credentials of a request become a verdict, and a
verdict an identity and principals. Nothing else happens here: views declare
permissions, and :mod:`okta_pyramid.errors` turns a verdict into an HTTP answer.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from pyramid.authorization import ACLHelper, Everyone
from pyramid.config import Configurator
from pyramid.decorator import reify
from pyramid.interfaces import ISecurityPolicy
from pyramid.request import Request
from pyramid_jwt import JWTAuthenticationPolicy
from zope.interface import implementer

from .parts import okta_parts
from .principals import BEARER_TOKEN, DPOP_TOKEN, configured_principals, principals_for
from .principals import issuer as issuer_principal
from .tokens import (
    Credentials,
    DPoPProof,
    DPoPVerifier,
    InvalidDPoPProof,
    InvalidToken,
    IssuerUnavailable,
    ReplayStoreFull,
    RequestVerifier,
    SchemeNotAccepted,
    TokenJudge,
    VerifiedRequest,
    VerifiedToken,
    read_authorization,
)
from .tokens.exceptions import MalformedRequest, VerificationError
from .tokens.introspection import IntrospectionUnavailable
from .tokens.schemes import BEARER, DPOP
from .tokens.shared import SharedStoreUnavailable
from .tokens.urls import split_authority

log = logging.getLogger(__name__)

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class BearerTokenReader(JWTAuthenticationPolicy):
    """pyramid_jwt's reader of the token in a request, kept to RFC 6750 (``Bearer``) and
    RFC 9449 (``DPoP``), and fed by the JWKS-backed
    :class:`~okta_pyramid.tokens.AccessTokenVerifier`.

    Its hooks do the work, as in pyramid_jwt: :meth:`token` reads the
    ``self.http_header`` header for the ``self.auth_type`` (or ``DPoP``) scheme,
    :meth:`jwt_decode` asks the verifier. The security policy calls
    :meth:`verified_request`, which judges the scheme, the token's binding and the
    DPoP proof with ``request_verifier``; ``request.jwt_claims`` calls
    :meth:`get_claims`. It is not a (Pyramid 1) authentication policy, and the parts
    of that role it inherits refuse to act.
    """

    def __init__(
        self,
        verifier: TokenJudge,
        *,
        http_header: str = "Authorization",
        auth_type: str = "Bearer",
        request_verifier: RequestVerifier | None = None,
        public_url: str | None = None,
    ) -> None:
        super().__init__(
            private_key=None,
            algorithm="RS256",
            leeway=verifier.leeway,
            http_header=http_header,
            auth_type=auth_type,
        )
        self.verifier = verifier
        #: Judges scheme, binding and proof; by default ``okta.dpop = allowed``.
        self.request_verifier = request_verifier or RequestVerifier(verifier, DPoPVerifier())
        #: The API's external base URL (``okta.public_url``), for the DPoP ``htu``.
        self.public_url = public_url.rstrip("/") if public_url else None
        # The header's schemes: this reader's bearer scheme, and DPoP.
        self._schemes = {auth_type.lower(): BEARER, DPOP.lower(): DPOP}
        # The WSGI name of the header (RFC 3875 §4.1.18), looked up without webob's
        # per-request header view.
        self._environ_key = "HTTP_" + http_header.upper().replace("-", "_")
        # One verdict per request and reader: a DPoP proof is single-use, so it can be
        # checked only once however often the request is asked about.
        self._verdict_key = f"_okta_pyramid_credentials_{id(self):x}"

    def credentials(self, request: Request) -> Credentials | None:
        """The scheme (``Bearer`` or ``DPoP``) and token of the request's header, or
        ``None`` when there is no such header. The scheme is compared
        case-insensitively (RFC 6750 §2.1, RFC 9110 §11.1).

        Raises :class:`MalformedRequest` for a token in the query string. Text that
        is not a b64token is refused by :meth:`verified_request`, only once the
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
        return read_authorization(request.environ.get(self._environ_key), self._schemes)

    def header_credentials(self, request: Request) -> Credentials | None:
        """What :meth:`credentials` reads from the header, whatever the query string
        holds (never raises)."""
        return read_authorization(request.environ.get(self._environ_key), self._schemes)

    def token(self, request: Request) -> str | None:
        """What follows the scheme in the request's header, or ``None`` (pyramid_jwt's
        hook; see :meth:`credentials`)."""
        credentials = self.credentials(request)
        return None if credentials is None else credentials.token

    def request_url(self, request: Request) -> str:
        """The URL of ``request`` as the client saw it, without the query (DPoP ``htu``):
        ``okta.public_url`` followed by the path below the application's root, or the
        request's own URL, whose scheme and host waitress takes from a trusted
        proxy's ``X-Forwarded-*`` headers.

        Raises :class:`~okta_pyramid.tokens.InvalidDPoPProof` when that host is not
        an RFC 3986 ``host[:port]``.
        """
        if self.public_url is None:
            # WebOb copies the Host header (or what waitress put there from a trusted
            # proxy's X-Forwarded-Host) into the URL unchecked: "api:8080/other-api"
            # would make this request's URL that of another service behind the same
            # host, and a proof signed for that service would pass.
            environ = request.environ
            host = environ.get("HTTP_HOST")
            if host is None:
                host = f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
            if not _is_authority(host):
                raise InvalidDPoPProof(
                    "the Host header is not an RFC 3986 host[:port]: the request's URL "
                    "cannot be compared with the DPoP proof's htu",
                    "dpop_host",
                )
            return request.path_url
        # path_url is application_url (scheme, host, SCRIPT_NAME) + the quoted PATH_INFO.
        return self.public_url + request.path_url[len(request.application_url) :]

    def verified_request(self, request: Request) -> VerifiedRequest | None:
        """The request's validated credentials, or ``None`` when it has none; raises
        :class:`MalformedRequest` or a :class:`~okta_pyramid.tokens.VerificationError`."""
        credentials = self.credentials(request)
        if credentials is None:
            return None
        if credentials.scheme == DPOP:
            return self._verified_dpop(request, credentials)
        # A Bearer request needs no URL and no proof, and judging it twice is only a
        # cache hit: the fast path stays as short as it was before DPoP.
        try:
            return self.request_verifier.check(credentials, request.environ["REQUEST_METHOD"], "")
        except SchemeNotAccepted:
            # The scheme is refused whatever follows it: a 401 with the challenge of
            # the accepted scheme, not a 400 about a token this API would never take.
            raise
        except InvalidToken:
            malformed = _malformed(credentials)
            if malformed is not None:
                raise malformed from None
            raise

    def _verified_dpop(self, request: Request, credentials: Credentials) -> VerifiedRequest:
        # A proof is single-use, so a DPoP request is judged once, however often it
        # is asked about (the policy, then request.jwt_claims).
        attributes = request.__dict__
        outcome = attributes.get(self._verdict_key)
        if outcome is None:
            # WSGI joins repeated headers with ", ", which the proof check refuses.
            proof = request.environ.get("HTTP_DPOP")
            try:
                # The URL is built (and its host checked) only once the scheme and
                # the token have passed.
                outcome = (
                    self.request_verifier.check(
                        credentials,
                        request.environ["REQUEST_METHOD"],
                        lambda: self.request_url(request),
                        () if proof is None else (proof,),
                    ),
                    None,
                )
            except SchemeNotAccepted as exc:
                outcome = (None, exc)  # as for Bearer: the scheme before the syntax
            except InvalidToken as exc:
                outcome = (None, _malformed(credentials) or exc)
            except VerificationError as exc:
                outcome = (None, exc)
            attributes[self._verdict_key] = outcome
        if outcome[1] is not None:
            raise outcome[1]
        return outcome[0]

    def verified_token(self, request: Request) -> VerifiedToken | None:
        """The request's validated token, or ``None`` when it has none (see
        :meth:`verified_request`)."""
        verified = self.verified_request(request)
        return None if verified is None else verified.token

    # -- pyramid_jwt's hooks --------------------------------------------------------

    def get_claims(self, request: Request) -> dict[str, Any]:
        """The validated claims, or ``{}`` when the request has no acceptable token
        (pyramid_jwt's contract, behind ``request.jwt_claims``), also when a view
        that needs a live token refused it (:func:`withhold_claims`)."""
        if _WITHHELD in request.__dict__:
            return {}
        try:
            verified = self.verified_request(request)
        except (MalformedRequest, VerificationError):
            return {}
        return {} if verified is None else verified.token.claims()

    def jwt_decode(self, request: Request, token: str) -> dict[str, Any]:
        """The token's claims if the verifier accepts it as a bearer token, else ``{}``.

        A token bound to a key (``cnf``) is no bearer token: without its proof it
        grants nothing here either (RFC 9449 §7.2).
        """
        try:
            # The request verifier's judge: with introspection configured, a token
            # that is not a JWT is introspected here too.
            verified = self.request_verifier.tokens.verify_token(token)
        except VerificationError:
            return {}
        return {} if verified.bound else verified.claims()

    # -- what a resource server does not do -------------------------------------------

    def create_token(self, *args: Any, **kw: Any) -> str:
        raise NotImplementedError(
            "okta_pyramid only verifies access tokens; the authorization server issues them"
        )

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
            "use request.authenticated_userid or request.identity"
        )

    def effective_principals(self, request: Request) -> Any:
        raise NotImplementedError(
            "okta_pyramid authorizes with a Pyramid 2 security policy: "
            "use request.identity.__principals__()"
        )


# Set on a request whose token a later check refused (a live view's introspection).
_WITHHELD = "_okta_pyramid_claims_withheld"


def withhold_claims(request: Request) -> None:
    """From now on ``request.jwt_claims`` is ``{}``: the token was refused after the
    policy accepted it (by introspection, on a view that needs a live token)."""
    attributes = request.__dict__
    attributes[_WITHHELD] = True
    # request.jwt_claims is reified: an earlier read left its value here.
    attributes["jwt_claims"] = {}


def _malformed(credentials: Credentials) -> MalformedRequest | None:
    # Asked only once the token was refused, so that a valid one is never scanned.
    if _B64TOKEN.fullmatch(credentials.token):
        return None
    # Not "<scheme> <token>": a malformed request (400), not a bad token (401).
    return MalformedRequest(
        f"the Authorization header must be '{credentials.scheme}' followed by one access token"
    )


@functools.lru_cache(maxsize=256)
def _is_authority(authority: str) -> bool:
    """Whether ``authority`` is an RFC 3986 ``host [ ":" port ]`` without userinfo
    (:func:`~okta_pyramid.tokens.urls.split_authority`; cached: a server sees the
    same few Host values)."""
    try:
        split_authority(authority)
    except ValueError:
        return False
    return True


def _has_access_token(query: str) -> bool:
    # Parsed from the raw string: webob's request.GET raises on bytes that are not
    # UTF-8 (?%ff), and this runs before any view could turn that into a 400.
    return any(
        name == "access_token"
        for name, _ in parse_qsl(query, keep_blank_values=True, errors="replace")
    )


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
        token = self.token
        return (
            *token.principals(self.principals_of),
            *_issuer_principal(token),
            _SCHEME_PRINCIPALS[self.scheme],
        )

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
        identity = self.identity(request)
        if identity is None:
            return self.helper.permits(context, _ANONYMOUS, permission)
        token = identity.token
        return self.helper.permits(
            context,
            (
                Everyone,
                *token.principals(identity.principals_of),
                *_issuer_principal(token),
                _SCHEME_PRINCIPALS[identity.scheme],
            ),
            permission,
        )

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
        proof = verified.proof
        if proof is not None and proof.next_nonce is not None:
            # RFC 9449 §8.2: the next nonce before the client's one expires.
            request.add_response_callback(_NonceOnResponse(proof.next_nonce))
        return Authentication(
            identity=TokenIdentity(verified.token, self.principals, verified.scheme, proof),
            scheme=verified.scheme,
        )

    def _scheme(self, request: Request) -> str | None:
        # The header's own scheme, even when the query string made the request
        # malformed: the challenge is that of the scheme the client used.
        credentials = self.reader.header_credentials(request)
        return None if credentials is None else credentials.scheme


_ANONYMOUS = (Everyone,)
_NO_TOKEN = Authentication()
_SCHEME_PRINCIPALS = {BEARER: BEARER_TOKEN, DPOP: DPOP_TOKEN}
# issuer URL -> ("issuer:<url>",). The URL is a verifier's, never a token's own text,
# so this holds one entry per configured issuer.
_ISSUER_PRINCIPALS: dict[str | None, tuple[str, ...]] = {None: ()}


def _issuer_principal(token: VerifiedToken) -> tuple[str, ...]:
    """The principal of the issuer that vouched for ``token`` (none when unknown)."""
    found = _ISSUER_PRINCIPALS.get(token.issuer)
    if found is None and token.issuer is not None:
        found = _ISSUER_PRINCIPALS[token.issuer] = (issuer_principal(token.issuer),)
    return found or ()


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
