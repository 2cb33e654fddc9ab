"""A development issuer: the app mints its own Okta-style access tokens.

For local development and tests only. It serves the endpoints of an Okta custom
authorization server (metadata, keys, a client-credentials token endpoint, token
introspection and revocation) under the issuer URI's path on the app's own host,
so ``make run`` works with no Okta org and no network, while the resource server
validates its tokens exactly as it validates Okta's: by discovery and JWKS over
HTTP.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from pyramid.config import Configurator
from pyramid.events import ApplicationCreated
from pyramid.exceptions import ConfigurationError

from ..tokens.refresher import wait_until_listening
from .config import DevIssuerSettings, parse_devissuer_settings
from .dpop import token_endpoint_verifier
from .keys import KeyStore, KeyStoreError
from .revocation import RevokedTokens
from .tokens import TokenFactory

__all__ = ["includeme", "DevIssuerSettings", "KeyStore", "TokenFactory", "prefetch_keys",
           "token_factory"]

log = logging.getLogger(__name__)

#: How long the key prefetch waits for the server to start listening.
PREFETCH_TIMEOUT = 30.0


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
    line, ``dpop=required`` after the scopes for a client that must send DPoP
    proofs), ``devissuer.token_lifetime`` (seconds, default 3600),
    ``devissuer.keys_dir`` (default ``.devissuer``), ``devissuer.keep_keys`` (keys
    published after a rotation, default 2), ``devissuer.audience`` (default: the
    first ``okta.audience``).
    """
    settings = parse_devissuer_settings(config.get_settings())
    factory = token_factory(settings)
    config.registry.devissuer_settings = settings
    config.registry.devissuer_tokens = factory
    config.registry.devissuer_dpop = token_endpoint_verifier()
    # In memory, like the DPoP nonces: a restart forgets what was revoked.
    config.registry.devissuer_revoked = RevokedTokens(clock=factory.clock)
    config.include(".views")
    config.add_subscriber(_start_prefetch, ApplicationCreated)
    log.warning(
        "DEVELOPMENT ISSUER ENABLED: this app mints its own access tokens as %s "
        "(keys in %s). Never include okta_pyramid.devissuer in production.",
        settings.issuer, settings.keys_dir,
    )


def _start_prefetch(event: ApplicationCreated) -> None:
    """Fetch the keys once the server listens, before any request needs them.

    A request whose token needs the first key fetch holds a worker thread while the
    fetch asks this same server for its metadata and keys; if every worker were
    such a request, the fetch would wait for a free worker until it timed out.
    Prefetching from a thread of our own, as soon as the port accepts connections,
    means requests start with the keys in hand. It uses the resource server's normal
    path (discovery and JWKS over HTTP). With the background key refresher on
    (``okta.jwks_refresh_interval``), the refresher does this and no prefetch runs.
    """
    verifier = getattr(event.app.registry, "okta_verifier", None)
    if verifier is None:  # included without okta_pyramid: nothing to warm
        return
    if getattr(event.app.registry, "okta_key_refresher", None) is not None:
        return  # the background refresher waits for the port and fetches itself
    issuer = event.app.registry.devissuer_settings.issuer
    threading.Thread(target=prefetch_keys, args=(verifier, issuer),
                     name="devissuer-prefetch", daemon=True).start()


def prefetch_keys(verifier: Any, issuer: str, timeout: float = PREFETCH_TIMEOUT) -> bool:
    """Wait until ``issuer``'s port accepts connections, then fetch its keys once."""
    if wait_until_listening(issuer, timeout):
        held = verifier.keys.refresh()
        log.info("development issuer: prefetched the keys from %s (%s)", issuer,
                 "ok" if held else verifier.keys.last_error)
        return held
    log.warning("development issuer: the server did not listen within %gs; "
                "keys will be fetched on demand", timeout)
    return False
