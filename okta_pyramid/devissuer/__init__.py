"""A development issuer: the app mints its own Okta-style access tokens.

For local development and tests only. It serves the endpoints of an Okta custom
authorization server (metadata, keys, a client-credentials token endpoint) under
the issuer URI's path on the app's own host, so ``make run`` works with no Okta
org and no network, while the resource server validates its tokens exactly as it
validates Okta's: by discovery and JWKS over HTTP.
"""
from __future__ import annotations

import logging

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

from .config import DevIssuerSettings, parse_devissuer_settings
from .keys import KeyStore, KeyStoreError
from .tokens import TokenFactory

__all__ = ["includeme", "DevIssuerSettings", "KeyStore", "TokenFactory", "token_factory"]

log = logging.getLogger(__name__)


def token_factory(settings: DevIssuerSettings) -> TokenFactory:
    """The factory signing with the keys in ``settings.keys_dir`` (created if absent)."""
    store = KeyStore(settings.keys_dir, keep=settings.keep_keys)
    try:
        store.keys()
    except KeyStoreError as exc:
        raise ConfigurationError(f"devissuer.keys_dir: {exc}") from None
    return TokenFactory(settings, store)


def includeme(config: Configurator) -> None:
    """Serve a development issuer at ``okta.issuer``, which must be a loopback URL.

    Include it from ``development.ini`` only (``pyramid.includes =
    okta_pyramid.devissuer``); it refuses to start for any other issuer.

    Settings: ``devissuer.clients`` (required; one ``client_id secret scope...`` per
    line), ``devissuer.token_lifetime`` (seconds, default 3600),
    ``devissuer.keys_dir`` (default ``.devissuer``), ``devissuer.keep_keys`` (keys
    published after a rotation, default 2), ``devissuer.audience`` (default: the
    first ``okta.audience``).
    """
    settings = parse_devissuer_settings(config.get_settings())
    factory = token_factory(settings)
    config.registry.devissuer_settings = settings
    config.registry.devissuer_tokens = factory
    config.include(".views")
    log.warning(
        "DEVELOPMENT ISSUER ENABLED: this app mints its own access tokens as %s "
        "(keys in %s). Never include okta_pyramid.devissuer in production.",
        settings.issuer, settings.keys_dir,
    )
