"""A real authorization server on loopback: RFC 8414 discovery, a JWKS, token
introspection (RFC 7662) and revocation (RFC 7009) over HTTP.

It mints tokens like Okta's and can be told to rotate keys, fail, hang, or
answer garbage, so tests exercise the verifier over real sockets. Its introspection
and revocation endpoints authenticate clients as strictly as Okta does
(RFC 6749 §2.3.1, RFC 7523 §2.2), so a client that gets it wrong is refused.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from okta_pyramid.tokens.verifier import VerifiedToken


@functools.cache
def rsa_key(index: int, bits: int = 2048) -> rsa.RSAPrivateKey:
    """The same generated key for the same index for the whole run (keygen is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def b64url_uint(value: int) -> str:
    data = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
        "n": b64url_uint(numbers.n),
        "e": b64url_uint(numbers.e),
        **extra,
    }


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def jwk(self) -> dict[str, Any]:
        return public_jwk(self.private_key, self.kid)


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: How far a client's clock may be ahead of the issuer's for ``iat`` and ``exp``.
ASSERTION_LEEWAY = 10
#: How far ahead a client assertion may expire (Okta refuses more than an hour).
ASSERTION_MAX_LIFETIME = 3600
#: The signature algorithms a client key may use, by key type (and EC curve).
_CLIENT_ALGORITHMS = {
    "RSA": {"RS256", "RS384", "RS512"},
    "secp256r1": {"ES256"},
    "secp384r1": {"ES384"},
}
#: What a form-urlencoded Basic credential may hold unescaped (RFC 6749 §2.3.1,
#: Appendix B); a raw ``:``, space or stray ``%`` means the client did not encode it.
_FORM_ENCODED = re.compile(r"(?:[A-Za-z0-9*\-._~+]|%[0-9A-Fa-f]{2})*")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class Client:
    """A client registered with the issuer: a secret (``client_secret_basic`` and
    ``client_secret_post``) and/or a public key (``private_key_jwt``: a JWK dict or a
    cryptography key; a private key stands for its public half)."""

    client_id: str
    secret: str | None = None
    public_key: Any = None
    kid: str | None = None

    def verifying_key(self) -> Any:
        if isinstance(self.public_key, dict):
            return jwt.PyJWK(self.public_key).key
        if hasattr(self.public_key, "public_key"):
            return self.public_key.public_key()
        return self.public_key

    def algorithms(self) -> set[str]:
        key = self.verifying_key()
        if isinstance(key, rsa.RSAPublicKey):
            return _CLIENT_ALGORITHMS["RSA"]
        if isinstance(key, ec.EllipticCurvePublicKey):
            return _CLIENT_ALGORITHMS.get(key.curve.name, set())
        return set()


@dataclass
class ClientKey:
    """A ``private_key_jwt`` client's own key, as a product would be configured with it."""

    client_id: str
    kid: str | None
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    algorithm: str

    @property
    def pem(self) -> bytes:
        """The private key as an unencrypted PKCS#8 PEM file's content."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass
class IntrospectionCall:
    """One request to the introspection or revocation endpoint, as the issuer saw it.

    ``method`` is the client authentication method tried (the RFC 8414 names
    ``client_secret_basic``, ``client_secret_post``, ``private_key_jwt``) and
    ``client_id`` the client it named; ``error`` is the OAuth error answered (None when
    the client was accepted) and ``reason`` says why, for a failing test's message.
    """

    form: dict[str, str]
    authorization: str | None
    client_id: str | None = None
    method: str | None = None
    assertion_header: dict[str, Any] | None = None
    assertion_claims: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None

    @property
    def token(self) -> str | None:
        return self.form.get("token")

    @property
    def token_type_hint(self) -> str | None:
        return self.form.get("token_type_hint")

    @property
    def status(self) -> int:
        """The status of the refusal (RFC 6749 §5.2), 200 when accepted."""
        return {None: 200, "invalid_client": 401}.get(self.error, 400)


class _Refused(Exception):
    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    #: Connections accepted so far.
    connections = 0

    def get_request(self) -> tuple[Any, Any]:
        connection, address = super().get_request()
        self.connections += 1
        # As production servers do: the handler writes its headers and body apart,
        # and Nagle's algorithm would hold the body for the client's delayed ACK.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (a fetch cut at its deadline, a kept-alive connection
        # closed) is part of what the tests do, not an error of the issuer.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackIssuer:
    """An issuer at ``http://127.0.0.1:<port>/oauth2/default``.

    ``mode`` changes how the discovery and JWKS endpoints answer: ``ok``, ``error``
    (HTTP 500), ``garbage`` (not JSON), ``hang`` (no answer until released),
    ``drip`` (a body promised and sent a byte at a time), ``drip_headers`` (a status
    line, then a header line every ``drip_interval`` seconds, the headers never ending),
    ``redirect`` (HTTP 302).
    With ``ssl_context`` it serves https instead, as a real issuer does.

    ``POST {issuer}/v1/introspect`` (RFC 7662) and ``POST {issuer}/v1/revoke``
    (RFC 7009) take a form and a client registered in ``clients`` (see
    :meth:`authenticate`); each request is kept in ``introspections`` or
    ``revocations``. A token is active when this issuer minted it (its signature checks
    with one of ``keys``, it has not expired) or registered it with :meth:`opaque`, and it
    has not been revoked. ``introspection_answer`` (a JSON value, raw ``bytes``, or a
    callable ``(token, call)`` returning either) replaces that judgement, and
    ``introspection_mode`` (the modes above, and ``huge``: a body over 1 MiB,
    ``unauthorized``: HTTP 401, ``rate_limited``: HTTP 429) and ``introspection_delay``
    make the endpoint fail or slow while discovery and keys still answer.
    """

    audience = "api://default"
    CLIENT_ID = "0oa-introspector"
    CLIENT_SECRET = "s3cret-for-introspection"

    #: Close each connection after one answer, without saying so (as a server whose
    #: idle keep-alive timeout has just run out does).
    hang_up_after_answer = False

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.keys: list[SigningKey] = [SigningKey("key-1", rsa_key(1))]
        self.mode = "ok"
        self.hits: Counter[str] = Counter()
        self.metadata_overrides: dict[str, Any] = {}
        self.jwks_override: Any = None
        self.well_known = {"oauth-authorization-server", "openid-configuration"}
        self.release = threading.Event()
        self.jwks_delay = 0.0
        self.drip_interval = 0.1
        self.clients: dict[str, Client] = {}
        self.add_client(self.CLIENT_ID, self.CLIENT_SECRET)
        self.introspections: list[IntrospectionCall] = []
        self.revocations: list[IntrospectionCall] = []
        self.introspection_answer: Any = None
        self.introspection_mode = "ok"
        self.introspection_delay = 0.0
        self.revoked: set[str] = set()
        self.opaque_tokens: dict[str, dict[str, Any]] = {}
        self._seen_assertions: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        scheme = "http" if ssl_context is None else "https"
        self.base_url = f"{scheme}://127.0.0.1:{self._server.server_port}"
        self.issuer = f"{self.base_url}/oauth2/default"
        self.jwks_uri = f"{self.issuer}/v1/keys"
        self.introspection_endpoint = f"{self.issuer}/v1/introspect"
        self.revocation_endpoint = f"{self.issuer}/v1/revoke"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self._server.connections

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    # -- tokens ---------------------------------------------------------------

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "ver": 1,
            "jti": "AT." + uuid.uuid4().hex,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + 3600,
            "cid": "0oa-test-client",
            "uid": "00u-test-user",
            "scp": ["openid", "profile"],
            "sub": "alice@example.com",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not _DROP}

    def mint(
        self, *, key: SigningKey | None = None, headers: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        """An RS256 access token signed with ``key`` (default: the first served key)."""
        return self.sign(json.dumps(self.claims(**claims)).encode(), key=key, headers=headers)

    def sign(
        self,
        payload: bytes,
        *,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """An RS256 token of ``payload`` exactly as given, so tests can sign JSON that
        PyJWT's encoder would refuse to write."""
        key = key or self.keys[0]
        return jwt.api_jws.encode(
            payload, key.private_key, algorithm="RS256", headers={"kid": key.kid, **(headers or {})}
        )

    def signature(self, signing_input: bytes) -> bytes:
        """The RS256 signature of ``signing_input`` with the first served key."""
        return self.keys[0].private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())

    def rotate(self, index: int, *, keep_old: bool = True) -> SigningKey:
        new = SigningKey(f"key-{index}", rsa_key(index))
        self.keys = [new, *self.keys] if keep_old else [new]
        return new

    # -- clients --------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        secret: str | None = None,
        *,
        public_key: Any = None,
        kid: str | None = None,
    ) -> Client:
        """Register a client (a JWK's own ``kid`` is its kid unless ``kid`` is given)."""
        if kid is None and isinstance(public_key, dict):
            kid = public_key.get("kid")
        client = Client(client_id, secret, public_key, kid)
        self.clients[client_id] = client
        return client

    def add_key_client(
        self,
        client_id: str = "0oa-key-client",
        *,
        kty: str = "RSA",
        index: int = 40,
        kid: str | None = "client-key-1",
    ) -> ClientKey:
        """Register a ``private_key_jwt`` client with a generated key: RSA (``rsa_key
        (index)``, RS256) or EC (P-256, ES256). ``kid=None`` registers no kid."""
        if kty == "RSA":
            private_key: Any = rsa_key(index)
            algorithm = "RS256"
        elif kty == "EC":
            private_key = ec.generate_private_key(ec.SECP256R1())
            algorithm = "ES256"
        else:
            raise ValueError(f"kty must be RSA or EC, not {kty!r}")
        self.add_client(client_id, public_key=private_key.public_key(), kid=kid)
        return ClientKey(client_id, kid, private_key, algorithm)

    def authenticate(self, call: IntrospectionCall, endpoint: str) -> None:
        """Check the client authentication of ``call`` made to ``endpoint``; fill in its
        ``method`` and ``client_id``, or raise :class:`_Refused`.

        Exactly one method (RFC 6749 §2.3): HTTP Basic with the form-urlencoded id and
        secret (§2.3.1), the secret in the form (§2.3.1), or a JWT signed with the
        client's key whose ``aud`` is ``endpoint`` (RFC 7523 §2.2, §3).
        """
        basic = (
            call.authorization is not None
            and call.authorization.split(" ", 1)[0].lower() == "basic"
        )
        tried = [
            method
            for method, present in (
                ("client_secret_basic", basic),
                ("client_secret_post", "client_secret" in call.form),
                (
                    "private_key_jwt",
                    "client_assertion" in call.form or "client_assertion_type" in call.form,
                ),
            )
            if present
        ]
        if len(tried) > 1:
            raise _Refused("invalid_request", f"more than one client authentication: {tried}")
        if not tried:
            raise _Refused("invalid_client", "no client authentication")
        call.method = tried[0]
        if call.method == "client_secret_basic":
            client_id, secret = self._basic_credentials(call)
            self._check_secret(call, client_id, secret)
        elif call.method == "client_secret_post":
            client_id = call.form.get("client_id", "")
            self._check_secret(call, client_id, call.form["client_secret"])
        else:
            client_id = self._check_assertion(call, endpoint)
        if call.form.get("client_id", client_id) != client_id:
            raise _Refused("invalid_client", "client_id in the form names another client")

    def _basic_credentials(self, call: IntrospectionCall) -> tuple[str, str]:
        assert call.authorization is not None
        try:
            decoded = base64.b64decode(
                call.authorization.split(" ", 1)[1].strip(), validate=True
            ).decode()
        except (IndexError, binascii.Error, UnicodeDecodeError):
            raise _Refused("invalid_client", "Basic credentials are not base64") from None
        encoded_id, colon, encoded_secret = decoded.partition(":")
        if not colon:
            raise _Refused("invalid_client", "Basic credentials have no colon")
        for part in (encoded_id, encoded_secret):
            if not _FORM_ENCODED.fullmatch(part):
                raise _Refused(
                    "invalid_client", "Basic id or secret is not form-urlencoded (RFC 6749 §2.3.1)"
                )
        return unquote_plus(encoded_id), unquote_plus(encoded_secret)

    def _check_secret(self, call: IntrospectionCall, client_id: str, secret: str) -> None:
        call.client_id = client_id
        client = self.clients.get(client_id)
        if client is None or client.secret is None:
            raise _Refused("invalid_client", f"no client {client_id!r} with a secret")
        if not hmac.compare_digest(secret.encode(), client.secret.encode()):
            raise _Refused("invalid_client", "wrong client secret")

    def _check_assertion(self, call: IntrospectionCall, endpoint: str) -> str:
        assertion = call.form.get("client_assertion")
        if call.form.get("client_assertion_type") != JWT_BEARER or assertion is None:
            raise _Refused(
                "invalid_request",
                f"private_key_jwt needs client_assertion_type={JWT_BEARER} and a client_assertion",
            )
        try:
            call.assertion_header = jwt.get_unverified_header(assertion)
            call.assertion_claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _Refused("invalid_client", f"client_assertion is not a JWT: {exc}") from None
        client_id = call.client_id = str(call.assertion_claims.get("iss"))
        client = self.clients.get(client_id)
        if client is None or client.public_key is None:
            raise _Refused("invalid_client", f"no client {client_id!r} with a key")
        algorithm = call.assertion_header.get("alg")
        if algorithm not in client.algorithms():
            raise _Refused("invalid_client", f"alg {algorithm!r} does not fit the client key")
        if client.kid is not None and call.assertion_header.get("kid") != client.kid:
            raise _Refused("invalid_client", f"kid is not the client's {client.kid!r}")
        try:
            # Every option explicit: the signature with the registered key only, exactly
            # this endpoint as aud (a string, or a list that holds it); iat is checked
            # below, the same on every PyJWT version.
            claims = jwt.decode(
                assertion,
                client.verifying_key(),
                algorithms=[algorithm],
                audience=endpoint,
                issuer=client_id,
                leeway=ASSERTION_LEEWAY,
                options={"require": ["iss", "sub", "aud", "exp", "jti"], "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise _Refused("invalid_client", f"client_assertion refused: {exc}") from None
        now = time.time()
        if claims["sub"] != client_id:
            raise _Refused("invalid_client", "client_assertion sub is not its iss")
        if claims["exp"] > now + ASSERTION_MAX_LIFETIME + ASSERTION_LEEWAY:
            raise _Refused("invalid_client", "client_assertion expires more than 1 h ahead")
        if "iat" in claims and claims["iat"] > now + ASSERTION_LEEWAY:
            raise _Refused("invalid_client", "client_assertion iat is in the future")
        with self._lock:
            if (client_id, str(claims["jti"])) in self._seen_assertions:
                raise _Refused("invalid_client", "client_assertion jti already used")
            self._seen_assertions.add((client_id, str(claims["jti"])))
        return client_id

    def receive(
        self, headers: Any, body: bytes, endpoint: str, calls: list[IntrospectionCall]
    ) -> IntrospectionCall:
        """The call a POST to ``endpoint`` makes: its form read, its client
        authenticated and its ``token`` required, any failure in ``error``."""
        call = IntrospectionCall({}, headers.get("Authorization"))
        calls.append(call)
        try:
            media_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media_type != "application/x-www-form-urlencoded":
                raise _Refused("invalid_request", f"body is {media_type!r}, not a form")
            try:
                # Blank parameters count as absent (RFC 6749 §3.1).
                pairs = parse_qsl(body.decode(), strict_parsing=bool(body), errors="strict")
            except (UnicodeDecodeError, ValueError):
                raise _Refused("invalid_request", "body is not a valid form") from None
            call.form = dict(pairs)
            if len(call.form) != len(pairs):
                raise _Refused("invalid_request", "a parameter is repeated (RFC 6749 §3.1)")
            self.authenticate(call, endpoint)
            if not call.token:
                raise _Refused("invalid_request", "no token")
        except _Refused as refused:
            call.error, call.reason = refused.error, refused.reason
        return call

    # -- introspection --------------------------------------------------------

    def opaque(self, **claims: Any) -> str:
        """A new opaque (not JWT) token whose active answer holds ``claims`` (as
        :meth:`claims` takes them) with what Okta adds (see :meth:`introspected`)."""
        token = secrets.token_urlsafe(32)
        self.opaque_tokens[token] = self.introspected(self.claims(**claims))
        return token

    def revoke(self, token: str) -> None:
        self.revoked.add(token)

    @staticmethod
    def introspected(claims: dict[str, Any]) -> dict[str, Any]:
        """Okta's active answer for a token holding ``claims``: ``scp`` and ``cid``
        answered as ``scope`` and ``client_id``, and ``token_type`` (``DPoP`` when
        bound to a key, RFC 9449 §6.2) and ``username`` (a user's token) added."""
        answer: dict[str, Any] = {"active": True}
        answer.update((k, v) for k, v in claims.items() if k not in ("scp", "cid"))
        if isinstance(claims.get("scp"), list):
            answer.setdefault("scope", " ".join(map(str, claims["scp"])))
        if "cid" in claims:
            answer.setdefault("client_id", claims["cid"])
        cnf = claims.get("cnf")
        answer.setdefault(
            "token_type", "DPoP" if isinstance(cnf, dict) and "jkt" in cnf else "Bearer"
        )
        if "uid" in claims and "sub" in claims:
            answer.setdefault("username", claims["sub"])
        return answer

    def introspection(self, token: str, call: IntrospectionCall) -> Any:
        """The answer to introspecting ``token`` (RFC 7662 §2.2)."""
        if callable(self.introspection_answer):
            return self.introspection_answer(token, call)
        if self.introspection_answer is not None:
            return self.introspection_answer
        if token in self.revoked:
            return {"active": False}
        if token in self.opaque_tokens:
            answer = self.opaque_tokens[token]
            exp = answer.get("exp")
            expired = isinstance(exp, (int, float)) and exp <= time.time()
            return {"active": False} if expired else answer
        claims = self._minted_claims(token)
        return {"active": False} if claims is None else self.introspected(claims)

    def _minted_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token signed with one of ``keys`` and not expired."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next((k for k in self.keys if k.kid == kid), None)
            if key is None:
                return None
            return jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["exp"]},
            )
        except jwt.PyJWTError:
            return None

    # -- HTTP -----------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
        algorithms = sorted(set().union(*_CLIENT_ALGORITHMS.values()))
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/v1/authorize",
            "token_endpoint": f"{self.issuer}/v1/token",
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["code"],
            "introspection_endpoint": self.introspection_endpoint,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
            "revocation_endpoint": self.revocation_endpoint,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
            **self.metadata_overrides,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self
        prefix = "/oauth2/default"

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as Okta does: a client may reuse the connection.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def parse_request(self) -> bool:
                # Decided when the request arrives, so that a test setting the flag
                # after an answer reached it never closes that answer's connection.
                self.hang_up = issuer.hang_up_after_answer
                return super().parse_request()

            def do_GET(self) -> None:
                issuer.hits[self.path] += 1
                if self.path == f"{prefix}/v1/keys":
                    if issuer.jwks_delay:
                        time.sleep(issuer.jwks_delay)
                    body = issuer.jwks_override
                    if body is None:
                        body = {"keys": [k.jwk for k in issuer.keys]}
                    return self.answer(body, issuer.mode)
                for name in issuer.well_known:
                    if self.path == f"{prefix}/.well-known/{name}":
                        return self.answer(issuer.metadata(), issuer.mode)
                self.send(404, b'{"errorCode":"E0000022"}')

            def do_POST(self) -> None:
                issuer.hits[self.path] += 1
                # Read the whole body first, so a refusal leaves the kept-alive
                # connection ready for the next request.
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == f"{prefix}/v1/introspect":
                    return self.introspect(body)
                if self.path == f"{prefix}/v1/revoke":
                    return self.revoke(body)
                self.send(404, b'{"errorCode":"E0000022"}')

            def introspect(self, body: bytes) -> None:
                call = issuer.receive(
                    self.headers, body, issuer.introspection_endpoint, issuer.introspections
                )
                if call.error:
                    return self.refuse(call)
                if issuer.introspection_delay:
                    time.sleep(issuer.introspection_delay)
                assert call.token is not None
                self.answer(
                    issuer.introspection(call.token, call), issuer.introspection_mode, _NO_STORE
                )

            def revoke(self, body: bytes) -> None:
                call = issuer.receive(
                    self.headers, body, issuer.revocation_endpoint, issuer.revocations
                )
                if call.error:
                    return self.refuse(call)
                assert call.token is not None
                issuer.revoke(call.token)
                self.send(200, b"", _NO_STORE)

            def refuse(self, call: IntrospectionCall) -> None:
                """An OAuth error answer (RFC 6749 §5.2): 401 asks again for Basic
                credentials when the client tried them."""
                headers = dict(_NO_STORE)
                if call.method == "client_secret_basic" and call.status == 401:
                    headers["WWW-Authenticate"] = 'Basic realm="oauth2"'
                body = {"error": call.error, "error_description": call.reason}
                self.send(call.status, json.dumps(body).encode(), headers)

            def answer(self, body: Any, mode: str, headers: dict[str, str] | None = None) -> None:
                """``body`` (JSON, or ``bytes`` sent as they are) as ``mode`` says."""
                if mode == "hang":
                    issuer.release.wait(30)
                    return
                if mode == "drip":
                    # Promise a body, then send it a byte at a time, slowly.
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    for _ in range(50):  # then give up, so a broken client cannot hang
                        if issuer.release.wait(0.1):
                            return
                        try:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                if mode == "drip_headers":
                    # Bytes keep coming, so no read ever times out, but the headers
                    # never end (as a stalled proxy might do).
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for line in range(600):  # then give up, so a broken client cannot hang
                        if issuer.release.wait(issuer.drip_interval):
                            return
                        try:
                            self.wfile.write(b"X-Drip-%d: 1\r\n" % line)
                        except OSError:
                            return
                    return
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"{issuer.base_url}/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "error":
                    return self.send(500, b"internal error")
                if mode == "garbage":
                    return self.send(200, b"<html>not json")
                if mode == "unauthorized":
                    return self.send(
                        401,
                        b'{"error":"invalid_client"}',
                        {"WWW-Authenticate": 'Basic realm="oauth2"'},
                    )
                if mode == "rate_limited":
                    # Okta's answer past a rate limit.
                    return self.send(429, b'{"errorCode":"E0000047"}')
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                if mode == "huge":
                    # Still the same JSON (trailing blanks are allowed), so only a
                    # limit on size can refuse it.
                    data += b" " * (1 << 20)
                self.send(200, data, headers)

            def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
                if self.hang_up:
                    # Closed without "Connection: close": the client learns it only
                    # when it uses the connection again.
                    self.close_connection = True

        return Handler


_DROP = object()
#: Pass as a claim value to leave the claim out: ``issuer.mint(exp=DROP)``.
DROP = _DROP


def verified_token(claims: dict[str, Any]) -> VerifiedToken:
    """A token holding ``claims`` as if it had passed verification, for unit tests of
    what is built on a verified token."""
    return VerifiedToken(
        json.dumps(claims).encode(), claims, not_before=0.0, not_after=float("inf")
    )


def unreachable_url() -> str:
    """A loopback URL where nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/oauth2/default"
