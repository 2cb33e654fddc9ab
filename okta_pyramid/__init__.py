"""okta_pyramid: protect a Pyramid API with OAuth 2.0 access tokens from Okta.

``config.include("okta_pyramid")`` is the add-on; the application that
``pserve development.ini`` serves is :mod:`okta_pyramid.app`, and the
Pyramid-free verification core is :mod:`okta_pyramid.tokens`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyramid.config import Configurator

__all__ = ["__version__", "includeme"]

#: The one place the version is written (setup.cfg reads it from here).
__version__ = "0.9.0"


def includeme(config: Configurator) -> None:
    """Protect the including application with Okta access tokens.

    Reads the ``okta.*`` settings (docs/settings.md) and refuses to start if one is
    wrong; installs the security policy, the root ACL and the error answers, and
    what the settings ask for (CORS, the console, the production checks). With
    ``okta.protect_all`` (the default) every view needs a valid token unless it
    says ``permission=NO_PERMISSION_REQUIRED``; a view that needs the issuer to
    confirm the token is live says ``require_active_token=True`` (token
    introspection, docs/introspection.md), and one that needs a stronger or more
    recent sign-in says ``acr_values=...`` and ``max_age=...`` (RFC 9470,
    docs/step-up.md). ``/.well-known/oauth-protected-resource`` tells clients what
    the API needs (RFC 9728, docs/discovery.md). What the application may want besides
    is its own include: ``okta_pyramid.health`` (``/healthz``, ``/readyz``) and
    ``okta_pyramid.logs`` (a request id on every response and log line).
    """
    # Imported here, not above: okta_pyramid.tokens must import without Pyramid.
    from .parts import OktaParts
    from .permissions import AUTHENTICATED, Root
    from .settings import parse_settings

    settings = parse_settings(config.get_settings())
    config.registry.okta = OktaParts.from_settings(settings)
    config.include(".security")
    config.include(".active_token")
    config.include(".step_up")
    _default_root_factory(config, Root)
    if settings.protect_all:
        config.set_default_permission(AUTHENTICATED)
    config.include(".errors")
    config.include(".resource_metadata")
    if settings.cors_allowed_origins:
        config.include(".cors")
    if settings.console:
        config.include(".console")
    if settings.environment == "production":
        config.include(".production")
    config.include(".key_refresh")
    if settings.metrics:
        config.include(".metrics")


#: Actions run in ``order``; the application's own ``set_root_factory`` runs at the
#: default order (0), so this one runs after it and sees whether it did.
_AFTER_THE_APPLICATIONS_OWN = 1


def _default_root_factory(config: Configurator, root: type) -> None:
    """Make ``root`` the root factory unless the application sets one of its own
    (``Configurator(root_factory=...)`` or ``config.set_root_factory`` anywhere):
    its resources then carry the ACLs (docs/authorization.md)."""
    from pyramid.interfaces import IDefaultRootFactory, IRootFactory

    registry = config.registry

    def register() -> None:
        if registry.queryUtility(IRootFactory) is None:
            registry.registerUtility(root, IRootFactory)
            registry.registerUtility(root, IDefaultRootFactory)

    config.action(
        ("okta_pyramid", "default root factory"), register, order=_AFTER_THE_APPLICATIONS_OWN
    )
