"""okta_pyramid: protect a Pyramid API with OAuth 2.0 access tokens from Okta."""
from __future__ import annotations

from typing import Any

from pyramid.config import Configurator

from .permissions import AUTHENTICATED, Root
from .security import OktaSecurityPolicy
from .settings import parse_settings
from .verifier import AccessTokenVerifier

__all__ = ["includeme", "main"]


def includeme(config: Configurator) -> None:
    """Protect the including application with Okta access tokens.

    ``config.include("okta_pyramid")`` reads the ``okta.*`` settings (and refuses to
    start if one is wrong), installs the security policy, the ACL root factory and
    the error views, and, with ``okta.cors_allowed_origins``, the CORS tween. With
    ``okta.protect_all = true`` (the default) every view needs an authenticated
    caller unless it says ``permission=NO_PERMISSION_REQUIRED``.

    Settings: ``okta.issuer`` (required), ``okta.audience``, ``okta.client_ids``,
    ``okta.leeway``, ``okta.http_timeout``, ``okta.jwks_refetch_cooldown``,
    ``okta.protect_all``, ``okta.cors_allowed_origins``, ``okta.cors_max_age``,
    ``okta.realm``, ``okta.token_cache_size``. See the README for each.
    """
    settings = parse_settings(config.get_settings())
    config.registry.okta_settings = settings
    verifier = AccessTokenVerifier(
        settings.issuer,
        settings.audiences,
        client_ids=settings.client_ids,
        leeway=settings.leeway,
        http_timeout=settings.http_timeout,
        jwks_refetch_cooldown=settings.jwks_refetch_cooldown,
        token_cache_size=settings.token_cache_size,
    )
    config.registry.okta_verifier = verifier
    config.set_security_policy(OktaSecurityPolicy(verifier, realm=settings.realm))
    config.set_root_factory(Root)
    if settings.protect_all:
        config.set_default_permission(AUTHENTICATED)
    config.include(".errors")
    if settings.cors_allowed_origins:
        config.include(".cors")


def main(global_config: dict[str, Any], **settings: Any):
    """The okta_pyramid application: the add-on plus the demonstration API."""
    with Configurator(settings=settings) as config:
        config.include(".")
        config.include(".routes")
        config.scan(".views")
    return config.make_wsgi_app()
