from __future__ import annotations

import logging

import pytest
from pyramid.exceptions import ConfigurationError

from okta_pyramid.app.server import server_factory, waitress_settings


def test_reads_values_from_the_environment_and_drops_empty_ones(monkeypatch) -> None:
    monkeypatch.setenv("TEST_LISTEN", "127.0.0.1:0")
    monkeypatch.delenv("TEST_PROXY", raising=False)
    result = waitress_settings(
        {
            "listen": "${TEST_LISTEN}",
            "threads": "${TEST_THREADS:-4}",
            "trusted_proxy": "${TEST_PROXY:-}",
            "trusted_proxy_headers": "${TEST_PROXY_HEADERS:-}",
        }
    )
    assert result == {"listen": "127.0.0.1:0", "threads": "4"}


def test_missing_variable_names_the_server_setting(monkeypatch) -> None:
    monkeypatch.delenv("TEST_LISTEN", raising=False)
    with pytest.raises(ConfigurationError, match="server:main listen: .*TEST_LISTEN"):
        waitress_settings({"listen": "${TEST_LISTEN}"})


def test_tracebacks_in_responses_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="expose_tracebacks"):
        waitress_settings({"listen": "127.0.0.1:0", "expose_tracebacks": "true"})


def test_trusted_proxy_needs_the_headers_it_may_set() -> None:
    with pytest.raises(ConfigurationError, match="trusted_proxy_headers"):
        waitress_settings({"listen": "127.0.0.1:0", "trusted_proxy": "10.0.0.1"})
    assert (
        waitress_settings(
            {
                "listen": "127.0.0.1:0",
                "trusted_proxy": "10.0.0.1",
                "trusted_proxy_headers": "x-forwarded-for x-forwarded-proto",
            }
        )["trusted_proxy"]
        == "10.0.0.1"
    )


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"listen": "127.0.0.1:0", "trusted_proxy_headers": "x-forwarded-for"}, ""),
        ({"listen": "127.0.0.1:0", "threads": "many"}, " threads"),
        ({"listen": "127.0.0.1:0", "no_such_setting": "1"}, ""),
        # waitress itself accepts these, then never answers a request.
        ({"listen": "127.0.0.1:0", "threads": "0"}, " threads"),
        ({"listen": "127.0.0.1:0", "threads": "-2"}, " threads"),
        ({"listen": "127.0.0.1:0", "connection_limit": "0"}, " connection_limit"),
    ],
)
def test_waitress_errors_become_configuration_errors(settings, key) -> None:
    with pytest.raises(ConfigurationError, match=rf"^server:main{key}: "):
        waitress_settings(settings)


def test_factory_refuses_with_one_line_and_exit_status_1(caplog) -> None:
    caplog.set_level(logging.CRITICAL, logger="okta_pyramid")
    with pytest.raises(SystemExit) as info:
        server_factory({}, listen="127.0.0.1:0", expose_tracebacks="true")
    assert info.value.code == 1
    [record] = caplog.records
    assert record.getMessage().startswith("refusing to start: server:main expose_tracebacks")


def test_factory_binds_the_address_and_returns_a_server_callable() -> None:
    server = server_factory({}, listen="127.0.0.1:0")
    try:
        assert callable(server)
        [sock] = server.sockets
        assert sock.getsockname()[0] == "127.0.0.1" and sock.getsockname()[1] > 0
    finally:
        server.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        # The system would wrap these: 99999 becomes 34463.
        ({"listen": "127.0.0.1:99999"}, "server:main listen: the port '99999' is not a number"),
        ({"listen": "127.0.0.1:0 [::1]:65536"}, "server:main listen: the port '65536'"),
        ({"listen": "*:-1"}, "server:main listen: the port '-1'"),
        ({"listen": "127.0.0.1:http"}, "server:main listen: the port 'http'"),
        ({"host": "127.0.0.1", "port": "70000"}, "server:main port: the port '70000'"),
    ],
)
def test_a_port_beyond_65535_is_refused(settings, message) -> None:
    with pytest.raises(ConfigurationError) as info:
        waitress_settings(settings)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    "listen",
    ["127.0.0.1:0", "127.0.0.1:65535", "[::1]:8080", "*:6543", "localhost:6543 127.0.0.1:6544"],
)
def test_ports_up_to_65535_are_accepted(listen: str) -> None:
    assert waitress_settings({"listen": listen})["listen"] == listen


@pytest.mark.parametrize(
    ("global_conf", "listen", "hint"),
    [
        (
            {"http_port": "6543", "__file__": "/srv/app/development.ini"},
            "127.0.0.1:{port}",
            "choose another port with http_port in development.ini",
        ),
        (
            {},
            "${TEST_LISTEN:-127.0.0.1:{port}}",
            "choose another address with the environment variable TEST_LISTEN",
        ),
        ({}, "127.0.0.1:{port}", "choose another address with listen in [server:main]"),
    ],
)
def test_a_taken_address_refuses_in_one_line(
    taken_port, caplog, monkeypatch, global_conf, listen, hint
) -> None:
    monkeypatch.delenv("TEST_LISTEN", raising=False)
    caplog.set_level(logging.CRITICAL, logger="okta_pyramid")
    with pytest.raises(SystemExit) as info:
        server_factory(global_conf, listen=listen.replace("{port}", str(taken_port)))
    assert info.value.code == 1
    [record] = caplog.records
    assert record.getMessage() == (
        f"refusing to start: server:main listen: cannot listen on 127.0.0.1:{taken_port} "
        f"(address already in use); stop what uses it, or {hint}"
    )
