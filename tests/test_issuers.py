"""Several authorization servers in one API, through the add-on, against two real
issuers on loopback (discovery, keys and introspection over HTTP)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
import webtest
from cryptography.hazmat.primitives.asymmetric import ec
from pyramid.authorization import Allow, Authenticated, Deny
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

from okta_pyramid.principals import issuer as issuer_principal
from okta_pyramid.settings import parse_settings
from okta_pyramid.tokens import make_proof

from .helpers import bearer, thumbprint, webtest_app
from .issuer import LoopbackIssuer, SigningKey, rsa_key

ORDERS = "api://orders"
PARTNERS = "api://partners"
SECRET = "introspection-secret"


class IntrospectingIssuer(LoopbackIssuer):
    """A loopback issuer that also answers token introspection (RFC 7662) from
    ``answers`` (token -> JSON), and remembers every token it was sent."""

    def __init__(self, audience: str, key: SigningKey) -> None:
        super().__init__()
        self.audience = audience
        self.keys = [key]
        self.answers: dict[str, dict[str, Any]] = {}
        self.introspected_tokens: list[str] = []
        self.metadata_overrides["introspection_endpoint"] = f"{self.issuer}/v1/introspect"

    def active(self, token: str, **claims: Any) -> str:
        """Make the endpoint call ``token`` active, with the claims of a fresh token."""
        self.answers[token] = {
            "active": True,
            "client_id": "0oa-test-client",
            **{k: v for k, v in self.claims(**claims).items() if k not in ("cid", "jti", "ver")},
        }
        return token

    def _handler_class(self) -> type:
        server = self

        class Handler(super()._handler_class()):  # type: ignore[misc]
            def do_POST(self) -> None:
                server.hits[self.path] += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = dict(parse_qsl(body.decode()))
                if self.path != "/oauth2/default/v1/introspect":
                    return self.send(404, b"{}")
                server.introspected_tokens.append(form.get("token", ""))
                answer = server.answers.get(form.get("token", ""), {"active": False})
                self.send(200, json.dumps(answer).encode())

        return Handler


@pytest.fixture
def orders() -> Iterator[IntrospectingIssuer]:
    server = IntrospectingIssuer(ORDERS, SigningKey("orders-1", rsa_key(1)))
    yield server
    server.close()


@pytest.fixture
def partners() -> Iterator[IntrospectingIssuer]:
    # Its own keys, as two authorization servers have.
    server = IntrospectingIssuer(PARTNERS, SigningKey("partners-1", rsa_key(7)))
    yield server
    server.close()


@pytest.fixture
def stranger() -> Iterator[LoopbackIssuer]:
    """A real issuer this API does not trust."""
    server = LoopbackIssuer()
    yield server
    server.close()


def issuer_lines(
    orders: LoopbackIssuer, partners: LoopbackIssuer, *, partner_options: str = ""
) -> str:
    return f"\n{orders.issuer}  {ORDERS}\n{partners.issuer}  {PARTNERS} {partner_options}"


class Admin:
    """Admin views: partner tokens are denied before anyone is allowed."""

    def __init__(self, partners: str) -> None:
        self.__acl__ = [
            (Deny, issuer_principal(partners), "admin"),
            (Allow, Authenticated, "admin"),
        ]


@pytest.fixture
def build(
    make_config: Callable[..., Configurator],
    orders: IntrospectingIssuer,
    partners: IntrospectingIssuer,
) -> Callable[..., webtest.TestApp]:
    """The add-on with both issuers (and ``okta.<key>`` extras), a /who view that
    shows the principals, /admin behind an ACL, and the health checks."""

    def factory(*, live: bool = False, partner_options: str = "", **extra: Any) -> webtest.TestApp:
        extra.setdefault("jwks_refetch_cooldown", "0")
        config = make_config(
            issuer=issuer_lines(orders, partners, partner_options=partner_options), **extra
        )
        config.include("okta_pyramid.health")
        config.add_route("who", "/who")
        config.add_view(
            lambda request: {"principals": request.identity.__principals__()},
            route_name="who",
            renderer="json",
        )
        config.add_route("admin", "/admin", factory=lambda request: Admin(partners.issuer))
        config.add_view(
            lambda request: {"admin": True}, route_name="admin", renderer="json", permission="admin"
        )
        if live:
            config.add_route("live", "/live")
            config.add_view(
                lambda request: {"live": True},
                route_name="live",
                renderer="json",
                require_active_token=True,
            )
        return webtest_app(config)

    return factory


def total_hits(*servers: LoopbackIssuer) -> int:
    return sum(sum(server.hits.values()) for server in servers)


# -- one API, two issuers ---------------------------------------------------------


def test_each_issuer_vouches_for_its_own_tokens(build, orders, partners) -> None:
    app = build()
    for server in (orders, partners):
        principals = app.get("/who", headers=bearer(server.mint())).json["principals"]
        assert f"issuer:{server.issuer}" in principals
        other = partners if server is orders else orders
        assert f"issuer:{other.issuer}" not in principals


def test_a_token_for_the_other_issuers_audience_is_refused(build, orders, partners) -> None:
    app = build()
    # Signed by the partners' server, valid there, but meant for the orders API.
    response = app.get("/who", headers=bearer(partners.mint(aud=ORDERS)), status=401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert app.get("/who", headers=bearer(orders.mint(aud=PARTNERS)), status=401)
    # Nor does a token claim another issuer than the one that signed it.
    app.get("/who", headers=bearer(orders.mint(iss=partners.issuer, aud=PARTNERS)), status=401)


def test_an_untrusted_issuer_is_refused_without_any_request(
    build, orders, partners, stranger
) -> None:
    app = build()
    for token in (
        stranger.mint(),
        orders.mint(iss=stranger.issuer),
        orders.mint(iss=orders.issuer + "/"),  # exact match only
        orders.mint(iss=["not", "a", "string"]),
    ):
        response = app.get("/who", headers=bearer(token), status=401)
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # Counted on the servers: nothing was asked of anyone, the stranger included.
    assert total_hits(orders, partners, stranger) == 0


def test_a_key_rotation_at_one_issuer_leaves_the_other_alone(
    build, config, orders, partners
) -> None:
    app = build()
    old_orders, partner = orders.mint(), partners.mint()
    app.get("/who", headers=bearer(old_orders))
    app.get("/who", headers=bearer(partner))
    partner_cache = app.app.registry.okta.verifiers[partners.issuer].token_cache
    partner_hits = dict(partners.hits)

    orders.rotate(2, keep_old=False)
    app.get("/who", headers=bearer(orders.mint(key=orders.keys[0])))  # found by refetch
    app.get("/who", headers=bearer(old_orders), status=401)  # its key is gone
    before = partner_cache.hits
    app.get("/who", headers=bearer(partner))
    assert partner_cache.hits == before + 1  # still cached: its partition was not reset
    assert dict(partners.hits) == partner_hits  # and its issuer was not asked again


def test_an_issuer_that_is_down_fails_only_its_own_tokens(build, orders, partners) -> None:
    partners.mode = "error"
    app = build()
    app.get("/who", headers=bearer(orders.mint()))
    response = app.get("/who", headers=bearer(partners.mint()), status=503)
    assert "Retry-After" in response.headers
    ready = app.get("/readyz", status=503).json
    assert ready["not_ready"] == [partners.issuer]
    assert partners.issuer in ready["description"]
    states = {state["issuer"]: state for state in ready["issuers"]}
    assert states[orders.issuer]["status"] == "ready"
    assert states[partners.issuer]["reason"] == "keys_not_loaded"

    partners.mode = "ok"
    app.get("/who", headers=bearer(partners.mint()))
    ready = app.get("/readyz").json
    assert ready["status"] == "ready"
    assert [state["status"] for state in ready["issuers"]] == ["ready", "ready"]


def test_an_acl_can_deny_one_issuers_callers(build, orders, partners) -> None:
    app = build()
    assert app.get("/admin", headers=bearer(orders.mint())).json == {"admin": True}
    app.get("/admin", headers=bearer(partners.mint()), status=403)


def test_dpop_bound_tokens_of_each_issuer(build, orders, partners) -> None:
    app = build()
    key = ec.generate_private_key(ec.SECP256R1())
    for server in (orders, partners):
        token = server.mint(cnf={"jkt": thumbprint(key)})
        proof = make_proof(key, "GET", "http://localhost/who", access_token=token)
        principals = app.get(
            "/who", headers={"Authorization": f"DPoP {token}", "DPoP": proof}
        ).json["principals"]
        assert principals[-2:] == [f"issuer:{server.issuer}", "token:dpop"]
        # Bound: not accepted as a bearer token, whichever issuer bound it.
        app.get("/who", headers=bearer(token), status=401)


def test_the_shared_audience_warning_looks_at_every_issuer(
    make_config, orders, partners, caplog
) -> None:
    make_config(
        issuer=f"{orders.issuer} {ORDERS}\n{partners.issuer} api://default",
        environment="production",
        public_url="https://api.example.com",
    )
    assert "okta.audience: is api://default" in caplog.text


# -- introspection, per issuer ------------------------------------------------------

INTROSPECTION = {"introspection_client_id": "0oa-api", "introspection_client_secret": SECRET}


def test_a_live_token_is_confirmed_by_its_own_issuer(build, orders, partners) -> None:
    app = build(live=True, **INTROSPECTION)
    partner = partners.active(partners.mint(), aud=PARTNERS)
    assert app.get("/live", headers=bearer(partner)).json == {"live": True}
    assert partners.introspected_tokens == [partner]
    assert orders.introspected_tokens == []
    order = orders.active(orders.mint(), aud=ORDERS)
    app.get("/live", headers=bearer(order))
    assert orders.introspected_tokens == [order]
    # Revoked at its issuer (the answer is reused for a while: ask a new token).
    revoked = partners.mint()
    app.get("/live", headers=bearer(revoked), status=401)
    assert partners.introspected_tokens[-1] == revoked


def test_an_opaque_token_is_sent_to_no_issuer_when_none_takes_them(build, orders, partners) -> None:
    app = build(**INTROSPECTION)
    opaque = "opaque-token-0123456789"
    for server in (orders, partners):
        server.active(opaque)
    response = app.get("/who", headers=bearer(opaque), status=401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # It could be either's: it is shown to neither.
    assert orders.introspected_tokens == partners.introspected_tokens == []
    assert total_hits(orders, partners) == 0


def test_an_opaque_token_goes_to_the_one_issuer_that_takes_them(build, orders, partners) -> None:
    app = build(partner_options="opaque=true", **INTROSPECTION)
    opaque = partners.active("opaque-token-0123456789", aud=PARTNERS)
    principals = app.get("/who", headers=bearer(opaque)).json["principals"]
    assert f"issuer:{partners.issuer}" in principals
    assert partners.introspected_tokens == [opaque]
    assert orders.introspected_tokens == [] and total_hits(orders) == 0


# -- settings -------------------------------------------------------------------------

ISSUER = "https://acme.okta.com/oauth2/default"
PARTNER_ISSUER = "https://acme.okta.com/oauth2/aus9partners"


def parse(issuer: str, **values: str):
    return parse_settings({"okta.issuer": issuer, **{f"okta.{k}": v for k, v in values.items()}})


def test_each_line_has_its_audiences_clients_and_requirements() -> None:
    parsed = parse(
        f"""
        {ISSUER}  api://orders api://orders-v2
        {PARTNER_ISSUER}  client_ids=0oa1,0oa2 require=tier=gold require=partner_id
    """,
        audience="api://fallback",
        client_ids="0oa-main",
        required_claims="tenant",
    )
    first, second = parsed.issuers
    assert (first.issuer, first.audiences, first.client_ids) == (
        ISSUER,
        ("api://orders", "api://orders-v2"),
        ("0oa-main",),
    )
    assert first.required_claims == (("tenant", None),)
    # A line without audiences takes okta.audience; its client_ids replace the
    # default, its requirements add to okta.required_claims.
    assert (second.audiences, second.client_ids) == (("api://fallback",), ("0oa1", "0oa2"))
    assert second.required_claims == (("tenant", None), ("tier", "gold"), ("partner_id", None))
    assert (parsed.issuer, parsed.audiences) == (first.issuer, first.audiences)


def test_one_line_is_one_issuer_as_before() -> None:
    parsed = parse(ISSUER, audience="api://orders")
    assert len(parsed.issuers) == 1
    assert parsed.issuers[0].issuer == ISSUER
    assert parsed.issuers[0].audiences == ("api://orders",)


@pytest.mark.parametrize(
    ("value", "extra", "message"),
    [
        (f"{ISSUER}\nhttp://acme.example.com/oauth2/x", {}, "okta.issuer line 2: must use https"),
        (f"{ISSUER}\n{ISSUER} api://x", {}, f"okta.issuer line 2: {ISSUER} is listed twice"),
        (f"{ISSUER}\n{PARTNER_ISSUER}/", {}, "okta.issuer line 2: must not end with '/'"),
        (
            f"{ISSUER}\nhttps://acme.okta.com",
            {},
            "okta.issuer line 2: https://acme.okta.com is the Okta org authorization server",
        ),
        (
            f"{ISSUER}\n{PARTNER_ISSUER} clientids=0oa1",
            {},
            "okta.issuer line 2: 'clientids' is not an option of an issuer line; did you mean "
            "client_ids?",
        ),
        (
            f"{ISSUER}\n{PARTNER_ISSUER} client_ids=,",
            {},
            "okta.issuer line 2: client_ids= needs one or more client ids",
        ),
        (
            f"{ISSUER}\n{PARTNER_ISSUER} client_ids=a client_ids=b",
            {},
            "okta.issuer line 2: the option client_ids is given twice",
        ),
        (
            f"{ISSUER}\n{PARTNER_ISSUER} require=tier=",
            {},
            "okta.issuer line 2: the value after '=' is empty",
        ),
        (
            f"{ISSUER}\n{PARTNER_ISSUER} opaque=true",
            {},
            "okta.issuer line 2: opaque=true needs token introspection",
        ),
        (
            f"{ISSUER} opaque=true\n{PARTNER_ISSUER} opaque=true",
            {"introspection_client_id": "0oa", "introspection_client_secret": "s"},
            "okta.issuer line 2: opaque=true is also set on okta.issuer line 1",
        ),
        (
            f"{ISSUER} api://orders\n{PARTNER_ISSUER}",
            {"environment": "production"},
            "okta.audience: is required when okta.environment = production (or after the "
            "issuer on okta.issuer line 2)",
        ),
    ],
)
def test_each_line_is_checked_and_named(value: str, extra: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse(value, **extra)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            "client-ids=0oa1",
            "'client-ids' is not an option of an issuer line; did you mean client_ids?",
        ),
        (
            "Client_IDs=0oa1",
            "'Client_IDs' is not an option of an issuer line; did you mean client_ids?",
        ),
        ("OPAQUE=true", "'OPAQUE' is not an option of an issuer line"),
        ("requires=tier", "'requires' is not an option of an issuer line; did you mean require?"),
        ("#", "'#' starts a comment"),
        ("#partners", "'#partners' starts a comment"),
        (";", "';' starts a comment"),
    ],
)
def test_a_misspelt_option_or_a_comment_is_not_taken_for_an_audience(
    field: str, message: str
) -> None:
    # Taken as an audience, a misspelt client_ids= would let every client of the
    # issuer in, and the words of an inline comment (which ini files do not have)
    # would each become an accepted audience.
    with pytest.raises(ConfigurationError) as info:
        parse(f"{ISSUER} api://orders\n{PARTNER_ISSUER} api://partners {field} partners")
    assert str(info.value).startswith(f"okta.issuer line 2: {message}")


@pytest.mark.parametrize(
    "value",
    [f"{ISSUER},{PARTNER_ISSUER}", f"{ISSUER};{PARTNER_ISSUER}", f"{ISSUER}|{PARTNER_ISSUER}"],
)
def test_two_issuers_run_together_are_refused(value: str) -> None:
    # Read as one URL, it would start, then refuse every token: no iss is that.
    with pytest.raises(ConfigurationError, match=r"^okta\.issuer: .* two issuer URIs"):
        parse(value)


def test_audiences_that_look_a_little_like_options_are_audiences() -> None:
    audiences = ("https://api.example.com/?v=1", "urn:acme:api=orders", "api://x=y", "orders-api")
    parsed = parse(f"{ISSUER} {' '.join(audiences)}")
    assert parsed.issuers[0].audiences == audiences


def test_a_line_may_name_the_org_server_where_introspection_judges_it() -> None:
    parsed = parse(
        f"{ISSUER} api://orders\nhttps://acme.okta.com",
        introspection_client_id="0oa",
        introspection_client_secret="s",
    )
    assert [line.org_server for line in parsed.issuers] == [False, True]
    # Its tokens carry the org as their audience.
    assert parsed.issuers[1].audiences == ("https://acme.okta.com",)
    # With several issuers, opaque tokens need a line that says so.
    assert not any(line.opaque for line in parsed.issuers)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_client_secret_is_never_sent_to_the_servers_of_another_host(method: str) -> None:
    two_orgs = f"{ISSUER} api://orders\nhttps://partner.example.com/oauth2/p api://partners"
    with pytest.raises(
        ConfigurationError,
        match=(
            f"^okta.introspection_auth_method: {method} would send the introspection "
            f"client secret to the authorization servers of 2 hosts "
            f"\\(acme.okta.com, partner.example.com\\);"
        ),
    ):
        parse(
            two_orgs,
            introspection_client_id="0oa",
            introspection_auth_method=method,
            introspection_client_secret="s3cret",
        )
    # One org's servers share the client; a private_key_jwt assertion is made for
    # the one endpoint it is sent to.
    parse(
        f"{ISSUER} api://orders\n{PARTNER_ISSUER}",
        introspection_client_id="0oa",
        introspection_auth_method=method,
        introspection_client_secret="s3cret",
    )


def test_several_lines_from_one_environment_variable() -> None:
    from okta_pyramid.app.environ import expand_settings

    lines = f"{ISSUER} api://orders\n{PARTNER_ISSUER} api://partners"
    expanded = expand_settings(
        {"okta.issuer": "\n${OKTA_ISSUER}\n${OKTA_ISSUER_2:-}"}, {"OKTA_ISSUER": lines}
    )
    assert [line.issuer for line in parse_settings(expanded).issuers] == [ISSUER, PARTNER_ISSUER]
