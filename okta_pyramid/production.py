"""Refuse to start a production deployment that carries development-only parts.

``okta.environment = production`` (production.ini sets it) turns these checks on.
The development issuer mints tokens for anyone who asks, and the debug toolbar
shows requests, settings and an interactive debugger: either would hand the API to
whoever can reach it. They are looked for by name in ``pyramid.includes``, and,
once the application is built, among its tweens and views however they got there.

It also refuses DPoP proofs checked against a URL the client chooses (the
request's Host) unless the operator says the proxy sets it, and warns, once at
start-up, about an audience that other APIs share.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pyramid.config import Configurator
from pyramid.events import ApplicationCreated
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import ITweens
from pyramid.registry import Registry
from pyramid.settings import aslist

from .settings import DEFAULT_AUDIENCE, OktaSettings

log = logging.getLogger(__name__)

#: Packages that must not run in production, and why.
DEVELOPMENT_ONLY = {
    "okta_pyramid.devissuer": "the development issuer mints tokens for anyone",
    "pyramid_debugtoolbar": "the debug toolbar exposes requests, settings and a debugger",
}


def _development_only(name: str) -> str | None:
    name = name.strip().lstrip(".")
    for package in DEVELOPMENT_ONLY:
        if name == package or name.startswith((package + ".", package + ":")):
            return package
    return None


def _refuse(package: str, where: str) -> ConfigurationError:
    return ConfigurationError(
        f"okta.environment: is production, but {where} includes {package}: "
        f"{DEVELOPMENT_ONLY[package]}; remove it or run with okta.environment = development"
    )


def check_includes(includes: Iterable[str]) -> None:
    """Raise if ``pyramid.includes`` names a development-only package."""
    for name in includes:
        package = _development_only(name)
        if package is not None:
            raise _refuse(package, "pyramid.includes")


def check_registry(registry: Registry) -> None:
    """Raise if a development-only package registered a tween or a view."""
    tweens = registry.queryUtility(ITweens)
    if tweens is not None:
        for name, _factory in [*tweens.implicit(), *tweens.explicit]:
            package = _development_only(name)
            if package is not None:
                raise _refuse(package, "the tween chain")
    for intr in registry.introspector.get_category("views"):
        view = intr["introspectable"].get("callable")
        package = _development_only(getattr(view, "__module__", None) or "")
        if package is not None:
            raise _refuse(package, "the application's views")


def warn_shared_audience(settings: OktaSettings) -> bool:
    """Log a warning when the API accepts Okta's shared default audience from any client.

    Okta's default authorization server gives every API on it the audience
    ``api://default``, so an API that accepts it, and does not narrow the callers
    with ``okta.client_ids``, accepts tokens minted for its sibling APIs
    (RFC 9068 §4, RFC 8707). Returns whether it warned.
    """
    if not any(
        DEFAULT_AUDIENCE in line.audiences and not line.client_ids for line in settings.issuers
    ):
        return False
    log.warning(
        "okta.audience: is %s, the audience Okta's default authorization server gives "
        "every API on it, and okta.client_ids is empty, so this API accepts tokens "
        "minted for any other API on that server; give this API its own audience (or "
        "authorization server), or list the clients that may call it in okta.client_ids",
        DEFAULT_AUDIENCE,
    )
    return True


def check_public_url(settings: OktaSettings) -> None:
    """Refuse DPoP proofs checked against a URL the client chooses, and metadata
    that names one.

    Without ``okta.public_url`` the URL a proof must name (``htu``, RFC 9449 §4.3) is
    built from the request's ``Host`` (or a trusted proxy's forwarded host, which
    usually passes the client's on), so a token and proof captured by another API
    that accepts the same audience could be replayed here under that API's host
    name. ``okta.public_url = from-proxy`` is the operator's word that the proxy in
    front sets ``Host`` (and the forwarded host) itself.
    """
    if settings.public_url or settings.public_url_from_proxy:
        return
    if settings.dpop == "disabled":
        if settings.resource_metadata:
            # RFC 9728 §3.3: the resource a client checks the metadata against would
            # be whatever Host the client (or an attacker's link) sent.
            raise ConfigurationError(
                "okta.public_url: is required in production while the protected-"
                "resource metadata is served (okta.resource_metadata = true): without "
                "it the document's resource and every challenge's resource_metadata "
                "are built from the request's Host header, which the client chooses; "
                "set it to the URL clients call this API at (OKTA_PUBLIC_URL), or to "
                "from-proxy if the proxy in front sets the Host header itself, or set "
                "okta.resource_metadata = false"
            )
        return
    raise ConfigurationError(
        "okta.public_url: is required in production while DPoP is accepted "
        "(okta.dpop = allowed or required): without it the URL a DPoP proof must name "
        "is built from the request's Host header, which the client chooses; set it to "
        "the URL clients call this API at (OKTA_PUBLIC_URL), or to from-proxy if the "
        "proxy in front sets the Host header itself, or set okta.dpop = disabled"
    )


def includeme(config: Configurator) -> None:
    check_includes(aslist(config.get_settings().get("pyramid.includes") or ""))
    okta = getattr(config.registry, "okta", None)
    if okta is not None:
        check_public_url(okta.settings)
        warn_shared_audience(okta.settings)

    def check(event: ApplicationCreated) -> None:
        check_registry(event.app.registry)

    config.add_subscriber(check, ApplicationCreated)
