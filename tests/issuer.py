"""A real authorization server on loopback: RFC 8414 discovery and a JWKS over HTTP.

It mints tokens like Okta's and can be told to rotate keys, fail, hang, or
answer garbage, so tests exercise the verifier over real sockets.
"""
from __future__ import annotations

import base64
import functools
import json
import ssl
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from okta_pyramid.tokens.verifier import VerifiedToken


@functools.lru_cache(maxsize=None)
def rsa_key(index: int, bits: int = 2048) -> rsa.RSAPrivateKey:
    """The same generated key for the same index for the whole run (keygen is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def b64url_uint(value: int) -> str:
    data = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e), **extra}


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def jwk(self) -> dict[str, Any]:
        return public_jwk(self.private_key, self.kid)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

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
    """

    audience = "api://default"

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
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket,
                                                          server_side=True)
        scheme = "http" if ssl_context is None else "https"
        self.base_url = f"{scheme}://127.0.0.1:{self._server.server_port}"
        self.issuer = f"{self.base_url}/oauth2/default"
        self.jwks_uri = f"{self.issuer}/v1/keys"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()

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

    def mint(self, *, key: SigningKey | None = None, headers: dict[str, Any] | None = None,
             **claims: Any) -> str:
        """An RS256 access token signed with ``key`` (default: the first served key)."""
        return self.sign(json.dumps(self.claims(**claims)).encode(), key=key, headers=headers)

    def sign(self, payload: bytes, *, key: SigningKey | None = None,
             headers: dict[str, Any] | None = None) -> str:
        """An RS256 token of ``payload`` exactly as given, so tests can sign JSON that
        PyJWT's encoder would refuse to write."""
        key = key or self.keys[0]
        return jwt.api_jws.encode(payload, key.private_key, algorithm="RS256",
                                  headers={"kid": key.kid, **(headers or {})})

    def signature(self, signing_input: bytes) -> bytes:
        """The RS256 signature of ``signing_input`` with the first served key."""
        return self.keys[0].private_key.sign(signing_input, padding.PKCS1v15(),
                                             hashes.SHA256())

    def rotate(self, index: int, *, keep_old: bool = True) -> SigningKey:
        new = SigningKey(f"key-{index}", rsa_key(index))
        self.keys = [new, *self.keys] if keep_old else [new]
        return new

    # -- HTTP -----------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/v1/authorize",
            "token_endpoint": f"{self.issuer}/v1/token",
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["code"],
            **self.metadata_overrides,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as Okta does: a client may reuse the connection.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                issuer.hits[self.path] += 1
                prefix = "/oauth2/default"
                if self.path == f"{prefix}/v1/keys":
                    if issuer.jwks_delay:
                        time.sleep(issuer.jwks_delay)
                    body = issuer.jwks_override
                    if body is None:
                        body = {"keys": [k.jwk for k in issuer.keys]}
                    return self.answer(body)
                for name in issuer.well_known:
                    if self.path == f"{prefix}/.well-known/{name}":
                        return self.answer(issuer.metadata())
                self.send(404, b'{"errorCode":"E0000022"}')

            def answer(self, body: Any) -> None:
                if issuer.mode == "hang":
                    issuer.release.wait(30)
                    return
                if issuer.mode == "drip":
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
                if issuer.mode == "drip_headers":
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
                if issuer.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"{issuer.base_url}/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if issuer.mode == "error":
                    return self.send(500, b"internal error")
                if issuer.mode == "garbage":
                    return self.send(200, b"<html>not json")
                self.send(200, json.dumps(body).encode())

            def send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


_DROP = object()
#: Pass as a claim value to leave the claim out: ``issuer.mint(exp=DROP)``.
DROP = _DROP


def verified_token(claims: dict[str, Any]) -> VerifiedToken:
    """A token holding ``claims`` as if it had passed verification, for unit tests of
    what is built on a verified token."""
    return VerifiedToken(json.dumps(claims).encode(), claims, not_before=0.0,
                         not_after=float("inf"))


def unreachable_url() -> str:
    """A loopback URL where nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/oauth2/default"
