"""The one RFC 3986 authority parser, URL normalization, and the loopback test."""

from __future__ import annotations

import pytest

from okta_pyramid.tokens.urls import is_loopback_host, normalize_url, split_authority


@pytest.mark.parametrize(
    ("authority", "host", "port"),
    [
        ("localhost", "localhost", ""),
        ("localhost:6611", "localhost", "6611"),
        ("localhost:", "localhost", ""),
        ("127.0.0.1:65535", "127.0.0.1", "65535"),
        ("h:0", "h", "0"),
        ("h:00080", "h", "00080"),
        ("API.example.COM", "API.example.COM", ""),
        ("xn--bcher-kva.example", "xn--bcher-kva.example", ""),
        ("a%41b.example", "a%41b.example", ""),
        ("my~host_1-2:6379", "my~host_1-2", "6379"),
        ("a!$&'()*+,;=b", "a!$&'()*+,;=b", ""),
        ("[::1]", "[::1]", ""),
        ("[::1]:", "[::1]", ""),
        ("[::1]:6611", "[::1]", "6611"),
        ("[2001:DB8::1]:443", "[2001:DB8::1]", "443"),
        ("[::ffff:127.0.0.1]", "[::ffff:127.0.0.1]", ""),
        ("[v1.fe80::a+en1]", "[v1.fe80::a+en1]", ""),
        ("[v1F.x]:80", "[v1F.x]", "80"),
    ],
)
def test_an_authority_is_split_into_host_and_port_as_written(
    authority: str, host: str, port: str
) -> None:
    assert split_authority(authority) == (host, port)


@pytest.mark.parametrize(
    ("authority", "why"),
    [
        ("", "not a host"),
        (":6379", "not a host"),
        ("local host", "not a host"),
        ("a@localhost", "not a host"),  # userinfo
        ("l\u00f3calhost", "not a host"),  # not a URI's ASCII
        ("localhost/x", "not a host"),
        ("localhost?x=", "not a host"),
        ("localhost#x", "not a host"),
        ("h%zz", "not a host"),
        ("h%4", "not a host"),
        ("h\n", "not a host"),
        ("[::1]x", "not a host"),
        ("[::1]]", "not a host"),
        ("[::1", "not an IP literal"),
        ("[]", "not an IP literal"),
        ("[1::2::3]", "not an IP literal"),
        ("[1:2]", "not an IP literal"),
        ("[:::]", "not an IP literal"),
        ("[127.0.0.1]", "not an IP literal"),
        ("[::ffff:1.2.3.04]", "not an IP literal"),
        ("[fe80::1%eth0]", "not an IP literal"),  # no zone identifier in RFC 3986
        ("[fe80::1%25eth0]", "not an IP literal"),
        ("[V1.fe80::a+en1]", "not an IP literal"),
        ("[v1.]", "not an IP literal"),
        ("[zz]", "not an IP literal"),
        ("localhost:99999", "not a port"),
        ("localhost:65536", "not a port"),
        ("localhost:000080", "not a port"),
        ("localhost:80:1", "not a port"),
        ("localhost:http", "not a port"),
        ("localhost:-1", "not a port"),
        ("localhost:1 ", "not a port"),
        ("localhost:\u0663", "not a port"),  # a digit, but not an ASCII one
        ("[::1]:65536", "not a port"),
    ],
)
def test_anything_else_is_refused_with_the_part_at_fault(authority: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"^{why}$"):
        split_authority(authority)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("", False),
        (None, False),
        ("localhost.example", False),
        ("10.0.0.1", False),
        ("[::1]", False),
        ("::2", False),
    ],
)
def test_is_loopback_host(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("HTTPS://API.Example.COM", "https://api.example.com/"),
        ("https://api.example.com:443/x?q#f", "https://api.example.com/x"),
        ("https://api.example.com:00443/x", "https://api.example.com/x"),
        ("http://api.example.com:8080/x", "http://api.example.com:8080/x"),
        ("https://a%7e%41b.example/%7Ex/%2f", "https://a~ab.example/~x/%2F"),
        ("https://[2001:DB8::1]:443/a/./b/../c", "https://[2001:db8::1]/a/c"),
    ],
)
def test_normalize_url(url: str, normalized: str) -> None:
    assert normalize_url(url) == normalized


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("/x", "not an absolute URL with an authority"),
        ("ftp://api.example.com/x", "not an http or https URL"),
        ("https://user@api.example.com/x", "not a host"),
        ("https://[::1/x", "not an IP literal"),
        ("https://api.example.com:99999/x", "not a port"),
        ("https://api.example.com/a b", "the path holds characters a URI cannot"),
    ],
)
def test_normalize_url_refuses_what_is_no_http_url(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"^{why}$"):
        normalize_url(url)


def test_a_lenient_path_is_percent_encoded() -> None:
    assert normalize_url("https://api.example.com/caf\u00e9", lenient=True) == (
        "https://api.example.com/caf%C3%A9"
    )
