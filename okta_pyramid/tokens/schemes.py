"""A request's credentials, judged whole: the ``Bearer`` (RFC 6750) and ``DPoP``
(RFC 9449) schemes, the token's binding, and the DPoP proof.

This module knows nothing of Pyramid; it is used on its own like this::

    check = RequestVerifier(AccessTokenVerifier(issuer, audience), DPoPVerifier())
    verified = check.verify("GET", "https://api.example.com/orders", headers)
    verified.token.claims(), verified.scheme, verified.proof   # or a VerificationError

The rules, in every mode (RFC 9449 §7.1 and §7.2):

- a token bound to a key (``cnf``) sent as ``Bearer`` is refused (``invalid_token``):
  accepting it would throw away the proof of possession that was its point;
- a token not bound to a DPoP key (no ``cnf.jkt``) sent as ``DPoP`` is refused
  (``invalid_token``);
- ``DPoP`` requests carry a proof for this method and URL, for this token
  (``ath``), signed with the token's key (``cnf.jkt``).

The mode (``okta.dpop``) says which schemes are accepted: ``allowed`` both,
``required`` only ``DPoP``, ``disabled`` only ``Bearer``. A scheme that is not
accepted raises :class:`SchemeNotAccepted`, naming the scheme to use instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple, TypeAlias

from .dpop import DPoPProof, DPoPVerifier
from .exceptions import InvalidToken, MalformedRequest
from .judge import TokenJudge
from .verifier import VerifiedToken

__all__ = [
    "BEARER",
    "DPOP",
    "MODES",
    "BindingMismatch",
    "Credentials",
    "RequestVerifier",
    "SchemeNotAccepted",
    "VerifiedRequest",
    "read_authorization",
]

BEARER = "Bearer"
DPOP = "DPoP"
log = logging.getLogger(__name__)

#: The values of ``okta.dpop``.
MODES = ("allowed", "required", "disabled")
# Scheme names compare case-insensitively (RFC 9110 §11.1); these are the spellings
# used in challenges.
_SCHEMES = {"bearer": BEARER, "dpop": DPOP}

#: The request URL, or a function that builds it (only DPoP requests need it).
URL: TypeAlias = str | Callable[[], str]
# Every request with a token builds these tuples: tuple.__new__ skips the Python-level
# __new__ that NamedTuple adds (half the cost on the cached-token path).
_tuple = tuple.__new__


class Credentials(NamedTuple):
    """What the ``Authorization`` header carries: the scheme and the token after it."""

    scheme: str
    token: str


class SchemeNotAccepted(InvalidToken):
    """The request used a scheme this API does not accept in its mode (``okta.dpop``).

    ``challenge`` is the scheme whose ``WWW-Authenticate`` challenge the answer carries.
    """

    reason = "scheme_not_accepted"

    def __init__(self, description: str, challenge: str) -> None:
        super().__init__(description)
        self.challenge = challenge


class BindingMismatch(InvalidToken):
    """A bound token sent as ``Bearer``, or an unbound one sent as ``DPoP``."""

    def __init__(self, description: str, reason: str) -> None:
        super().__init__(description)
        self.reason = reason


class VerifiedRequest(NamedTuple):
    """Credentials that passed every check."""

    token: VerifiedToken
    #: :data:`BEARER` or :data:`DPOP`.
    scheme: str
    #: The DPoP proof (``None`` for a ``Bearer`` request).
    proof: DPoPProof | None = None


def read_authorization(
    header: str | None, schemes: Mapping[str, str] = _SCHEMES
) -> Credentials | None:
    """The scheme and token of an ``Authorization`` header value, or ``None`` when it
    names neither ``Bearer`` nor ``DPoP`` (or is absent).

    The header is split once at its first space, the scheme compared
    case-insensitively (RFC 9110 §11.1); spaces around the token are dropped. Whether
    the token is a ``b64token`` (RFC 6750 §2.1) is left to the caller, which learns it
    cheaply once the token has been refused. ``schemes`` maps lower-case scheme names
    to :data:`BEARER` or :data:`DPOP`.
    """
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    name = schemes.get(scheme.lower())
    if name is None:
        return None
    return _tuple(Credentials, (name, token.strip(" ")))


class RequestVerifier:
    """Judges the credentials of a request: ``tokens`` checks the access token,
    ``dpop`` the proof (``None`` only in mode ``disabled``)."""

    def __init__(
        self,
        tokens: TokenJudge,
        dpop: DPoPVerifier | None = None,
        *,
        mode: str = "allowed",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if dpop is None and mode != "disabled":
            raise ValueError(f"mode {mode!r} needs a DPoPVerifier")
        self.tokens = tokens
        self.dpop = dpop if mode != "disabled" else None
        self.mode = mode
        #: The schemes a request may use, in the order of a 401's challenges.
        self.schemes: tuple[str, ...] = {
            "allowed": (BEARER, DPOP),
            "required": (DPOP,),
            "disabled": (BEARER,),
        }[mode]

    def verify(
        self, method: str, url: URL, headers: Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> VerifiedRequest | None:
        """Judge a request from its method, URL and headers (a mapping, or
        ``(name, value)`` pairs in which ``DPoP`` may repeat); ``None`` when it carries
        no ``Bearer`` or ``DPoP`` credentials.

        Raises :class:`~.exceptions.MalformedRequest` for a second ``Authorization``
        header (a field that may appear once, RFC 9110 §11.6.2): a WSGI server joins
        the two with a comma, which the same rule refuses there.
        """
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        authorization: str | None = None
        dpop_headers: list[str] = []
        for name, value in pairs:
            lowered = name.lower()
            if lowered == "authorization":
                if authorization is not None:
                    raise MalformedRequest("the request has more than one Authorization header")
                authorization = value
            elif lowered == "dpop":
                dpop_headers.append(value)
        credentials = read_authorization(authorization)
        if credentials is None:
            return None
        return self.check(credentials, method, url, dpop_headers)

    def check_bearer(self, token: str) -> VerifiedRequest:
        """:meth:`check` of ``Authorization: Bearer <token>`` (a Bearer request needs
        neither its method nor its URL)."""
        if self.mode == "required":
            raise SchemeNotAccepted(
                "this API accepts only DPoP-bound access tokens: send "
                "'Authorization: DPoP <token>' with a DPoP proof",
                DPOP,
            )
        verified = self.tokens.verify_token(token)
        if verified.bound:
            raise BindingMismatch(
                "the access token is bound to a key (cnf): send it as "
                "'Authorization: DPoP <token>' with a DPoP proof"
                if verified.jkt
                else "the access token is bound to a key this API cannot check (cnf "
                "without jkt, such as a client certificate's x5t#S256)",
                "bound_token_as_bearer",
            )
        return _tuple(VerifiedRequest, (verified, BEARER, None))

    def check(
        self, credentials: Credentials, method: str, url: URL, dpop_headers: Sequence[str] = ()
    ) -> VerifiedRequest:
        """Judge ``credentials`` read from a request of ``method`` to ``url`` that
        carried ``dpop_headers`` (every ``DPoP`` header value). Raises a
        :class:`~okta_pyramid.tokens.exceptions.VerificationError`."""
        if credentials.scheme == BEARER:
            return self.check_bearer(credentials.token)
        dpop = self.dpop
        if dpop is None:
            raise SchemeNotAccepted(
                "this API does not accept DPoP: send 'Authorization: Bearer <token>'", BEARER
            )
        token = self.tokens.verify_token(credentials.token)
        if token.jkt is None:
            raise BindingMismatch(
                "the access token is not bound to a DPoP key (no cnf.jkt)"
                + (
                    "; this API needs one"
                    if self.mode == "required"
                    else ": send it as 'Authorization: Bearer <token>'"
                ),
                "unbound_token_as_dpop",
            )
        # The proof check refuses every malformed proof itself (a property test holds
        # it to that), so nothing is caught here: a bug must show, not hide as a 401.
        proof = dpop.verify(
            dpop_headers,
            method,
            url() if callable(url) else url,
            access_token=credentials.token,
            jkt=token.jkt,
            access_token_digest=token.digest,
        )
        return _tuple(VerifiedRequest, (token, DPOP, proof))
