"""Start-up checks of the development issuer: it refuses what it cannot serve safely."""

from __future__ import annotations

import configparser
import logging
from pathlib import Path

import pytest
from pyramid.exceptions import ConfigurationError
from pyramid.paster import get_appsettings
from pyramid.settings import aslist

from okta_pyramid.app import main
from okta_pyramid.devissuer.config import SETTING_NAMES, Client, parse_devissuer_settings

from ..helpers import Recording
from .helpers import CLIENTS

ROOT = Path(__file__).resolve().parents[2]


def settings(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "pyramid.includes": "okta_pyramid.devissuer",
        "okta.issuer": "http://localhost:6543/oauth2/default",
        "devissuer.clients": CLIENTS,
        "devissuer.keys_dir": str(tmp_path / "keys"),
        **extra,
    }


@pytest.mark.parametrize(
    "issuer",
    [
        "https://dev-123456.okta.com/oauth2/default",
        "https://example.com/oauth2/default",
        "https://10.0.0.1/oauth2/default",
        "https://localhost.example.com/oauth2/default",
    ],
)
def test_refuses_to_start_unless_the_issuer_is_loopback(tmp_path, issuer):
    with pytest.raises(ConfigurationError, match=r"^okta\.issuer: the development issuer"):
        main({}, **settings(tmp_path, **{"okta.issuer": issuer}))
    assert not (tmp_path / "keys").exists()  # no key is made for a refused issuer


@pytest.mark.parametrize(
    "issuer",
    [
        "http://localhost:6543/oauth2/default",
        "http://127.0.0.1:8080/oauth2/default",
        "http://127.9.9.9/oauth2/abc",
        "http://[::1]:6543/oauth2/default",
    ],
)
def test_starts_for_a_loopback_issuer(tmp_path, issuer):
    parsed = parse_devissuer_settings(settings(tmp_path, **{"okta.issuer": issuer}))
    assert parsed.issuer == issuer


def test_logs_a_loud_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    main({}, **settings(tmp_path))
    assert "DEVELOPMENT ISSUER ENABLED" in caplog.text
    assert "Never include okta_pyramid.devissuer in production" in caplog.text


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("devissuer.clients", "", "is required"),
        ("devissuer.clients", "only-an-id  secret123", "each line must be"),
        ("devissuer.clients", "a  secret123  x\na  secret456  y", "listed twice"),
        ("devissuer.clients", "a  short  x", "at least 8 characters"),
        ("devissuer.clients", 'a  secret123  bad"scope', "not a valid scope"),
        ("devissuer.token_lifetime", "soon", "whole number"),
        ("devissuer.token_lifetime", "10", "between 60 and 86400"),
        ("devissuer.token_lifetime", "100000", "between 60 and 86400"),
        ("devissuer.keep_keys", "0", "between 1 and 10"),
        ("devissuer.audience", "api://other", "not one of okta.audience"),
    ],
)
def test_a_wrong_setting_stops_start_up_naming_the_key(tmp_path, key, value, message):
    with pytest.raises(ConfigurationError) as info:
        main({}, **settings(tmp_path, **{key: value}))
    assert str(info.value).startswith(key + ":")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("key", "closest"),
    [
        ("devissuer.client", "devissuer.clients"),
        ("devissuer.token_lifetim", "devissuer.token_lifetime"),
        ("devissuer.keydir", "devissuer.keys_dir"),
        ("devissuer.audiance", "devissuer.audience"),
    ],
)
def test_an_unknown_key_stops_start_up_naming_the_closest(tmp_path, key, closest):
    with pytest.raises(ConfigurationError) as info:
        main({}, **settings(tmp_path, **{key: "x"}))
    assert str(info.value) == f"{key}: is not a setting of okta_pyramid; did you mean {closest}?"


def test_setting_names_are_exactly_the_keys_read(tmp_path):
    values = Recording(settings(tmp_path))
    parse_devissuer_settings(values)
    assert {key for key in values.read if key.startswith("devissuer.")} == SETTING_NAMES


def test_an_unusable_keys_folder_stops_start_up(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "keys.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match=r"^devissuer\.keys_dir: cannot read"):
        main({}, **settings(tmp_path))


def test_a_client_never_shows_its_secret():
    assert "hunter22" not in repr(Client("c", "hunter22", frozenset({"a"})))


# -- a client line's dpop= option -------------------------------------------------------


def test_a_client_line_can_require_dpop(tmp_path):
    clients = (
        "plain   s3cret-value  api.read\n"
        "bound   s3cret-value  api.read api.write  dpop=required\n"
        "opted   s3cret-value  dpop=allowed  api.read\n"
    )
    parsed = parse_devissuer_settings(settings(tmp_path, **{"devissuer.clients": clients}))
    assert [(c.client_id, c.dpop_required, sorted(c.scopes)) for c in parsed.clients] == [
        ("plain", False, ["api.read"]),
        ("bound", True, ["api.read", "api.write"]),
        ("opted", False, ["api.read"]),
    ]
    assert "dpop_required=True" in repr(parsed.client("bound"))


@pytest.mark.parametrize(
    "line, message",
    [
        ("a  secret123  x  dpop=sometimes", "dpop must be one of allowed, required"),
        ("a  secret123  x  dpop=", "dpop must be one of"),
        ("a  secret123  x  dpop=required  dpop=allowed", "sets the option 'dpop' twice"),
        ("a  secret123  x  mtls=required", "unknown option 'mtls'"),
        ("a  secret123  x=y", "has no scope"),
        ("a  secret123  dpop=required", "has no scope"),
        ("a  -  openid", "needs at least one redirect=URI"),
        ("a  short  openid", "at least 8 characters ('-' for a public client)"),
        ("a  -  openid  redirect=/callback", "is not an absolute http(s) URI"),
        ("a  -  openid  redirect=ftp://host/x", "is not an absolute http(s) URI"),
        ("a  -  openid  redirect=http://host:port/x", "is not an absolute http(s) URI"),
        ("a  -  openid  redirect=http://host/x#frag", "has a fragment"),
        ("a  -  openid  redirect=http://h/x  redirect=http://h/x", "twice"),
        ("redirect=http://h/x\na  -  openid", "the first line must start with a client id"),
    ],
)
def test_a_wrong_client_option_stops_start_up(tmp_path, line, message):
    with pytest.raises(ConfigurationError) as info:
        main({}, **settings(tmp_path, **{"devissuer.clients": line}))
    assert str(info.value).startswith("devissuer.clients:")
    assert message in str(info.value)


def test_client_lines_declare_public_clients_and_redirect_uris(tmp_path):
    clients = (
        "svc  s3cret-value  api.read\n"
        "spa  -  openid api.read  redirect=http://127.0.0.1/callback\n"
        # A line starting with an option continues the client above.
        "      redirect=http://localhost:6543/console/?from=x\n"
        "web  w3b-secret  openid  redirect=https://app.example/cb  dpop=required\n"
    )
    parsed = parse_devissuer_settings(settings(tmp_path, **{"devissuer.clients": clients}))
    svc, spa, web = parsed.clients
    assert (svc.public, svc.redirect_uris) == (False, ())
    assert spa.public and spa.scopes == {"openid", "api.read"}
    assert spa.redirect_uris == (
        "http://127.0.0.1/callback",
        "http://localhost:6543/console/?from=x",
    )
    assert not web.public and web.dpop_required
    assert "secret" not in repr(web).replace("secret'", "")


@pytest.mark.parametrize(
    ("registered", "asked", "allowed"),
    [
        # RFC 8252 §7.3: a loopback IP redirect URI matches with any port.
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/callback", True),
        ("http://127.0.0.1:8000/callback", "http://127.0.0.1:9/callback", True),
        ("http://[::1]/cb", "http://[::1]:4000/cb", True),
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/callback/", False),
        ("http://127.0.0.1/callback", "https://127.0.0.1:51234/callback", False),
        ("http://127.0.0.1/callback", "http://127.0.0.2:51234/callback", False),
        # Everything else: the exact string (localhost too, RFC 8252 §8.3).
        ("http://localhost:6543/console/", "http://localhost:6543/console/", True),
        ("http://localhost:6543/console/", "http://localhost:6544/console/", False),
        ("http://localhost/console/", "http://localhost:80/console/", False),
        ("https://app.example/cb", "https://APP.example/cb", False),
        ("https://app.example/cb", "https://app.example/cb?next=/", False),
    ],
)
def test_redirect_uris_match_exactly_but_for_loopback_ports(registered, asked, allowed):
    client = Client("c", "-", frozenset({"openid"}), redirect_uris=(registered,))
    assert client.redirect_uri_allowed(asked) is allowed


# -- the two ini files ------------------------------------------------------------------


def test_production_ini_does_not_include_the_development_issuer():
    parser = configparser.RawConfigParser()
    parser.read(ROOT / "production.ini")
    includes = parser.get("app:main", "pyramid.includes", fallback="")
    assert "devissuer" not in includes
    assert not any(key.startswith("devissuer.") for key in parser.options("app:main"))


def test_development_ini_serves_its_issuer_on_the_port_it_listens_on():
    app = get_appsettings(str(ROOT / "development.ini"))
    assert "okta_pyramid.devissuer" in aslist(app["pyramid.includes"])
    parser = configparser.ConfigParser(defaults={"here": str(ROOT)})
    parser.read(ROOT / "development.ini")
    listen = parser.get("server:main", "listen")
    # Every issuer line is an authorization server the development issuer serves,
    # on the port the app listens on.
    issuers = [line.split()[0] for line in app["okta.issuer"].strip().splitlines()]
    assert issuers == [f"http://{listen}/oauth2/default", f"http://{listen}/oauth2/partners"]
    assert int(parser.get("server:main", "threads")) >= 4
    parse_devissuer_settings(app)  # valid as shipped


@pytest.mark.parametrize(
    ("secret", "registered", "origin", "trusted"),
    [
        ("-", "http://localhost:3000/callback", "http://localhost:3000", True),
        ("-", "http://localhost:3000/callback", "http://LOCALHOST:3000", True),
        ("-", "http://localhost:3000/callback", "http://localhost:3001", False),
        ("-", "https://app.example/cb", "https://app.example", True),
        ("-", "https://app.example/cb", "https://app.example:443", True),
        ("-", "https://app.example/cb", "http://app.example", False),
        ("-", "http://127.0.0.1/callback", "http://127.0.0.1:5173", True),
        ("-", "http://127.0.0.1/callback", "http://localhost:5173", False),
        ("-", "http://127.0.0.1/callback", "null", False),
        # A confidential client trusts no page: its secret is in the ini file.
        ("s3cret-value", "http://localhost:3000/callback", "http://localhost:3000", False),
    ],
)
def test_a_public_client_trusts_its_redirect_uris_origins(secret, registered, origin, trusted):
    client = Client("c", secret, frozenset({"openid"}), redirect_uris=(registered,))
    assert client.trusts_origin(origin) is trusted
