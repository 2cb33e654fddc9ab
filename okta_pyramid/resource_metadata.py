"""Protected-resource metadata (RFC 9728): what a client needs to know to call the API.

``GET /.well-known/oauth-protected-resource`` answers the RFC 9728 §2 document: the
API's resource identifier, the authorization servers whose tokens it accepts (every
``okta.issuer`` line), the scopes its permissions can be granted by, how tokens are
sent, and DPoP's algorithms. Every challenge points to it with ``resource_metadata``
(§5.1), so a client that knows nothing but the API's URL finds where to get a token.

The resource identifier is ``okta.public_url``, or else the request's own application
URL (scheme, host and ``SCRIPT_NAME``). Its metadata URL inserts the well-known path
between the host and the identifier's path (§3.1): the API at
``https://example.com/orders`` publishes
``https://example.com/.well-known/oauth-protected-resource/orders``, which lies
outside the application's own prefix; the proxy in front routes it to the
application's ``/.well-known/oauth-protected-resource`` (docs/discovery.md).

The document is public whatever ``okta.protect_all`` says, readable from any origin
(browser clients fetch it), and cacheable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pyramid.authorization import Allow
from pyramid.config import Configurator
from pyramid.interfaces import IRootFactory, IRoutesMapper
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from .bearer import has_valid_host
from .parts import okta_parts
from .principals import scope
from .settings import OktaSettings

#: RFC 9728 §3: the well-known URI suffix.
PATH = "/.well-known/oauth-protected-resource"
ROUTE = "okta_pyramid.resource_metadata"
#: Seconds a client or a shared cache may keep the document.
MAX_AGE = 3600
#: RFC 6750 §2.1: the only way this API reads a token (never a form body or the query).
BEARER_METHODS = ("header",)

_SCOPE_PREFIX = scope("")
# The scopes derived from the ACLs, per application, on its registry under a name
# private to this module (computed once, at the first request that needs them).
_DERIVED_SCOPES = "_okta_pyramid_derived_scopes"


def resource_identifier(request: Request) -> str | None:
    """The API's resource identifier (RFC 9728 §1.2): ``okta.public_url``, or the
    request's application URL, never with a trailing slash; ``None`` when that URL's
    host is not an RFC 3986 ``host[:port]`` (a Host header such as
    ``api/other-service`` would name another resource)."""
    public_url = okta_parts(request.registry).settings.public_url
    if public_url is not None:
        return public_url
    if not has_valid_host(request):
        return None
    return request.application_url.rstrip("/")


def metadata_url(resource: str) -> str:
    """Where the metadata of ``resource`` is published (RFC 9728 §3.1): the well-known
    path inserted between the host and the resource's path."""
    parts = urlsplit(resource)
    return urlunsplit((parts.scheme, parts.netloc, PATH + parts.path.rstrip("/"), "", ""))


def request_metadata_url(request: Request) -> str | None:
    """The ``resource_metadata`` of this request's challenges; ``None`` when the
    application does not publish metadata (``okta.resource_metadata = false``)."""
    if not okta_parts(request.registry).settings.resource_metadata:
        return None
    resource = resource_identifier(request)
    return None if resource is None else metadata_url(resource)


def document(request: Request, resource: str) -> dict[str, Any]:
    """The RFC 9728 §2 document of the application serving ``request``. Only members
    whose values the settings or the application determine; none is invented."""
    okta = okta_parts(request.registry)
    settings = okta.settings
    found: dict[str, Any] = {
        "resource": resource,
        "authorization_servers": [line.issuer for line in settings.issuers],
    }
    scopes = supported_scopes(request.registry, settings)
    if scopes:
        found["scopes_supported"] = list(scopes)
    found["bearer_methods_supported"] = list(BEARER_METHODS)
    for member, value in (
        ("resource_name", settings.resource_name),
        ("resource_documentation", settings.resource_documentation),
        ("resource_policy_uri", settings.resource_policy_uri),
        ("resource_tos_uri", settings.resource_tos_uri),
    ):
        if value is not None:
            found[member] = value
    if okta.dpop is not None:
        # RFC 9728 §2 (from RFC 9449): the proof algorithms, and whether only
        # DPoP-bound tokens are accepted.
        found["dpop_signing_alg_values_supported"] = list(okta.dpop.algorithms)
        found["dpop_bound_access_tokens_required"] = settings.dpop == "required"
    return found


def supported_scopes(registry: Registry, settings: OktaSettings) -> tuple[str, ...]:
    """``okta.scopes_supported``, or the scopes the application's ACLs grant."""
    if settings.scopes_supported is not None:
        return settings.scopes_supported
    derived: tuple[str, ...] | None = getattr(registry, _DERIVED_SCOPES, None)
    if derived is None:
        derived = scopes_in_acls(_resource_factories(registry))
        setattr(registry, _DERIVED_SCOPES, derived)
    return derived


def scopes_in_acls(factories: Iterable[Any]) -> tuple[str, ...]:
    """The scopes that the ``Allow`` entries of these resource classes' ACLs grant a
    permission to, sorted. Only an ACL declared on the class as a tuple or a list
    can be read before a request; a callable ``__acl__``, or one set on each
    instance, is not (name the scopes with ``okta.scopes_supported`` then)."""
    scopes: set[str] = set()
    for factory in factories:
        acl = getattr(factory, "__acl__", None) if isinstance(factory, type) else None
        if not isinstance(acl, (tuple, list)):
            continue
        for entry in acl:
            if (
                isinstance(entry, (tuple, list))
                and len(entry) == 3
                and entry[0] == Allow
                and isinstance(entry[1], str)
                and entry[1].startswith(_SCOPE_PREFIX)
            ):
                scopes.add(entry[1][len(_SCOPE_PREFIX) :])
    return tuple(sorted(scopes))


def _resource_factories(registry: Registry) -> list[Any]:
    factories = [registry.queryUtility(IRootFactory)]
    mapper = registry.queryUtility(IRoutesMapper)
    if mapper is not None:
        factories.extend(route.factory for route in mapper.get_routes())
    return [factory for factory in factories if factory is not None]


def metadata_view(request: Request) -> Response:
    """The document, or the answer to a browser's preflight for it."""
    if request.method == "OPTIONS":
        return _preflight(request)
    resource = resource_identifier(request)
    if resource is None:
        # As okta_pyramid.errors.json_error answers (which imports this module).
        refused = Response(
            status=400,
            json_body={
                "error": "invalid_request",
                "error_description": "the Host header is not an RFC 3986 host[:port]",
            },
        )
        refused.cache_control = "no-store"
        return refused
    body = json.dumps(document(request, resource), separators=(",", ":")).encode()
    response = Response(body=body, content_type="application/json", charset=None)
    response.cache_control = f"public, max-age={MAX_AGE}"
    response.etag = hashlib.sha256(body).hexdigest()[:32]
    response.conditional_response = True
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _preflight(request: Request) -> Response:
    # Browser clients may add headers of their own (an MCP client sends its
    # protocol version): a public document without credentials may be fetched
    # with any of them.
    response = Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "GET, HEAD"
    requested = request.headers.get("Access-Control-Request-Headers")
    if requested:
        response.headers["Access-Control-Allow-Headers"] = _header_names(requested)
    max_age = okta_parts(request.registry).settings.cors_max_age
    response.headers["Access-Control-Max-Age"] = str(max_age)
    response.vary = ("Access-Control-Request-Headers",)
    return response


def _header_names(requested: str) -> str:
    # Field names only (RFC 9110 §5.1 tokens): anything else is dropped, never echoed.
    names = (name.strip() for name in requested.split(","))
    return ", ".join(name for name in names if name and _is_token(name))


_TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(name: str) -> bool:
    return len(name) <= 64 and all(char in _TCHARS for char in name)


def includeme(config: Configurator) -> None:
    """Serve the document, unless ``okta.resource_metadata = false``."""
    if not okta_parts(config.registry).settings.resource_metadata:
        return
    config.add_route(ROUTE, PATH)
    config.add_view(
        metadata_view,
        route_name=ROUTE,
        request_method=("GET", "HEAD", "OPTIONS"),
        permission=NO_PERMISSION_REQUIRED,
    )
