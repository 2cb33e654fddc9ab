"""The development issuer's endpoints, at the paths an Okta custom authorization
server uses under its issuer URI:

- ``/.well-known/oauth-authorization-server`` and ``/.well-known/openid-configuration``:
  metadata (RFC 8414);
- ``/v1/keys``: the public signing keys (RFC 7517);
- ``/v1/token``: the client-credentials grant (RFC 6749 §4.4), the
  authorization-code grant with PKCE (RFC 6749 §4.1.3, RFC 7636 §4.5) and the
  refresh-token grant with rotation (RFC 6749 §6), with DPoP-bound tokens for
  clients that send a proof (RFC 9449, :mod:`.dpop`);
- ``/v1/authorize``, ``/v1/userinfo`` and ``/v1/logout``: signing users in
  (:mod:`.authorize`);
- ``/v1/introspect``: whether a token is active, and what it grants (RFC 7662);
- ``/v1/revoke``: a client withdraws one of its own tokens (RFC 7009).

Every view is public: callers of a token endpoint authenticate as clients, not
with an access token. Every request under the issuer's path first passes one
guard (:class:`.local_only.LocalOnlyTween`), so an endpoint added later is guarded
too.
"""

from __future__ import annotations

import base64
import hmac
import logging
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from pyramid.authentication import extract_http_basic_credentials
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.tweens import INGRESS, MAIN

from ..errors import json_error
from ..tokens.dpop import DPoPProof, DPoPVerifier, InvalidDPoPProof, UseDPoPNonce
from ..tokens.exceptions import InvalidToken
from ..tokens.replay import ReplayStoreFull
from .authorize import CODE_VERIFIER, PROMPTS, RESPONSE_MODES
from .config import Client, DevIssuerSettings, is_scope_token
from .dpop import TOKEN_TYPE
from .introspection import active_claims, introspection_response
from .local_only import PAGE_ORIGIN
from .revocation import RevocationListFull, RevokedTokens
from .signin import ACR_VALUES, Family, Grant, SignIns, s256
from .tokens import TokenFactory

log = logging.getLogger(__name__)

GRANT_TYPE = "client_credentials"
CODE_GRANT = "authorization_code"
REFRESH_GRANT = "refresh_token"
GRANT_TYPES = (GRANT_TYPE, CODE_GRANT, REFRESH_GRANT)
#: RFC 6749 §2.3.1, at every endpoint where a client authenticates.
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
#: And ``none`` at the token endpoint: a public client sends its client_id only
#: (RFC 6749 §2.1, §4.1.3), proving itself with PKCE.
TOKEN_AUTH_METHODS = (*AUTH_METHODS, "none")
#: The OIDC scopes (OIDC Core §5.4, §11) every sign-in may ask for, as Okta has them.
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
#: The claims of this issuer's ID tokens and userinfo answers.
CLAIMS = (
    "iss", "ver", "sub", "aud", "iat", "exp", "jti", "auth_time", "amr", "acr", "idp",
    "nonce", "at_hash", "name", "preferred_username", "email", "email_verified", "groups",
)  # fmt: skip
FORM = "application/x-www-form-urlencoded"
# A token request is a few hundred bytes; refuse to parse anything much larger.
MAX_BODY_BYTES = 16 * 1024
# Compared against when the client id is unknown, so both cases take as long.
_NO_SECRET = b"\0" * 32


class TokenError(Exception):
    """An OAuth error response (RFC 6749 §5.2), with the headers it needs."""

    def __init__(
        self, error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}


def metadata(request: Request) -> dict[str, Any]:
    """Authorization server metadata (RFC 8414 §2); URLs derive from the issuer."""
    settings: DevIssuerSettings = request.registry.devissuer_settings
    issuer = settings.issuer.rstrip("/")
    request.response.cache_control = "no-cache"
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": f"{issuer}/v1/authorize",
        "token_endpoint": f"{issuer}/v1/token",
        "userinfo_endpoint": f"{issuer}/v1/userinfo",
        "end_session_endpoint": f"{issuer}/v1/logout",
        "jwks_uri": f"{issuer}/v1/keys",
        "response_types_supported": ["code"],
        "response_modes_supported": list(RESPONSE_MODES),
        "grant_types_supported": list(GRANT_TYPES),
        # RFC 7636: S256 only; plain is refused.
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "prompt_values_supported": list(PROMPTS),
        "acr_values_supported": list(ACR_VALUES),
        "claims_supported": list(CLAIMS),
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "token_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
        "introspection_endpoint": f"{issuer}/v1/introspect",
        "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint": f"{issuer}/v1/revoke",
        "revocation_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
        "scopes_supported": sorted(
            {s for c in settings.clients for s in c.scopes} | set(OIDC_SCOPES)
        ),
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        # RFC 9449 §5.1: the algorithms the token endpoint accepts in DPoP proofs.
        "dpop_signing_alg_values_supported": list(request.registry.devissuer_dpop.algorithms),
    }


def keys(request: Request) -> dict[str, Any]:
    """The JWK Set; ``no-cache`` so a rotation shows at once."""
    request.response.cache_control = "no-cache"
    return request.registry.devissuer_tokens.keys.jwks()


def token(request: Request) -> Response | dict[str, Any]:
    """The token endpoint (RFC 6749 §3.2), answered as Okta does: the
    client-credentials grant (§4.4) for confidential clients, the authorization-code
    grant (§4.1.3) with its PKCE verifier (RFC 7636 §4.5), and the refresh-token
    grant (§6) with rotation.

    With a ``DPoP`` header the access token is bound to the proof's key (RFC 9449
    §5); without one it is a bearer token, unless the client requires DPoP. A refresh
    token issued with a proof needs a proof of the same key (RFC 9449 §5).
    """
    settings: DevIssuerSettings = request.registry.devissuer_settings
    try:
        params = _form(request)
        client = _authenticate_client(request, params, settings, public_allowed=True)
        _check_page(request, client)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise TokenError("invalid_request", "the grant_type parameter is required")
        if grant_type not in GRANT_TYPES:
            raise TokenError(
                "unsupported_grant_type", f"the grant types are {', '.join(GRANT_TYPES)}"
            )
        if grant_type == GRANT_TYPE:
            return _client_credentials(request, params, client)
        if not client.redirect_uris:
            raise TokenError(
                "unauthorized_client",
                f"client {client.client_id!r} has no redirect URI, so no user signs in to it",
            )
        if grant_type == CODE_GRANT:
            return _code_grant(request, params, client)
        return _refresh_grant(request, params, client)
    except TokenError as exc:
        log.info("token refused: error=%s client=%s", exc.error, request.remote_addr)
        return _error(exc, settings)


def _check_page(request: Request, client: Client) -> None:
    """A web page (a trusted origin, :mod:`.local_only`) may use only a public client
    that trusts its origin: never a confidential client, whose secret sits in
    development.ini."""
    page = request.environ.get(PAGE_ORIGIN)
    if page is not None and not client.trusts_origin(page):
        raise TokenError(
            "unauthorized_client",
            f"a web page on {page[:80]} may only use a public client with a redirect "
            "URI on that origin",
        )


def _client_credentials(request: Request, params: dict[str, str], client: Client) -> dict[str, Any]:
    settings: DevIssuerSettings = request.registry.devissuer_settings
    factory: TokenFactory = request.registry.devissuer_tokens
    if client.public:
        # RFC 6749 §4.4: only a confidential client may use this grant.
        raise TokenError(
            "unauthorized_client", "a public client cannot use the client_credentials grant"
        )
    scopes = _scopes(params.get("scope"), client)
    # Last: a proof is used up (its jti remembered) only by a request that gets a token.
    proof = _dpop_proof(request, client)
    jkt = proof.jkt if proof is not None else None
    token_type = TOKEN_TYPE if proof is not None else "Bearer"
    access_token = factory.client_token(client.client_id, scopes, jkt=jkt)
    log.info(
        "token issued: client_id=%s scope=%s token_type=%s kid=%s client=%s",
        client.client_id,
        " ".join(scopes),
        token_type,
        factory.keys.signing_key.kid,
        request.remote_addr,
    )
    _no_store(request, proof)
    return {
        "token_type": token_type,
        "expires_in": settings.token_lifetime,
        "access_token": access_token,
        "scope": " ".join(scopes),
    }


def _code_grant(request: Request, params: dict[str, str], client: Client) -> dict[str, Any]:
    """RFC 6749 §4.1.3 and RFC 7636 §4.6: the code is this client's, unused and live;
    the redirect URI is the one of the authorization request; the verifier hashes to
    its challenge."""
    signins: SignIns = request.registry.devissuer_signins
    code = params.get("code")
    verifier = params.get("code_verifier")
    redirect_uri = params.get("redirect_uri")
    if not code:
        raise TokenError("invalid_request", "the code parameter is required")
    if not redirect_uri:
        raise TokenError("invalid_request", "the redirect_uri parameter is required")
    if not verifier:
        raise TokenError("invalid_request", "PKCE is required: send the code_verifier")
    if not CODE_VERIFIER.fullmatch(verifier):
        raise TokenError(
            "invalid_request",
            "the code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        )
    # The proof first: a request answered use_dpop_nonce must leave the code unused.
    proof = _dpop_proof(request, client)
    grant, family = signins.redeem_code(code, client.client_id)
    if grant is None:
        if family is not None:
            # RFC 6749 §4.1.2: a code used twice revokes what it was exchanged for.
            _revoke_family(request, family)
            log.warning(
                "authorization code used twice: revoked its tokens client_id=%s",
                client.client_id,
            )
        raise TokenError(
            "invalid_grant",
            "the authorization code is invalid, expired, used or issued to another client",
        )
    if grant.redirect_uri != redirect_uri:
        raise TokenError(
            "invalid_grant", "the redirect_uri differs from the one of the authorization request"
        )
    if not hmac.compare_digest(s256(verifier), grant.code_challenge):
        raise TokenError("invalid_grant", "the code_verifier does not match the code_challenge")
    family_state = signins.family(grant.family)
    if family_state is not None and proof is not None:
        family_state.jkt = proof.jkt
    return _user_tokens(request, client, grant, proof, nonce=grant.nonce)


def _refresh_grant(request: Request, params: dict[str, str], client: Client) -> dict[str, Any]:
    """RFC 6749 §6, rotated: each refresh token works once, and one used again revokes
    every token of its family (OAuth 2.0 Security BCP §4.14.2)."""
    signins: SignIns = request.registry.devissuer_signins
    refresh_token = params.get("refresh_token")
    if not refresh_token:
        raise TokenError("invalid_request", "the refresh_token parameter is required")
    # The proof first: a request answered use_dpop_nonce must leave the token unused.
    proof = _dpop_proof(request, client)
    jkt = proof.jkt if proof is not None else None
    grant, family, reused = signins.rotate_refresh_token(refresh_token, client.client_id, jkt)
    if reused and family is not None:
        _revoke_family(request, family)
        log.warning(
            "refresh token reused: revoked its family of tokens client_id=%s", client.client_id
        )
    if grant is None or family is None:
        raise TokenError(
            "invalid_grant",
            "the refresh token is invalid, expired, used, revoked, issued to another "
            "client or bound to another DPoP key",
        )
    scopes = grant.scopes
    if params.get("scope"):
        asked = tuple(dict.fromkeys(s for s in params["scope"].split(" ") if s))
        if not set(asked) <= set(grant.scopes):
            raise TokenError("invalid_scope", "a refresh may only narrow the granted scopes")
        scopes = asked
    return _user_tokens(request, client, replace(grant, scopes=scopes), proof, nonce=None)


def _user_tokens(
    request: Request, client: Client, grant: Grant, proof: DPoPProof | None, *, nonce: str | None
) -> dict[str, Any]:
    """The access token, ID token (with ``openid``) and refresh token (with
    ``offline_access``) of a signed-in user, as Okta answers (OIDC Core §3.1.3.3)."""
    settings: DevIssuerSettings = request.registry.devissuer_settings
    factory: TokenFactory = request.registry.devissuer_tokens
    signins: SignIns = request.registry.devissuer_signins
    user = grant.user
    jkt = proof.jkt if proof is not None else None
    claims = factory.user_claims(
        user.username,
        client_id=client.client_id,
        scopes=grant.scopes,
        groups=user.groups,
        jkt=jkt,
        acr=user.acr,
        amr=user.amr,
        auth_time=user.auth_time,
    )
    access_token = factory.sign(claims)
    family = signins.family(grant.family)
    if family is not None:
        family.access_tokens.append((claims["jti"], claims["exp"]))
    answer: dict[str, Any] = {
        "token_type": TOKEN_TYPE if proof is not None else "Bearer",
        "expires_in": settings.token_lifetime,
        "access_token": access_token,
        "scope": " ".join(grant.scopes),
    }
    if "openid" in grant.scopes:
        answer["id_token"] = factory.id_token(
            user.username,
            client_id=client.client_id,
            scopes=grant.scopes,
            auth_time=user.auth_time,
            acr=user.acr,
            amr=user.amr,
            access_token=access_token,
            nonce=nonce,
            groups=user.groups,
        )
    if "offline_access" in grant.scopes:
        answer["refresh_token"] = signins.issue_refresh_token(grant)
    log.info(
        "token issued: client_id=%s user=%r scope=%s token_type=%s acr=%s client=%s",
        client.client_id,
        user.username,
        answer["scope"],
        answer["token_type"],
        user.acr,
        request.remote_addr,
    )
    _no_store(request, proof)
    return answer


def _revoke_family(request: Request, family: Family) -> None:
    """Revoke a family's refresh tokens and its access tokens (their jti)."""
    signins: SignIns = request.registry.devissuer_signins
    revoked: RevokedTokens = request.registry.devissuer_revoked
    signins.revoke_family(family)
    for jti, exp in family.access_tokens:
        try:
            revoked.revoke(jti, exp)
        except RevocationListFull:
            log.warning("revocation list full: an access token of a revoked family stays active")


def _no_store(request: Request, proof: DPoPProof | None) -> None:
    # RFC 6749 §5.1: responses carrying tokens must not be cached.
    request.response.cache_control = "no-store"
    request.response.pragma = "no-cache"
    if proof is not None and proof.next_nonce is not None:
        # RFC 9449 §8.2: the nonce this proof used is about to expire; here is the next.
        request.response.headers["DPoP-Nonce"] = proof.next_nonce


def introspect(request: Request) -> Response | dict[str, Any]:
    """Token introspection (RFC 7662), answered as an Okta custom authorization server
    does: any of the issuer's clients may ask about any token of the issuer (a
    resource server asks about tokens issued to other clients).

    Anything that is not an active token of this issuer gets ``{"active": false}``
    and nothing more (§2.2): the reason goes to the log only.
    """
    settings: DevIssuerSettings = request.registry.devissuer_settings
    try:
        params = _form(request)
        client = _authenticate_client(request, params, settings)
        token = _token_param(params)
    except TokenError as exc:
        log.info("introspection refused: error=%s client=%s", exc.error, request.remote_addr)
        return _error(exc, settings)
    # RFC 7662 §2.1: token_type_hint is optional and only a hint; this issuer has
    # one kind of token, so any hint (known or not) is ignored.
    request.response.cache_control = "no-store"
    request.response.pragma = "no-cache"
    try:
        claims = _active_claims(request, token)
    except InvalidToken as exc:
        log.info(
            "token introspected: active=false reason=%s client_id=%s client=%s",
            exc.reason,
            client.client_id,
            request.remote_addr,
        )
        return {"active": False}
    log.info(
        "token introspected: active=true jti=%s cid=%s client_id=%s client=%s",
        claims["jti"],
        claims["cid"],
        client.client_id,
        request.remote_addr,
    )
    return introspection_response(claims)


def revoke(request: Request) -> Response:
    """Token revocation (RFC 7009): a client revokes one of its own tokens.

    The answer is 200 with an empty body whether the token was active, already
    revoked, expired, or not a token of this issuer at all (§2.2), so that it tells
    nothing about tokens the client does not hold. A client's attempt to revoke
    another client's active token is refused (§2.1) with ``unauthorized_client``.

    A public client identifies itself by its ``client_id`` (§2.1, as Okta lets
    browser apps revoke). Revoking a refresh token revokes every token of its grant,
    access tokens included (§2.1: "SHOULD also invalidate all access tokens based on
    the same authorization grant").
    """
    settings: DevIssuerSettings = request.registry.devissuer_settings
    revoked: RevokedTokens = request.registry.devissuer_revoked
    signins: SignIns = request.registry.devissuer_signins
    try:
        params = _form(request)
        client = _authenticate_client(request, params, settings, public_allowed=True)
        _check_page(request, client)
        token = _token_param(params)
        refresh = signins.refresh_grant(token)
        if refresh is not None:
            grant, family = refresh
            if grant.client_id != client.client_id:
                raise TokenError(
                    "unauthorized_client",
                    "a client may only revoke its own tokens; this token was issued to "
                    "another client",
                )
            _revoke_family(request, family)
            log.info(
                "refresh token revoked with its grant's tokens: client_id=%s client=%s",
                client.client_id,
                request.remote_addr,
            )
            return _revoked_response()
        try:
            # RFC 7009 §2.1: token_type_hint is optional, and an unknown value is
            # ignored; this issuer has one kind of token, so every hint is.
            claims = _active_claims(request, token)
        except InvalidToken as exc:
            log.info(
                "revocation of an inactive token: reason=%s client_id=%s client=%s",
                exc.reason,
                client.client_id,
                request.remote_addr,
            )
            return _revoked_response()
        if claims["cid"] != client.client_id:
            # RFC 7009 §2.1: "verifies whether the token was issued to the client
            # making the revocation request. If this validation fails, the request
            # is refused". RFC 6749 §5.2's code for an authenticated client that may
            # not do what it asked.
            raise TokenError(
                "unauthorized_client",
                "a client may only revoke its own tokens; this token was issued to another client",
            )
        try:
            revoked.revoke(claims["jti"], claims["exp"])
        except RevocationListFull as exc:
            # RFC 7009 §2.2.1: on a 503 the client assumes the token is still valid.
            raise TokenError(
                "temporarily_unavailable",
                exc.description,
                503,
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
    except TokenError as exc:
        log.info("revocation refused: error=%s client=%s", exc.error, request.remote_addr)
        return _error(exc, settings)
    log.info(
        "token revoked: jti=%s client_id=%s client=%s",
        claims["jti"],
        client.client_id,
        request.remote_addr,
    )
    return _revoked_response()


def method_not_allowed(request: Request) -> Response:
    response = json_error(405, "invalid_request", "this endpoint only accepts POST")
    response.allow = ("POST",)
    return response


def _token_param(params: dict[str, str]) -> str:
    token = params.get("token")
    if not token:
        raise TokenError("invalid_request", "the token parameter is required")
    return token


def _active_claims(request: Request, token: str) -> dict[str, Any]:
    """The claims of ``token`` if it is an active token of this issuer; raises
    :class:`InvalidToken` otherwise."""
    factory: TokenFactory = request.registry.devissuer_tokens
    return active_claims(
        token,
        issuer=factory.settings.issuer,
        keys=factory.keys,
        revoked=request.registry.devissuer_revoked,
        now=factory.clock(),
    )


def _revoked_response() -> Response:
    # RFC 7009 §2.2: 200, and the content of the body is ignored by the client: none.
    response = Response(status=200)
    response.content_type = None
    response.cache_control = "no-store"
    return response


def _form(request: Request) -> dict[str, str]:
    if request.content_type.lower() != FORM:  # media types are case-insensitive
        raise TokenError("invalid_request", f"the request body must be {FORM}")
    raw = request.body_file.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise TokenError("invalid_request", "the request body is too large")
    try:
        # Strict, unlike a lenient form parser: a form body is ASCII whose
        # percent-escapes spell UTF-8 (HTML's application/x-www-form-urlencoded).
        items = parse_qsl(
            raw.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise TokenError("invalid_request", "the request body is not UTF-8 form data") from None
    params: dict[str, str] = {}
    for name, value in items:
        # RFC 6749 §3.2: parameters must not be included more than once.
        if name in params:
            raise TokenError("invalid_request", f"the {name[:40]!r} parameter is repeated")
        params[name] = value
    return params


def _authenticate_client(
    request: Request,
    params: dict[str, str],
    settings: DevIssuerSettings,
    *,
    public_allowed: bool = False,
) -> Client:
    """Client authentication by HTTP Basic or form fields (RFC 6749 §2.3.1), one only;
    with ``public_allowed`` (the token endpoint), a public client by its
    ``client_id`` alone (RFC 6749 §3.2.1)."""
    header = request.headers.get("Authorization", "")
    if header.split(" ", 1)[0].lower() == "basic":
        if "client_secret" in params:
            # RFC 6749 §2.3: a client must not use more than one method.
            raise TokenError(
                "invalid_request", "authenticate the client with one method: Basic or form"
            )
        credentials = extract_http_basic_credentials(request)
        public_id = _basic_public_client_id(header) if public_allowed else None
        if credentials is None and public_id is None:
            raise TokenError("invalid_client", "the Basic credentials are malformed", 401)
        if credentials is None or (public_id is not None and not credentials.password):
            # okta-auth-js sends a public client's id alone as Basic credentials
            # ("Basic base64(client_id)", no colon), and Okta takes it; so does this.
            client_id = unquote_plus(public_id or "")
            public = settings.client(client_id)
            if public is None or not public.public:
                raise TokenError(
                    "invalid_client",
                    "client authentication failed: unknown client, or a confidential "
                    "client without its secret",
                    401,
                )
            if params.get("client_id", client_id) != client_id:
                raise TokenError(
                    "invalid_request", "client_id in the body differs from the Basic credentials"
                )
            return public
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        client_id = unquote_plus(credentials.username)
        secret = unquote_plus(credentials.password)
        if params.get("client_id", client_id) != client_id:
            raise TokenError(
                "invalid_request", "client_id in the body differs from the Basic credentials"
            )
    elif "client_id" in params and "client_secret" in params:
        client_id, secret = params["client_id"], params["client_secret"]
    elif public_allowed and "client_id" in params:
        public = settings.client(params["client_id"])
        if public is None or not public.public:
            raise TokenError(
                "invalid_client",
                "client authentication failed: unknown client, or a confidential client "
                "without its secret",
                401,
            )
        return public
    else:
        raise TokenError(
            "invalid_client",
            "client authentication is required: HTTP Basic or "
            "client_id and client_secret in the body",
            401,
        )
    client = settings.client(client_id)
    # A public client has no secret: its "-" placeholder never authenticates.
    expected = client.secret.encode("utf-8") if client and not client.public else _NO_SECRET
    if (
        not hmac.compare_digest(secret.encode("utf-8", "replace"), expected)
        or client is None
        or client.public
    ):
        raise TokenError(
            "invalid_client", "client authentication failed: unknown client or wrong secret", 401
        )
    return client


def _basic_public_client_id(header: str) -> str | None:
    """The client id of ``Basic base64(client_id)`` or ``Basic base64(client_id:)``:
    a public client naming itself without a secret; ``None`` for anything else."""
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True)
        text = decoded.decode("utf-8")
    except (IndexError, ValueError):
        return None
    client_id, _, secret = text.partition(":")
    if not client_id or secret or not client_id.isprintable():
        return None
    return client_id


def _dpop_proof(request: Request, client: Client) -> DPoPProof | None:
    """The request's valid DPoP proof (RFC 9449 §4.3), or ``None`` without one."""
    # WSGI joins repeated headers with ", ", which the checker refuses as malformed.
    header = request.environ.get("HTTP_DPOP")
    if header is None:
        if client.dpop_required:
            raise TokenError(
                "invalid_dpop_proof",
                f"client {client.client_id!r} must send a DPoP proof "
                "(a DPoP header) with its token requests",
            )
        return None
    verifier: DPoPVerifier = request.registry.devissuer_dpop
    try:
        # The token endpoint's URL as the client called it (LocalOnlyTween has checked
        # the Host); no access token yet, so no ath (RFC 9449 §4.2).
        return verifier.verify([header], request.method, request.path_url)
    except UseDPoPNonce as exc:
        # RFC 9449 §8: a 400 whose DPoP-Nonce header the client puts in its next proof.
        raise TokenError(
            "use_dpop_nonce",
            "the authorization server requires a nonce "
            "in the DPoP proof: retry with the DPoP-Nonce of this answer",
            headers={"DPoP-Nonce": exc.nonce},
        ) from None
    except InvalidDPoPProof as exc:
        log.info("DPoP proof refused: reason=%s client_id=%s", exc.reason, client.client_id)
        raise TokenError("invalid_dpop_proof", exc.description) from None
    except ReplayStoreFull as exc:
        raise TokenError(
            "temporarily_unavailable",
            exc.description,
            503,
            headers={"Retry-After": str(exc.retry_after)},
        ) from None


def _scopes(raw: str | None, client: Client) -> list[str]:
    if not raw or not raw.strip(" "):
        raise TokenError(
            "invalid_scope",
            "the scope parameter is required; ask for one "
            "or more of: " + " ".join(sorted(client.scopes)),
        )
    scopes = list(dict.fromkeys(s for s in raw.split(" ") if s))
    for scope in scopes:
        if not is_scope_token(scope) or scope not in client.scopes:
            raise TokenError(
                "invalid_scope", f"the client may not ask for the scope {scope[:60]!r}"
            )
    return scopes


def _error(exc: TokenError, settings: DevIssuerSettings) -> Response:
    response = json_error(exc.status, exc.error, exc.description)
    response.pragma = "no-cache"
    response.headers.update(exc.headers)
    if exc.status == 401:
        # RFC 6749 §5.2: a 401 names the authentication scheme the client should use.
        response.headers["WWW-Authenticate"] = f'Basic realm="{settings.issuer}"'
    return response


def includeme(config: Configurator) -> None:
    settings: DevIssuerSettings = config.registry.devissuer_settings
    base = settings.path
    # Over the CORS tween, so no preflight to the issuer is answered for another origin.
    config.add_tween(
        "okta_pyramid.devissuer.local_only.LocalOnlyTween",
        under=("okta_pyramid.logs.RequestIdTween", INGRESS),
        over=("okta_pyramid.cors.CORSTween", MAIN),
    )
    for name in ("oauth-authorization-server", "openid-configuration"):
        route = f"devissuer.{name}"
        config.add_route(route, f"{base}/.well-known/{name}")
        config.add_view(
            metadata,
            route_name=route,
            request_method=("GET", "HEAD"),
            renderer="json",
            permission=NO_PERMISSION_REQUIRED,
        )
    config.add_route("devissuer.keys", f"{base}/v1/keys")
    config.add_view(
        keys,
        route_name="devissuer.keys",
        request_method=("GET", "HEAD"),
        renderer="json",
        permission=NO_PERMISSION_REQUIRED,
    )
    config.include(".authorize")
    config.add_route("devissuer.token", f"{base}/v1/token")
    config.add_view(
        token,
        route_name="devissuer.token",
        request_method="POST",
        renderer="json",
        permission=NO_PERMISSION_REQUIRED,
    )
    config.add_route("devissuer.introspect", f"{base}/v1/introspect")
    config.add_view(
        introspect,
        route_name="devissuer.introspect",
        request_method="POST",
        renderer="json",
        permission=NO_PERMISSION_REQUIRED,
    )
    config.add_route("devissuer.revoke", f"{base}/v1/revoke")
    config.add_view(
        revoke,
        route_name="devissuer.revoke",
        request_method="POST",
        permission=NO_PERMISSION_REQUIRED,
    )
    for route in ("devissuer.token", "devissuer.introspect", "devissuer.revoke"):
        config.add_view(method_not_allowed, route_name=route, permission=NO_PERMISSION_REQUIRED)
