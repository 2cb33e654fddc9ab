"""Property-based: no Authorization header, no token bytes and no DPoP proof ever make a
5xx."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webob import Request

from okta_pyramid.app import main
from okta_pyramid.tokens.exceptions import InvalidToken
from okta_pyramid.tokens.verifier import AccessTokenVerifier

from .helpers import b64url
from .issuer import LoopbackIssuer

# Header values a WSGI server can deliver: latin-1 text without CR/LF.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)
b64url_text = st.binary(max_size=200).map(b64url)
# A header we accept, so the payload and signature bytes reach the key and signature checks.
GOOD_HEADER = b64url(b'{"alg":"RS256","kid":"key-1"}')
tokenish = st.one_of(
    st.builds(lambda b, c: f"{GOOD_HEADER}.{b}.{c}", b64url_text, b64url_text),
    st.text(max_size=300),
    st.builds(lambda a, b, c: f"{a}.{b}.{c}", b64url_text, b64url_text, b64url_text),
    st.builds(
        lambda a, b, c: f"{a}.{b}.{c}",
        st.text(max_size=40),
        st.text(max_size=40),
        st.text(max_size=40),
    ),
)
PROFILE = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


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
    with contextlib.suppress(InvalidToken):
        verifier.verify(token)


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


# -- DPoP (RFC 9449): any proof header and any proof claims ---------------------------------

DPOP_KEY = ec.generate_private_key(ec.SECP256R1())


def _jwk() -> dict[str, Any]:
    numbers = DPOP_KEY.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }


def _signed(header: dict[str, Any], claims: Any) -> str:
    """A proof with exactly these header and claims, truly signed with DPOP_KEY."""
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    r, s = decode_dss_signature(DPOP_KEY.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
CLAIM_NAMES = ("jti", "htm", "htu", "iat", "ath", "nonce", "cnf", "exp")
proof_claims = st.one_of(
    st.dictionaries(st.sampled_from(CLAIM_NAMES), json_value, max_size=8),
    st.fixed_dictionaries(
        {
            "jti": st.one_of(st.text(max_size=300), json_value),
            "htm": st.sampled_from(["GET", "get", "POST", ""]) | json_value,
            "htu": st.sampled_from(
                [
                    "http://localhost/api/whoami",
                    "http://LOCALHOST:80/api/./whoami",
                    "http://localhost/api/whoami#x",
                    "https://localhost/api/whoami",
                    "http://localhost/api/%77hoami",
                    "http://[::1/",
                ]
            )
            | json_value,
            "iat": st.one_of(st.floats(), st.integers(), json_value),
        }
    ),
    json_value,
)
proof_header = st.fixed_dictionaries(
    {
        "typ": st.sampled_from(["dpop+jwt", "DPoP+JWT", "jwt"]) | json_value,
        "alg": st.sampled_from(["ES256", "RS256", "none", "HS256"]) | json_value,
        "jwk": st.just(_jwk()) | json_value,
    },
    optional={"crit": json_value, "kid": json_value},
)


@pytest.fixture(scope="module")
def dpop_apps(module_issuer: LoopbackIssuer) -> Any:
    common = {"okta.issuer": module_issuer.issuer}
    return [
        main({}, **common),
        main({}, **common, **{"okta.dpop_nonce": "true"}),
        main({}, **common, **{"okta.dpop": "required"}),
    ]


@pytest.fixture(scope="module")
def bound_token(module_issuer: LoopbackIssuer) -> str:
    from okta_pyramid.tokens import DPoPVerifier, make_proof

    url = "http://localhost/api/whoami"
    jkt = DPoPVerifier().verify(make_proof(DPOP_KEY, "GET", url), "GET", url).jkt
    return module_issuer.mint(cnf={"jkt": jkt})


def dpop_statuses(apps: Any, authorization: str, proof: str | None) -> list[int]:
    headers = {"Authorization": authorization}
    if proof is not None:
        headers["DPoP"] = proof
    return [
        Request.blank("/api/whoami", headers=headers).get_response(app).status_int for app in apps
    ]


@PROFILE
@given(proof=header_text, scheme=st.sampled_from(["DPoP", "dpop", "Bearer"]))
def test_any_dpop_header_is_a_4xx(
    dpop_apps: Any, bound_token: str, proof: str, scheme: str
) -> None:
    for status in dpop_statuses(dpop_apps, f"{scheme} {bound_token}", proof):
        assert status in (400, 401)


@PROFILE
@given(header=proof_header, claims=proof_claims)
def test_any_signed_proof_header_and_claims_are_never_a_5xx(
    dpop_apps: Any, bound_token: str, header: Any, claims: Any
) -> None:
    for status in dpop_statuses(dpop_apps, f"DPoP {bound_token}", _signed(header, claims)):
        assert status in (200, 400, 401)


@PROFILE
@given(
    token=tokenish.filter(lambda t: all(0x20 <= ord(c) <= 0xFF for c in t)),
    proof=st.none() | tokenish.filter(lambda t: all(0x20 <= ord(c) <= 0xFF for c in t)),
)
def test_any_dpop_token_and_proof_text_is_a_4xx(
    dpop_apps: Any, token: str, proof: str | None
) -> None:
    for status in dpop_statuses(dpop_apps, "DPoP " + token, proof):
        assert status in (400, 401)
