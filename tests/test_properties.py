"""Property-based: no Authorization header and no token bytes ever make a 5xx."""
from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from webob import Request

from okta_pyramid import main
from okta_pyramid.tokens.exceptions import InvalidToken
from okta_pyramid.tokens.verifier import AccessTokenVerifier

from .issuer import LoopbackIssuer

# Header values a WSGI server can deliver: latin-1 text without CR/LF.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)
b64url = st.binary(max_size=200).map(
    lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode())
# A header we accept, so the payload and signature bytes reach the key and signature checks.
GOOD_HEADER = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"key-1"}').rstrip(b"=").decode()
tokenish = st.one_of(
    st.builds(lambda b, c: f"{GOOD_HEADER}.{b}.{c}", b64url, b64url),
    st.text(max_size=300),
    st.builds(lambda a, b, c: f"{a}.{b}.{c}", b64url, b64url, b64url),
    st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.text(max_size=40), st.text(max_size=40),
              st.text(max_size=40)),
)
PROFILE = settings(max_examples=300, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def module_issuer() -> Any:
    issuer = LoopbackIssuer()
    yield issuer
    issuer.close()


@pytest.fixture(scope="module")
def wsgi_app(module_issuer: LoopbackIssuer) -> Any:
    return main({}, **{"okta.issuer": module_issuer.issuer})


def status_for(app: Any, header: str) -> int:
    request = Request.blank("/api/whoami", headers={"Authorization": header})
    return request.get_response(app).status_int


@PROFILE
@given(header=header_text)
def test_any_authorization_header_is_a_4xx(wsgi_app: Any, header: str) -> None:
    assert status_for(wsgi_app, header) in (400, 401)


@PROFILE
@given(token=tokenish.filter(lambda t: all(0x20 <= ord(c) <= 0xFF for c in t)))
def test_any_bearer_token_is_a_4xx(wsgi_app: Any, token: str) -> None:
    assert status_for(wsgi_app, "Bearer " + token) in (400, 401)


@PROFILE
@given(token=tokenish)
def test_verifier_raises_only_invalid_token(module_issuer: LoopbackIssuer, token: str) -> None:
    verifier = AccessTokenVerifier(module_issuer.issuer)
    try:
        verifier.verify(token)
    except InvalidToken:
        pass


@PROFILE
@given(raw=st.binary(max_size=60))
def test_any_request_path_is_never_a_5xx(wsgi_app: Any, raw: bytes) -> None:
    from urllib.parse import quote_from_bytes

    request = Request.blank("/api/" + quote_from_bytes(raw))
    assert request.get_response(wsgi_app).status_int < 500


@PROFILE
@given(raw=st.binary(max_size=60))
def test_any_query_string_is_never_a_5xx(wsgi_app: Any, raw: bytes) -> None:
    from urllib.parse import quote_from_bytes

    request = Request.blank("/api/whoami?" + quote_from_bytes(raw, safe="=&"))
    assert request.get_response(wsgi_app).status_int < 500
