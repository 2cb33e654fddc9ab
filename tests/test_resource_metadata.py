"""Protected-resource metadata (RFC 9728): the document, where it is, and the
``resource_metadata`` and ``scope`` of the challenges that point to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import webtest
from pyramid.authorization import Allow, Authenticated, Deny, Everyone
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

from okta_pyramid.permissions import ACE, AUTHENTICATED
from okta_pyramid.principals import group, scope
from okta_pyramid.resource_metadata import metadata_url

from .helpers import LOCAL_METADATA, DPoPClient, b64url, bearer, webtest_app
from .issuer import LoopbackIssuer, unreachable_url

PATH = "/.well-known/oauth-protected-resource"
ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
#: RFC 9728 §2's members and the JSON type of each.
MEMBER_TYPES: dict[str, type] = {
    "resource": str,
    "authorization_servers": list,
    "jwks_uri": str,
    "scopes_supported": list,
    "bearer_methods_supported": list,
    "resource_signing_alg_values_supported": list,
    "resource_name": str,
    "resource_documentation": str,
    "resource_policy_uri": str,
    "resource_tos_uri": str,
    "tls_client_certificate_bound_access_tokens": bool,
    "authorization_details_types_supported": list,
    "dpop_signing_alg_values_supported": list,
    "dpop_bound_access_tokens_required": bool,
}


def assert_rfc9728(document: dict[str, Any]) -> None:
    """Every member is one RFC 9728 §2 defines, with its type; arrays hold strings."""
    assert set(document) <= set(MEMBER_TYPES), set(document) - set(MEMBER_TYPES)
    for member, value in document.items():
        assert isinstance(value, MEMBER_TYPES[member]), member
        if isinstance(value, list):
            assert value and all(isinstance(item, str) for item in value), member


# -- the document ---------------------------------------------------------------------


def test_the_document_of_the_demo(app: webtest.TestApp, issuer: LoopbackIssuer) -> None:
    response = app.get(PATH)
    assert response.content_type == "application/json"
    document = response.json
    assert_rfc9728(document)
    assert document == {
        # The URL the client derived the metadata URL from (§3.3): no trailing slash.
        "resource": "http://localhost",
        "authorization_servers": [issuer.issuer],
        # From the demo's ACLs: the scopes that grant one of its permissions.
        "scopes_supported": ["messages:read", "messages:write"],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": ALGS,
        "dpop_bound_access_tokens_required": False,
    }


def test_every_issuer_line_is_an_authorization_server(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    other = LoopbackIssuer()
    try:
        app = make_app(issuer=f"{issuer.issuer}\n{other.issuer} api://partners")
        document = app.get(PATH).json
    finally:
        other.close()
    assert_rfc9728(document)
    assert document["authorization_servers"] == [issuer.issuer, other.issuer]


@pytest.mark.parametrize(
    "dpop, algorithms, members",
    [
        ("disabled", None, {}),
        (
            "allowed",
            "ES256 EdDSA",
            {
                "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
                "dpop_bound_access_tokens_required": False,
            },
        ),
        (
            "required",
            None,
            {"dpop_signing_alg_values_supported": ALGS, "dpop_bound_access_tokens_required": True},
        ),
    ],
)
def test_the_dpop_members_follow_the_dpop_settings(
    make_app: Callable[..., webtest.TestApp], dpop: str, algorithms: str | None, members: dict
) -> None:
    extra = {"dpop": dpop, **({"dpop_algorithms": algorithms} if algorithms else {})}
    document = make_app(**extra).get(PATH).json
    assert_rfc9728(document)
    assert {k: v for k, v in document.items() if k.startswith("dpop_")} == members


def test_the_operators_members(make_app: Callable[..., webtest.TestApp]) -> None:
    app = make_app(
        public_url="https://api.example.com/orders/",
        scopes_supported="orders:read orders:write openid",
        resource_name="Orders API",
        resource_documentation="https://example.com/docs/orders",
        resource_policy_uri="https://example.com/privacy",
        resource_tos_uri="https://example.com/terms",
    )
    document = app.get(PATH).json
    assert_rfc9728(document)
    assert document["resource"] == "https://api.example.com/orders"
    assert document["scopes_supported"] == ["orders:read", "orders:write", "openid"]
    assert document["resource_name"] == "Orders API"
    assert document["resource_documentation"] == "https://example.com/docs/orders"
    assert document["resource_policy_uri"] == "https://example.com/privacy"
    assert document["resource_tos_uri"] == "https://example.com/terms"


def test_scopes_none_leaves_the_member_out(make_app: Callable[..., webtest.TestApp]) -> None:
    assert "scopes_supported" not in make_app(scopes_supported="none").get(PATH).json


@pytest.mark.parametrize(
    "key, value",
    [
        ("scopes_supported", 'a"b'),
        ("scopes_supported", "auto orders:read"),
        ("scopes_supported", "none orders:read"),
        ("resource_documentation", "docs/api"),
        ("resource_documentation", "ftp://example.com/docs"),
        ("resource_policy_uri", "https://user:pw@example.com/privacy"),
        ("resource_tos_uri", "https://example.com/terms#top"),
        ("resource_name", "x" * 201),
        ("resource_metadata", "maybe"),
    ],
)
def test_a_wrong_value_stops_start_up_naming_the_setting(
    make_app: Callable[..., webtest.TestApp], key: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=rf"^okta\.{key}:") as info:
        make_app(**{key: value})
    assert "pw@" not in str(info.value)


def test_it_is_public_whatever_the_request_carries(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    for protect_all in ("true", "false"):
        app = make_app(protect_all=protect_all)
        assert app.get(PATH).status_int == 200
        assert app.get(PATH, headers=bearer("not-a-token")).status_int == 200
        assert app.get(PATH, headers=bearer(issuer.mint(exp=1))).status_int == 200


def test_it_is_cacheable_and_answers_a_conditional_request(app: webtest.TestApp) -> None:
    response = app.get(PATH)
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    etag = response.headers["ETag"]
    assert app.get(PATH, headers={"If-None-Match": etag}, status=304).body == b""
    assert app.head(PATH).headers["ETag"] == etag


def test_it_is_readable_from_any_origin(make_app: Callable[..., webtest.TestApp]) -> None:
    # Whether or not the API lets browser apps call it (okta.cors_allowed_origins).
    for origins in ("", "https://app.example.com"):
        app = make_app(cors_allowed_origins=origins)
        got = app.get(PATH, headers={"Origin": "https://agent.example.net"})
        assert got.headers["Access-Control-Allow-Origin"] == "*"
        preflight = app.options(
            PATH,
            headers={
                "Origin": "https://agent.example.net",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "mcp-protocol-version, x-bad\x01name",
            },
            status=204,
        )
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        assert preflight.headers["Access-Control-Allow-Methods"] == "GET, HEAD"
        assert preflight.headers["Access-Control-Allow-Headers"] == "mcp-protocol-version"


def test_turned_off_there_is_no_document_and_no_pointer(
    make_app: Callable[..., webtest.TestApp],
) -> None:
    app = make_app(resource_metadata="false")
    assert app.get(PATH, status=404).json["error"] == "not_found"
    assert "resource_metadata" not in app.get("/api/whoami", status=401).headers["WWW-Authenticate"]


# -- where it is (RFC 9728 §3.1) ------------------------------------------------------


@pytest.mark.parametrize(
    "resource, url",
    [
        ("https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource"),
        (
            "https://example.com/orders",
            "https://example.com/.well-known/oauth-protected-resource/orders",
        ),
        (
            "https://example.com:8443/a/b/",
            "https://example.com:8443/.well-known/oauth-protected-resource/a/b",
        ),
    ],
)
def test_the_well_known_path_goes_between_host_and_path(resource: str, url: str) -> None:
    assert metadata_url(resource) == url


def test_a_public_url_with_a_path_is_the_resource_everywhere(
    make_app: Callable[..., webtest.TestApp],
) -> None:
    app = make_app(public_url="https://example.com/orders")
    assert app.get(PATH).json["resource"] == "https://example.com/orders"
    challenge = app.get("/api/whoami", status=401).headers["WWW-Authenticate"]
    assert (
        'resource_metadata="https://example.com/.well-known/oauth-protected-resource/orders"'
        in challenge
    )


def test_under_a_script_name_the_resource_has_the_path(app: webtest.TestApp) -> None:
    mounted = {"SCRIPT_NAME": "/orders"}
    document = app.get("/orders" + PATH, extra_environ=mounted).json
    assert document["resource"] == "http://localhost/orders"
    challenge = app.get("/orders/api/whoami", extra_environ=mounted, status=401).headers[
        "WWW-Authenticate"
    ]
    expected = "http://localhost/.well-known/oauth-protected-resource/orders"
    assert f'resource_metadata="{expected}"' in challenge


@pytest.mark.parametrize("host", ["localhost/other-service", "a@localhost", "[1::2::3]", "l\xf3c"])
def test_a_host_header_that_is_not_a_host_never_becomes_the_resource(
    app: webtest.TestApp, host: str
) -> None:
    response = app.get(PATH, headers={"Host": host}, status=400)
    assert response.json["error"] == "invalid_request"
    challenge = app.get("/api/whoami", headers={"Host": host}, status=401).headers[
        "WWW-Authenticate"
    ]
    assert "resource_metadata" not in challenge and "other-service" not in challenge


# -- the challenges -------------------------------------------------------------------


def _pointer(response: webtest.TestResponse) -> None:
    challenge = response.headers["WWW-Authenticate"]
    for one in challenge.split(", DPoP ") if ", DPoP " in challenge else [challenge]:
        assert f'resource_metadata="{LOCAL_METADATA}"' in one, challenge


def test_every_kind_of_401_points_to_the_document(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    app = make_app()
    client = DPoPClient(issuer)
    refusals = [
        app.get("/api/whoami", status=401),  # no token: both schemes
        app.get("/api/whoami", headers=bearer("junk"), status=401),  # invalid_token
        app.get("/api/whoami", headers=bearer(issuer.mint(exp=1)), status=401),
        # A bound token sent as Bearer, and a DPoP request with a bad proof.
        app.get("/api/whoami", headers=bearer(client.token), status=401),
        app.get(
            "/api/whoami",
            headers={**client.headers(), "DPoP": b64url({"typ": "x"}) + ".e30.c2ln"},
            status=401,
        ),
        # Bearer on a view that needs a DPoP-bound token.
        app.get("/api/dpop", headers=bearer(issuer.mint()), status=401),
        # A sign-in too weak for the view (RFC 9470).
        app.get("/api/sensitive", headers=bearer(issuer.mint()), status=401),
    ]
    for response in refusals:
        _pointer(response)
    nonce_app = make_app(dpop_nonce="true")
    use_nonce = nonce_app.get("/api/whoami", headers=client.headers(), status=401)
    assert use_nonce.json["error"] == "use_dpop_nonce"
    _pointer(use_nonce)
    # A malformed request (400) and a 403 carry it too.
    _pointer(app.get("/api/whoami?access_token=x", headers=bearer("x"), status=400))
    _pointer(app.get("/api/admin", headers=bearer(issuer.mint()), status=403))


def test_a_refused_live_token_points_to_the_document_and_names_the_scope(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    # The demo's POST /api/messages needs messages:write and a live token.
    app = make_app(
        introspection_client_id=issuer.CLIENT_ID,
        introspection_client_secret=issuer.CLIENT_SECRET,
    )
    token = issuer.mint(scp=["messages:write"])
    issuer.revoke(token)
    response = app.post_json("/api/messages", {"text": "hi"}, headers=bearer(token), status=401)
    assert response.json["error"] == "invalid_token"
    assert response.json["scope"] == "messages:write"
    challenge = response.headers["WWW-Authenticate"]
    assert 'scope="messages:write"' in challenge
    _pointer(response)


class Orders:
    """Scopes and a group grant the permissions of a resource of an app's own."""

    __acl__: ClassVar[tuple[ACE, ...]] = (
        (Allow, scope("orders:read"), "read"),
        (Allow, scope("orders:admin"), "read"),
        (Allow, scope("orders:write"), "write"),
        (Allow, group("Admins"), "write"),
        (Deny, scope("banned"), "read"),
        (Allow, group("Auditors"), "audit"),
        (Allow, Authenticated, AUTHENTICATED),
        (Deny, Everyone, "read"),
    )

    def __init__(self, request: Any) -> None:
        self.request = request


class Computed:
    """An ACL computed per request cannot be read before one."""

    def __init__(self, request: Any) -> None:
        self.request = request

    def __acl__(self) -> list[ACE]:
        return [(Allow, scope("secret:scope"), "read")]


@pytest.fixture
def orders_app(make_config: Callable[..., Configurator]) -> webtest.TestApp:
    config = make_config()
    config.add_route("orders", "/orders", factory=Orders)
    config.add_route("computed", "/computed", factory=Computed)
    config.add_route("audit", "/audit", factory=Orders)
    config.add_view(lambda r: {}, route_name="audit", renderer="json", permission="audit")
    config.add_view(lambda r: {}, route_name="orders", renderer="json", permission="read")
    config.add_view(
        lambda r: {},
        route_name="orders",
        renderer="json",
        permission="write",
        request_method="POST",
    )
    config.add_view(lambda r: {}, route_name="computed", renderer="json", permission="read")
    return webtest_app(config)


def test_the_scopes_are_derived_from_the_acls_an_app_declares(
    orders_app: webtest.TestApp,
) -> None:
    # Allow entries of class-level ACLs only: not the Deny, not the computed ACL.
    assert orders_app.get(PATH).json["scopes_supported"] == [
        "orders:admin",
        "orders:read",
        "orders:write",
    ]


def test_the_challenges_name_the_scopes_of_the_views_permission(
    orders_app: webtest.TestApp, issuer: LoopbackIssuer
) -> None:
    read = orders_app.get("/orders", status=401)
    assert 'scope="orders:admin orders:read"' in read.headers["WWW-Authenticate"]
    write = orders_app.post("/orders", headers=bearer(issuer.mint(scp=["orders:read"])), status=403)
    assert write.json["scope"] == "orders:write"
    assert 'scope="orders:write"' in write.headers["WWW-Authenticate"]
    # The ACL of the request's context, even one computed per request.
    computed = orders_app.get("/computed", headers=bearer(issuer.mint()), status=403)
    assert computed.json["scope"] == "secret:scope"
    # A permission no scope grants: no scope parameter.
    audit = orders_app.get("/audit", headers=bearer(issuer.mint()), status=403)
    assert "scope" not in audit.json and "scope=" not in audit.headers["WWW-Authenticate"]
    assert "scope=" not in orders_app.get("/audit", status=401).headers["WWW-Authenticate"]


def test_a_503_names_no_scope(make_app: Callable[..., webtest.TestApp]) -> None:
    # The issuer cannot be reached: the credentials were not judged, so no challenge
    # and nothing to ask for, even on a view that scopes grant.
    token = LoopbackIssuer()
    try:
        app = make_app(issuer=unreachable_url(), http_timeout="1")
        response = app.get("/api/messages", headers=bearer(token.mint()), status=503)
    finally:
        token.close()
    assert response.json["error"] == "temporarily_unavailable"
    assert "scope" not in response.json and "WWW-Authenticate" not in response.headers
