"""A development issuer: the app mints its own Okta-style access tokens.

For local development and tests only. It serves the endpoints of an Okta custom
authorization server (metadata, keys, a token endpoint, token introspection and
revocation, and a login page that signs users in with the authorization-code flow
and PKCE) under the issuer URI's path on the app's own host,
so ``make run`` works with no Okta org and no network, while the resource server
validates its tokens exactly as it validates Okta's: by discovery and JWKS over
HTTP.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from pyramid.config import Configurator
from pyramid.events import ApplicationCreated
from pyramid.exceptions import ConfigurationError
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.tweens import INGRESS, MAIN

from ..errors import add_json_error_views
from ..tokens.dpop import DPoPVerifier
from ..tokens.refresher import wait_until_listening
from .config import DevIssuerSettings, parse_devissuer_servers
from .dpop import token_endpoint_verifier
from .keys import KeyStore, KeyStoreError
from .revocation import RevokedTokens
from .signin import SignIns
from .tokens import TokenFactory

__all__ = [
    "DevIssuerSettings",
    "DevServer",
    "KeyStore",
    "TokenFactory",
    "includeme",
    "prefetch_keys",
    "token_factory",
]

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


class DevServer(NamedTuple):
    """One authorization server the development issuer serves."""

    settings: DevIssuerSettings
    tokens: TokenFactory


def includeme(config: Configurator) -> None:
    """Serve a development issuer at ``okta.issuer``, which must be a loopback URL.

    Include it from ``development.ini`` only (``pyramid.includes =
    okta_pyramid.devissuer``); it refuses to start for any other issuer. Further
    ``okta.issuer`` lines on the same host and port (``.../oauth2/partners``) are
    served too, each as an authorization server of its own (its own keys, its
    line's first audience), so several issuers can be tried offline.

    Settings: ``devissuer.clients`` (required; one ``client_id secret scope...`` per
    line, ``dpop=required`` after the scopes for a client that must send DPoP
    proofs, ``redirect=URI`` (repeatable) for a client users sign in to, and ``-``
    as the secret of a public client), ``devissuer.token_lifetime`` (seconds, default 3600),
    ``devissuer.keys_dir`` (default ``.devissuer``), ``devissuer.keep_keys`` (keys
    published after a rotation, default 2), ``devissuer.audience`` (default: the
    first ``okta.audience``).
    """
    first, *others = parse_devissuer_servers(config.get_settings())
    servers = [
        DevServer(first, token_factory(first)),
        *(DevServer(other, token_factory(other)) for other in others),
    ]
    _serve(config, *servers[0])
    #: Every authorization server served, the first (``okta.issuer``'s first line) first.
    config.registry.devissuer_servers = tuple(servers)
    # Each further server is an application of its own (its registry holds its
    # settings and keys, so the same views serve it), reached through one tween.
    config.registry.devissuer_apps = tuple(
        (server.settings.path, _server_app(*server)) for server in servers[1:]
    )
    # Over each server's guard, which then judges the request at the path it was
    # handed on to.
    config.add_tween(
        "okta_pyramid.devissuer.ServersTween",
        under=("okta_pyramid.logs.RequestIdTween", INGRESS),
        over=("okta_pyramid.cors.CORSTween", MAIN),
    )
    config.add_subscriber(_start_prefetch, ApplicationCreated)
    for server in servers:
        log.warning(
            "DEVELOPMENT ISSUER ENABLED: this app mints its own access tokens as %s "
            "(keys in %s). Never include okta_pyramid.devissuer in production.",
            server.settings.issuer,
            server.settings.keys_dir,
        )


def _serve(config: Configurator, settings: DevIssuerSettings, factory: TokenFactory) -> None:
    """Serve one authorization server from ``config``'s application."""
    config.registry.devissuer_settings = settings
    config.registry.devissuer_tokens = factory
    config.registry.devissuer_dpop = token_endpoint_verifier()
    # In memory, like the DPoP nonces: a restart forgets what was revoked.
    config.registry.devissuer_revoked = RevokedTokens(clock=factory.clock)
    # Sessions, codes and refresh tokens, in memory too (.signin).
    config.registry.devissuer_signins = SignIns(clock=factory.clock)
    # The userinfo endpoint checks proofs of DPoP-bound tokens, without nonces.
    config.registry.devissuer_userinfo_dpop = DPoPVerifier(clock=factory.clock)
    config.include(".views")


def _server_app(settings: DevIssuerSettings, factory: TokenFactory) -> Any:
    config = Configurator()
    _serve(config, settings, factory)
    # Its own answers for what no view handles: JSON, never Pyramid's text page or
    # an exception escaping to the server.
    add_json_error_views(config)
    return config.make_wsgi_app()


#: The metadata documents, which RFC 8414 §3.1 also publishes with the well-known
#: path inserted before the issuer's path.
WELL_KNOWN = ("oauth-authorization-server", "openid-configuration")


class ServersTween:
    """Hands a request under a further authorization server's path to its application
    (whose own guard, :class:`.local_only.LocalOnlyTween`, judges it first).

    Before that, a request for a server's metadata at the URL RFC 8414 §3.1 gives
    (``/.well-known/oauth-authorization-server/oauth2/default``, and the same form
    of ``openid-configuration``, which clients also try) is handed on as a request
    for the URL Okta uses (``/oauth2/default/.well-known/...``), so clients find the
    metadata either way and the server's guard judges it as any other request.
    """

    def __init__(self, handler: Callable[[Request], Response], registry: Registry) -> None:
        self.handler = handler
        self.apps = registry.devissuer_apps
        paths = [server.settings.path for server in registry.devissuer_servers]
        self.inserted = {
            f"/.well-known/{name}{path}": f"{path}/.well-known/{name}"
            for path in paths
            for name in WELL_KNOWN
        }

    def __call__(self, request: Request) -> Response:
        path = request.environ.get("PATH_INFO", "")
        appended = self.inserted.get(path)
        if appended is not None:
            request.environ["PATH_INFO"] = path = appended
        for prefix, app in self.apps:
            if path == prefix or path.startswith(prefix + "/"):
                return request.get_response(app)
        return self.handler(request)


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
    okta = getattr(event.app.registry, "okta", None)
    if okta is None:  # included without okta_pyramid: nothing to warm
        return
    verifiers = okta.verifiers
    if okta.key_refresher is not None:
        return  # the background refreshers wait for the port and fetch themselves
    for server in event.app.registry.devissuer_servers:
        verifier = verifiers.get(server.settings.issuer)
        if verifier is not None:
            threading.Thread(
                target=prefetch_keys,
                args=(verifier, server.settings.issuer),
                name="devissuer-prefetch",
                daemon=True,
            ).start()


def prefetch_keys(verifier: Any, issuer: str, timeout: float = PREFETCH_TIMEOUT) -> bool:
    """Wait until ``issuer``'s port accepts connections, then fetch its keys once."""
    if wait_until_listening(issuer, timeout):
        held = verifier.keys.refresh()
        log.info(
            "development issuer: prefetched the keys from %s (%s)",
            issuer,
            "ok" if held else verifier.keys.last_error,
        )
        return held
    log.warning(
        "development issuer: the server did not listen within %gs; keys will be fetched on demand",
        timeout,
    )
    return False
