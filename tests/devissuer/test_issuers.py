"""The development issuer serving a second authorization server (``/oauth2/partners``),
so that several issuers can be tried offline; ``okta-pyramid-token --issuer``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import webtest
from pyramid.exceptions import ConfigurationError
from webtest.http import StopableWSGIServer

from okta_pyramid.app import main
from okta_pyramid.devissuer.config import parse_devissuer_servers

from ..helpers import basic
from .helpers import DevServer, dev_settings, run_cli, write_ini

PARTNERS = "api://partners"


@pytest.fixture
def two(tmp_path: Path) -> Iterator[DevServer]:
    """The app, its development issuer serving /oauth2/default and /oauth2/partners."""
    holder: dict[str, object] = {}
    server = StopableWSGIServer.create(
        lambda e, s: holder["app"](e, s),  # type: ignore[operator]
        host="127.0.0.1",
        threads=4,
    )
    base = f"http://127.0.0.1:{server.adj.port}"
    settings = dev_settings(
        server.adj.port,
        tmp_path / "keys",
        **{"okta.issuer": f"{base}/oauth2/default\n{base}/oauth2/partners {PARTNERS}"},
    )
    holder["app"] = main({}, **settings)
    app = webtest.TestApp(
        holder["app"],
        extra_environ={"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": f"127.0.0.1:{server.adj.port}"},
    )
    yield DevServer(base, f"{base}/oauth2/default", tmp_path / "keys", settings, app)
    server.shutdown()


def client_token(dev: DevServer, path: str) -> str:
    return dev.app.post(
        f"{path}/v1/token",
        {"grant_type": "client_credentials", "scope": "api.read"},
        headers={"Authorization": basic("svc-client", "s3cret-value")},
    ).json["access_token"]


def test_each_server_has_its_metadata_keys_and_audience(two: DevServer) -> None:
    partners = f"{two.base_url}/oauth2/partners"
    metadata = two.app.get("/oauth2/partners/.well-known/oauth-authorization-server").json
    assert metadata["issuer"] == partners
    assert metadata["jwks_uri"] == f"{partners}/v1/keys"
    default_kids = {k["kid"] for k in two.app.get("/oauth2/default/v1/keys").json["keys"]}
    partner_kids = {k["kid"] for k in two.app.get("/oauth2/partners/v1/keys").json["keys"]}
    assert default_kids.isdisjoint(partner_kids)
    claims = jwt.decode(client_token(two, "/oauth2/partners"), options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == (partners, PARTNERS)
    assert (two.keys_dir / "oauth2_partners" / "keys.json").is_file()


def test_the_app_accepts_both_servers_tokens(two: DevServer) -> None:
    for path in ("/oauth2/default", "/oauth2/partners"):
        assert two.whoami(client_token(two, path)).status_int == 200


def test_the_second_server_is_guarded_too(two: DevServer) -> None:
    response = two.app.get(
        "/oauth2/partners/v1/keys", status=403, extra_environ={"REMOTE_ADDR": "192.0.2.1"}
    )
    assert response.json["error"] == "access_denied"


def test_nested_paths_are_refused(tmp_path: Path) -> None:
    base = "http://127.0.0.1:6543"
    settings = dev_settings(
        6543, tmp_path, **{"okta.issuer": f"{base}/oauth2/default\n{base}/oauth2/default/x"}
    )
    with pytest.raises(
        ConfigurationError,
        match=r"^okta.issuer line 2: .* one path lies "
        r"within the other",
    ):
        parse_devissuer_servers(settings)


def test_lines_elsewhere_are_left_to_their_issuer(tmp_path: Path) -> None:
    settings = dev_settings(
        6543,
        tmp_path,
        **{
            "okta.issuer": "http://127.0.0.1:6543/oauth2/default\n"
            "https://acme.okta.com/oauth2/default api://orders"
        },
    )
    assert [s.issuer for s in parse_devissuer_servers(settings)] == [
        "http://127.0.0.1:6543/oauth2/default"
    ]


def test_the_command_mints_for_the_server_it_names(two: DevServer, tmp_path: Path, capsys) -> None:
    ini = write_ini(tmp_path / "dev.ini", two.settings)
    for wanted in ("partners", f"{two.base_url}/oauth2/partners"):
        status, out, _ = run_cli(
            capsys, str(ini), "--sub", "bob@partner.example", "--issuer", wanted
        )
        assert status == 0
        token = out.strip()
        assert jwt.decode(token, options={"verify_signature": False})["iss"] == (
            f"{two.base_url}/oauth2/partners"
        )
        assert two.whoami(token).json["sub"] == "bob@partner.example"
    status, _, err = run_cli(capsys, str(ini), "--sub", "bob", "--issuer", "nowhere")
    assert status == 2 and "--issuer: 'nowhere' is not served here" in err


def test_each_server_introspects_only_its_own_tokens(two: DevServer) -> None:
    partner, default = client_token(two, "/oauth2/partners"), client_token(two, "/oauth2/default")
    auth = {"Authorization": basic("svc-client", "s3cret-value")}

    def active(path: str, token: str) -> bool:
        return two.app.post(f"{path}/v1/introspect", {"token": token}, headers=auth).json["active"]

    assert active("/oauth2/partners", partner) and active("/oauth2/default", default)
    assert not active("/oauth2/partners", default)
    assert not active("/oauth2/default", partner)
    # A revocation at one server is that server's alone.
    two.app.post("/oauth2/partners/v1/revoke", {"token": partner}, headers=auth)
    assert not active("/oauth2/partners", partner)
    assert active("/oauth2/default", default)


@pytest.mark.parametrize("path", ["/oauth2/default", "/oauth2/partners"])
def test_each_server_answers_a_method_its_endpoint_refuses_with_405(
    two: DevServer, path: str
) -> None:
    response = two.app.post(f"{path}/v1/keys", status=405)
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.json["error"] == "method_not_allowed"
    # The token endpoint keeps its own answer, in the words of RFC 6749.
    response = two.app.get(f"{path}/v1/token", status=405)
    assert response.headers["Allow"] == "POST"
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/oauth2/partners/nope", 404),
        ("/oauth2/partners/%ff", 400),
        ("/oauth2/partners/v1/%ff%fe", 400),
    ],
)
def test_the_second_server_answers_json_for_what_no_view_handles(
    two: DevServer, path: str, status: int
) -> None:
    # Never Pyramid's text page, and never an exception escaping to the server.
    response = two.app.get(path, status=status)
    assert response.content_type == "application/json"
    assert response.json["error"] in ("not_found", "invalid_request")


@pytest.mark.parametrize("name", ["oauth-authorization-server", "openid-configuration"])
@pytest.mark.parametrize("server", ["/oauth2/default", "/oauth2/partners"])
def test_the_metadata_is_also_where_rfc_8414_inserts_the_well_known_path(
    two: DevServer, name: str, server: str
) -> None:
    # RFC 8414 §3.1: /.well-known/<name> between the host and the issuer's path; Okta's
    # own form (appended) is what the metadata is served at, and both answer alike.
    inserted = two.app.get(f"/.well-known/{name}{server}").json
    assert inserted == two.app.get(f"{server}/.well-known/{name}").json
    assert inserted["issuer"] == f"{two.base_url}{server}"
    # The server's guard judges it as any other request to the server.
    refused = two.app.get(
        f"/.well-known/{name}{server}", headers={"X-Forwarded-For": "203.0.113.9"}, status=403
    )
    assert refused.json["error"] == "access_denied"
    two.app.get(f"/.well-known/{name}/oauth2/other", status=404)
