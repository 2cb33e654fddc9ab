"""The issuers' keys, fetched in the background from the moment the application starts."""

from __future__ import annotations

from urllib.parse import urlsplit

from pyramid.config import Configurator
from pyramid.events import ApplicationCreated

from .parts import okta_parts
from .tokens.refresher import KeyRefresher
from .tokens.urls import is_loopback_host


def includeme(config: Configurator) -> None:
    """Start one :class:`KeyRefresher` per issuer once the WSGI application has been
    created; each is its own thread, so every issuer's keys are fetched in parallel and
    a slow or down issuer delays only its own.

    Reads ``okta.jwks_refresh_interval``; 0 means no thread, and keys are then
    fetched when the first token arrives.
    """
    okta = okta_parts(config.registry)
    interval = okta.settings.jwks_refresh_interval
    if not interval:
        return
    refreshers: dict[str, KeyRefresher] = {}
    for issuer, verifier in okta.verifiers.items():
        # A loopback issuer usually starts alongside this app (the development issuer
        # is this very app): let it listen first rather than log a failed first fetch.
        wait_for = issuer if is_loopback_host(urlsplit(issuer).hostname) else None
        refreshers[issuer] = KeyRefresher(verifier.keys, interval, wait_for=wait_for)
    okta.key_refreshers = refreshers

    def start(event: ApplicationCreated) -> None:
        for refresher in refreshers.values():
            refresher.start()

    config.add_subscriber(start, ApplicationCreated)
