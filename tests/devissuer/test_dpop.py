"""DPoP (RFC 9449) at the development issuer's token endpoint, answered as Okta does:
the nonce dance, proofs judged by the resource server's checker, tokens bound to
the proof's key (``token_type`` DPoP, ``cnf.jkt``), clients that require DPoP."""

from __future__ import annotations

import http.client
import json
import logging
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okta_pyramid.tokens.dpop import DPoPVerifier, InMemoryReplayStore, make_proof
from okta_pyramid.tokens.nonces import DPoPNonces
from okta_pyramid.tokens.verifier import AccessTokenVerifier

from ..helpers import basic, thumbprint
from .helpers import (
    DPOP_CLIENTS,
    GRANT,
    TOKEN,
    DevServer,
    bound_token,
    nonce,
    request_token,
    token_url,
)


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def dpop_dev(serve) -> DevServer:
    return serve(**{"devissuer.clients": DPOP_CLIENTS})


# -- the nonce dance and the bound token ------------------------------------------------


def test_a_proof_without_a_nonce_is_answered_use_dpop_nonce(dev: DevServer, key):
    response = request_token(dev, make_proof(key, "POST", token_url(dev)), status=400)
    assert response.json["error"] == "use_dpop_nonce"
    assert response.cache_control.no_store
    assert response.headers["Pragma"] == "no-cache"
    value = response.headers["DPoP-Nonce"]
    # RFC 9449 §8.1: nonce = 1*NQCHAR.
    assert value and all(0x21 <= ord(c) <= 0x7E and c not in '"\\' for c in value)
    assert "access_token" not in response.json


def test_the_retry_with_the_nonce_gets_a_dpop_token_bound_to_the_key(dev: DevServer, key):
    response = bound_token(dev, key)
    assert response.cache_control.no_store
    body = response.json
    assert body["token_type"] == "DPoP"
    assert body["scope"] == "api.read" and body["expires_in"] == 3600
    claims = AccessTokenVerifier(dev.issuer, "api://default", http_timeout=2).verify(
        body["access_token"]
    )
    assert claims["cnf"] == {"jkt": thumbprint(key)}
    assert claims["cid"] == claims["sub"] == "svc-client"


def test_a_nonce_from_another_issuer_is_not_accepted(dev: DevServer, key):
    foreign = DPoPNonces(b"another secret of 32 bytes......").issue()
    response = request_token(
        dev, make_proof(key, "POST", token_url(dev), nonce=foreign), status=400
    )
    assert response.json["error"] == "use_dpop_nonce"
    assert response.headers["DPoP-Nonce"] != foreign


def test_the_token_endpoints_proofs_need_a_nonce_even_when_otherwise_valid(dev: DevServer, key):
    # Two valid nonce-less proofs in a row: neither is accepted.
    for _ in range(2):
        response = request_token(dev, make_proof(key, "POST", token_url(dev)), status=400)
        assert response.json["error"] == "use_dpop_nonce"


def test_without_a_proof_the_token_stays_a_bearer_token(dev: DevServer):
    response = request_token(dev, None, status=200)
    assert response.json["token_type"] == "Bearer"
    assert "DPoP-Nonce" not in response.headers
    claims = jwt.decode(response.json["access_token"], options={"verify_signature": False})
    assert "cnf" not in claims


def test_each_key_gets_its_own_binding(dev: DevServer, key):
    other = ec.generate_private_key(ec.SECP256R1())
    first = bound_token(dev, key).json["access_token"]
    second = bound_token(dev, other).json["access_token"]
    jkts = [
        jwt.decode(t, options={"verify_signature": False})["cnf"]["jkt"] for t in (first, second)
    ]
    assert jkts == [thumbprint(key), thumbprint(other)]


def test_an_rsa_proof_binds_too(dev: DevServer):
    rsa_key = rsa.generate_private_key(65537, 2048)
    proof = make_proof(rsa_key, "POST", token_url(dev), nonce=nonce(dev, rsa_key), alg="PS256")
    token = request_token(dev, proof, status=200).json["access_token"]
    assert "jkt" in jwt.decode(token, options={"verify_signature": False})["cnf"]


def test_metadata_advertises_the_proof_algorithms(dev: DevServer):
    document = dev.app.get("/oauth2/default/.well-known/oauth-authorization-server").json
    # RFC 9449 §5.1; what Okta lists, and EdDSA.
    assert document["dpop_signing_alg_values_supported"] == [
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
    ]


# -- proofs that are refused ------------------------------------------------------------


def refused(response, error: str = "invalid_dpop_proof") -> None:
    assert response.status_int == 400
    assert response.json["error"] == error
    assert response.cache_control.no_store
    assert "access_token" not in response.json


@pytest.mark.parametrize(
    "url",
    [
        "{base}/api/whoami",  # another endpoint of this host
        "{base}/oauth2/default/v1/keys",  # another endpoint of the issuer
        "{base}/oauth2/other/v1/token",  # another issuer's token endpoint
        "https://{host}/oauth2/default/v1/token",  # another scheme and port
        "http://{hostname}:1/oauth2/default/v1/token",  # another port
        "http://example.com:{port}/oauth2/default/v1/token",  # another host
    ],
)
def test_htu_must_be_the_token_endpoint_as_the_client_called_it(dev: DevServer, key, url):
    parts = urlsplit(dev.base_url)
    url = url.format(base=dev.base_url, host=parts.netloc, hostname=parts.hostname, port=parts.port)
    proof = make_proof(key, "POST", url, nonce=nonce(dev, key))
    refused(request_token(dev, proof))


def test_htu_is_compared_after_normalization_and_without_the_query(dev: DevServer, key):
    parts = urlsplit(dev.base_url)
    url = f"HTTP://{parts.hostname}:{parts.port}/oauth2/%64efault/v1/token?x=1"
    request_token(dev, make_proof(key, "POST", url, nonce=nonce(dev, key)), status=200)


def test_htm_must_be_post(dev: DevServer, key):
    proof = make_proof(key, "GET", token_url(dev), nonce=nonce(dev, key))
    refused(request_token(dev, proof))


def test_a_replayed_proof_is_refused(dev: DevServer, key):
    proof = make_proof(key, "POST", token_url(dev), nonce=nonce(dev, key))
    request_token(dev, proof, status=200)
    response = request_token(dev, proof)
    refused(response)
    assert "already used" in response.json["error_description"]


def test_a_proof_refused_for_another_reason_is_not_used_up(dev: DevServer, key):
    # The proof is judged last, after the client and the scope: a request refused
    # for those leaves the proof usable for the corrected retry.
    proof = make_proof(key, "POST", token_url(dev), nonce=nonce(dev, key))
    bad_scope = dev.app.post(
        TOKEN,
        {**GRANT, "scope": "api.admin"},
        headers={"Authorization": basic("svc-client", "s3cret-value"), "DPoP": proof},
        status=400,
    )
    assert bad_scope.json["error"] == "invalid_scope"
    request_token(dev, proof, status=200)


def test_client_authentication_comes_before_the_proof(dev: DevServer, key):
    response = request_token(
        dev, make_proof(key, "POST", token_url(dev)), secret="wrong-secret", status=401
    )
    assert response.json["error"] == "invalid_client"
    assert "DPoP-Nonce" not in response.headers


def test_a_bad_signature_is_refused_and_the_proof_never_echoed(dev: DevServer, key):
    proof = make_proof(key, "POST", token_url(dev), nonce=nonce(dev, key))
    head, claims, signature = proof.split(".")
    forged = ".".join((head, claims, signature[::-1]))
    response = request_token(dev, forged)
    refused(response)
    for part in (forged, head, claims, signature[::-1]):
        assert part not in response.text


@pytest.mark.parametrize(
    "value",
    [
        "not-a-jws",
        "a.b.c",
        "x" * 9000,
        "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.",
    ],
)
def test_a_malformed_proof_is_400_invalid_dpop_proof(dev: DevServer, value):
    response = request_token(dev, value)
    refused(response)
    assert value[:20] not in response.json["error_description"]


# Header-safe text, and text shaped like a compact JWS (three base64url-ish parts).
_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)
_JWS_LIKE = st.lists(
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.", max_size=120),
    min_size=3,
    max_size=3,
).map(".".join)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.one_of(_HEADER_TEXT, _JWS_LIKE))
def test_no_dpop_header_makes_the_token_endpoint_fail(dev: DevServer, value):
    response = request_token(dev, value)
    assert response.status_int == 400
    assert response.json["error"] == "invalid_dpop_proof"
    assert response.cache_control.no_store


def test_two_dpop_headers_are_refused(dev: DevServer, key):
    # Over real HTTP: the server joins repeated headers, which is not one proof.
    parts = urlsplit(dev.base_url)
    assert parts.hostname is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    connection.putrequest("POST", TOKEN)
    body = b"grant_type=client_credentials&scope=api.read"
    for name, value in (
        ("Authorization", basic("svc-client", "s3cret-value")),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", str(len(body))),
        ("DPoP", make_proof(key, "POST", token_url(dev))),
        ("DPoP", make_proof(key, "POST", token_url(dev))),
    ):
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 400 and answer["error"] == "invalid_dpop_proof"
    cache_control = response.getheader("Cache-Control")
    assert cache_control is not None and "no-store" in cache_control


def test_a_full_replay_store_is_503_with_retry_after(dev: DevServer, key):
    registry = dev.app.app.registry
    registry.devissuer_dpop = DPoPVerifier(
        nonces=DPoPNonces(), replay_store=InMemoryReplayStore(max_entries=1)
    )
    bound_token(dev, key)
    proof = make_proof(key, "POST", token_url(dev), nonce=nonce(dev, key))
    response = request_token(dev, proof, status=503)
    assert response.json["error"] == "temporarily_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.cache_control.no_store


# -- clients that require DPoP ----------------------------------------------------------


def test_a_client_that_requires_dpop_is_refused_without_a_proof(dpop_dev: DevServer):
    response = request_token(dpop_dev, None, client="bound-client", secret="b0und-secret")
    refused(response)
    assert "must send a DPoP proof" in response.json["error_description"]


def test_a_client_that_requires_dpop_gets_a_bound_token_with_one(dpop_dev: DevServer, key):
    body = bound_token(dpop_dev, key, client="bound-client", secret="b0und-secret").json
    assert body["token_type"] == "DPoP"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": thumbprint(key)} and claims["cid"] == "bound-client"


def test_other_clients_still_get_bearer_tokens(dpop_dev: DevServer):
    assert request_token(dpop_dev, None, status=200).json["token_type"] == "Bearer"


# -- what the logs say ------------------------------------------------------------------


def test_no_proof_nonce_or_token_in_the_logs(dev: DevServer, key, caplog):
    caplog.set_level(logging.DEBUG)
    first = make_proof(key, "POST", token_url(dev))
    given = request_token(dev, first, status=400).headers["DPoP-Nonce"]
    second = make_proof(key, "POST", token_url(dev), nonce=given)
    token = request_token(dev, second, status=200).json["access_token"]
    request_token(dev, second, status=400)  # replayed
    logged = caplog.text
    assert "token issued" in logged and "token_type=DPoP" in logged
    assert "reason=dpop_replayed" in logged
    for secret in (first, second, given, token, *second.split("."), *token.split(".")):
        assert secret not in logged
