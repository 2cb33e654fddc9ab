"""The issuer's keys, fetched in the background from the moment the application starts."""
from __future__ import annotations

from urllib.parse import urlsplit

from pyramid.config import Configurator
from pyramid.events import ApplicationCreated

from .tokens.jwks import is_loopback_host
from .tokens.refresher import KeyRefresher


def includeme(config: Configurator) -> None:
    """Start a :class:`KeyRefresher` once the WSGI application has been created.

    Reads ``registry.okta_settings.jwks_refresh_interval``; 0 means no thread, and
    keys are then fetched when the first token arrives.
    """
    interval = config.registry.okta_settings.jwks_refresh_interval
    if not interval:
        return
    issuer = config.registry.okta_settings.issuer
    # A loopback issuer usually starts alongside this app (the development issuer
    # is this very app): let it listen first rather than log a failed first fetch.
    wait_for = issuer if is_loopback_host(urlsplit(issuer).hostname) else None
    refresher = KeyRefresher(config.registry.okta_verifier.keys, interval, wait_for=wait_for)
    config.registry.okta_key_refresher = refresher

    def start(event: ApplicationCreated) -> None:
        refresher.start()

    config.add_subscriber(start, ApplicationCreated)
