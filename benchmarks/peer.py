"""The peer of the end-to-end run: the same two endpoints on pyramid_jwt's own policy.

An application as pyramid_jwt's documentation writes it: ``JWTAuthenticationPolicy``
(PyJWT's ``jwt.decode``, RS256, the issuer's public key given at start-up, the
audience checked), Pyramid's ``ACLAuthorizationPolicy`` with a root ACL that lets
any authenticated caller in, ``/api/hello`` public and ``/api/whoami`` answering
the token's claims. :mod:`benchmarks.server` serves it under the same waitress
settings as okta_pyramid's application (``--app peer``), and the end-to-end run
sends it the same tokens.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from pyramid.authorization import ALL_PERMISSIONS, Allow, Authenticated, Deny, Everyone
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.router import Router
from pyramid.security import NO_PERMISSION_REQUIRED

from okta_pyramid.app.demo.views import HELLO

AUTHENTICATED = "authenticated"


class Root:
    __acl__ = ((Allow, Authenticated, AUTHENTICATED), (Deny, Everyone, ALL_PERMISSIONS))

    def __init__(self, request: Request) -> None:
        self.request = request


def hello(request: Request) -> Response:
    return Response(body=HELLO, headerlist=[("Content-Type", "application/json")])


def whoami(request: Request) -> Response:
    return Response(
        body=json.dumps(request.jwt_claims).encode(),
        headerlist=[("Content-Type", "application/json"), ("Cache-Control", "no-store")],
    )


def make_app(public_key_pem: str, audience: str) -> Router:
    """The peer application: ``public_key_pem`` is the issuer's signing key."""
    with warnings.catch_warnings():
        # Pyramid 2 deprecates the authentication and authorization policies that
        # pyramid_jwt is; the peer is pyramid_jwt as its users run it.
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyramid.authorization import ACLAuthorizationPolicy

        config = Configurator(root_factory=Root)
        config.include("pyramid_jwt")
        config.set_authorization_policy(ACLAuthorizationPolicy())
        config.set_jwt_authentication_policy(
            public_key=public_key_pem,
            algorithm="RS256",
            auth_type="Bearer",
            audience=audience,
        )
        config.set_default_permission(AUTHENTICATED)
        config.add_route("hello", "/api/hello")
        config.add_route("whoami", "/api/whoami")
        config.add_view(
            hello,
            route_name="hello",
            request_method=("GET", "HEAD"),
            permission=NO_PERMISSION_REQUIRED,
        )
        config.add_view(whoami, route_name="whoami", request_method=("GET", "HEAD"))
        return config.make_wsgi_app()


def public_key_pem(issuer: Any) -> str:
    """The loopback issuer's signing key, as an application would be configured with it."""
    from cryptography.hazmat.primitives import serialization

    key = issuer.keys[0].private_key.public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
