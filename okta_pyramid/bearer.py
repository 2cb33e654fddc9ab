"""The token in a request, read the way pyramid_jwt reads it: ``Authorization:
Bearer`` (RFC 6750) or ``DPoP`` (RFC 9449), one header, one token, never in the
query string. :class:`BearerTokenReader` is a pyramid_jwt
``JWTAuthenticationPolicy`` whose hooks do the work, so code written for
pyramid_jwt keeps working; the security policy (:mod:`okta_pyramid.security`)
asks it for the request's credentials and claims.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import parse_qsl

from pyramid.request import Request
from pyramid_jwt import JWTAuthenticationPolicy
from webob.request import BaseRequest

from .tokens import (
    Credentials,
    DPoPVerifier,
    InvalidDPoPProof,
    InvalidToken,
    RequestVerifier,
    SchemeNotAccepted,
    TokenJudge,
    VerifiedRequest,
    VerifiedToken,
    read_authorization,
)
from .tokens.exceptions import MalformedRequest, VerificationError
from .tokens.schemes import BEARER, DPOP
from .tokens.urls import split_authority

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# tuple.__new__: a NamedTuple's own __new__ costs as much again (as in tokens.schemes).
_tuple = tuple.__new__


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
        # The header as almost every request sends it: this reader's bearer scheme,
        # spelled as configured, and one space (see verified_request).
        self._bearer_prefix: str | None = (
            auth_type + " " if self._schemes[auth_type.lower()] == BEARER else None
        )

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
            if not has_valid_host(request):
                raise InvalidDPoPProof(
                    "the Host header is not an RFC 3986 host[:port]: the request's URL "
                    "cannot be compared with the DPoP proof's htu",
                    "dpop_host",
                )
            return _urls(request)[1]
        # path_url is application_url (scheme, host, SCRIPT_NAME) + the quoted PATH_INFO.
        application_url, path_url = _urls(request)
        return self.public_url + path_url[len(application_url) :]

    def verified_request(self, request: Request) -> VerifiedRequest | None:
        """The request's validated credentials, or ``None`` when it has none; raises
        :class:`MalformedRequest` or a :class:`~okta_pyramid.tokens.VerificationError`."""
        environ = request.environ
        header = environ.get(self._environ_key)
        prefix = self._bearer_prefix
        if (
            header is not None
            and prefix is not None
            and header.startswith(prefix)
            and not environ.get("QUERY_STRING")
        ):
            # What read_authorization makes of it (the scheme exactly as configured is
            # one of its case-insensitive matches), read in one step: this is nearly
            # every request. Without a query string there is no token in it to refuse.
            credentials = _tuple(Credentials, (BEARER, header[len(prefix) :].strip(" ")))
        else:
            found = self.credentials(request)
            if found is None:
                return None
            if found.scheme == DPOP:
                return self._verified_dpop(request, found)
            credentials = found
        # A Bearer request needs no URL and no proof, and judging it twice is only a
        # cache hit: the fast path stays as short as it was before DPoP.
        try:
            return self.request_verifier.check_bearer(credentials.token)
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


def has_valid_host(request: Request) -> bool:
    """Whether the host of the request's URL (its Host header, or what waitress put
    there from a trusted proxy's X-Forwarded-Host) is an RFC 3986 ``host[:port]``:
    WebOb copies it into every URL it builds unchecked."""
    environ = request.environ
    host = environ.get("HTTP_HOST")
    if host is None:
        host = f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    return _is_authority(host)


# The environ's values that WebOb's application_url and path_url read.
_URL_KEYS = ("wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME")


def _urls(request: Request) -> tuple[str, str]:
    """WebOb's ``(request.application_url, request.path_url)``, built once per distinct
    scheme, host, script name and path rather than once per request."""
    environ = request.environ
    return _webob_urls(
        *[environ.get(key) for key in _URL_KEYS],
        environ.get("PATH_INFO"),
        request.url_encoding,
    )


@functools.lru_cache(maxsize=1024)
def _webob_urls(
    scheme: str | None,
    http_host: str | None,
    server_name: str | None,
    server_port: str | None,
    script_name: str | None,
    path_info: str | None,
    url_encoding: str,
) -> tuple[str, str]:
    # WebOb itself builds them, from exactly the values it reads, so they are the
    # URLs it would build for the request; an error it raises is not remembered.
    values = (*_URL_KEYS, "PATH_INFO")
    given = (scheme, http_host, server_name, server_port, script_name, path_info)
    alone = BaseRequest(
        {key: value for key, value in zip(values, given, strict=True) if value is not None}
    )
    alone.url_encoding = url_encoding
    return alone.application_url, alone.path_url


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
