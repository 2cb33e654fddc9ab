"""The loopback issuer's introspection (RFC 7662) and revocation (RFC 7009) endpoints.

Tests of the product trust this server to refuse a client that authenticates wrongly,
so each refusal is shown here, with a plain HTTP client and PyJWT.
"""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .helpers import basic
from .issuer import DROP, JWT_BEARER, ClientKey, LoopbackIssuer, SigningKey, public_jwk, rsa_key

ODD_ID = "0oa:odd%id+x y"
ODD_SECRET = "s:e%cr+et w/rd"


def assertion(
    key: ClientKey, audience: Any, *, headers: dict[str, Any] | None = None, **claims: Any
) -> str:
    """A client assertion (RFC 7523 §3) signed with the key read back from its PEM."""
    now = int(time.time())
    payload = {
        "iss": key.client_id,
        "sub": key.client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    private_key = serialization.load_pem_private_key(key.pem, password=None)
    assert isinstance(private_key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    return jwt.encode(
        {k: v for k, v in payload.items() if v is not None},
        private_key,
        algorithm=key.algorithm,
        headers={"kid": key.kid, **(headers or {})},
    )


def jwt_form(client_assertion: str, **form: str) -> dict[str, str]:
    return {"client_assertion_type": JWT_BEARER, "client_assertion": client_assertion, **form}


def introspect(
    issuer: LoopbackIssuer,
    form: dict[str, str] | str | None = None,
    *,
    authorization: str | None = None,
    url: str | None = None,
    **kwargs: Any,
) -> requests.Response:
    headers = {"Authorization": authorization} if authorization else {}
    return requests.post(
        url or issuer.introspection_endpoint,
        data=form,
        headers={**headers, **kwargs.pop("headers", {})},
        timeout=5,
        allow_redirects=False,
        **kwargs,
    )


def as_default_client(issuer: LoopbackIssuer, token: str) -> requests.Response:
    return introspect(
        issuer,
        {"token": token, "token_type_hint": "access_token"},
        authorization=basic(issuer.CLIENT_ID, issuer.CLIENT_SECRET),
    )


def refused(response: requests.Response, error: str = "invalid_client") -> bool:
    return (
        response.status_code == (401 if error == "invalid_client" else 400)
        and response.json()["error"] == error
    )


def test_metadata_names_the_endpoints(issuer: LoopbackIssuer) -> None:
    url = f"{issuer.issuer}/.well-known/oauth-authorization-server"
    metadata = requests.get(url, timeout=5).json()
    assert metadata["introspection_endpoint"] == f"{issuer.issuer}/v1/introspect"
    assert metadata["revocation_endpoint"] == f"{issuer.issuer}/v1/revoke"
    issuer.metadata_overrides = {"introspection_endpoint": "https://elsewhere/x"}
    assert requests.get(url, timeout=5).json()["introspection_endpoint"] == "https://elsewhere/x"


# -- client authentication ------------------------------------------------------------


def test_client_secret_basic_is_accepted_and_recorded(issuer: LoopbackIssuer) -> None:
    token = issuer.mint()
    response = as_default_client(issuer, token)
    assert response.status_code == 200 and response.json()["active"] is True
    assert response.headers["Cache-Control"] == "no-store"
    [call] = issuer.introspections
    assert (call.method, call.client_id, call.error) == (
        "client_secret_basic",
        issuer.CLIENT_ID,
        None,
    )
    assert (call.token, call.token_type_hint) == (token, "access_token")
    assert issuer.hits["/oauth2/default/v1/introspect"] == 1


def test_basic_credentials_must_be_form_urlencoded(issuer: LoopbackIssuer) -> None:
    issuer.add_client(ODD_ID, ODD_SECRET)
    token = issuer.mint()
    assert (
        introspect(issuer, {"token": token}, authorization=basic(ODD_ID, ODD_SECRET)).json()[
            "active"
        ]
        is True
    )
    # requests' own Basic auth sends the id and secret as they are.
    raw = introspect(issuer, {"token": token}, auth=(ODD_ID, ODD_SECRET))
    assert refused(raw) and raw.headers["WWW-Authenticate"].startswith("Basic")
    # A raw ":" would decode to itself, but a form-urlencoded secret has none.
    issuer.add_client("0oa-colon", "se:cret")
    assert refused(introspect(issuer, {"token": token}, auth=("0oa-colon", "se:cret")))


@pytest.mark.parametrize(
    "client_id, secret",
    [
        ("0oa-introspector", "wrong"),
        ("0oa-unknown", "s3cret-for-introspection"),
    ],
)
def test_basic_with_a_wrong_client_or_secret_is_refused(
    issuer: LoopbackIssuer, client_id: str, secret: str
) -> None:
    response = introspect(issuer, {"token": issuer.mint()}, authorization=basic(client_id, secret))
    assert refused(response) and response.headers["WWW-Authenticate"].startswith("Basic")
    assert issuer.introspections[0].error == "invalid_client"


def test_client_secret_post(issuer: LoopbackIssuer) -> None:
    form = {"token": issuer.mint(), "client_id": issuer.CLIENT_ID}
    ok = introspect(issuer, {**form, "client_secret": issuer.CLIENT_SECRET})
    assert ok.json()["active"] is True
    assert issuer.introspections[0].method == "client_secret_post"
    wrong = introspect(issuer, {**form, "client_secret": "wrong"})
    assert refused(wrong) and "WWW-Authenticate" not in wrong.headers


@pytest.mark.parametrize("kty", ["RSA", "EC"])
def test_private_key_jwt_is_accepted_and_recorded(issuer: LoopbackIssuer, kty: str) -> None:
    key = issuer.add_key_client(kty=kty)
    signed = assertion(key, issuer.introspection_endpoint)
    response = introspect(issuer, jwt_form(signed, token=issuer.mint()))
    assert response.json()["active"] is True
    [call] = issuer.introspections
    assert (call.method, call.client_id) == ("private_key_jwt", key.client_id)
    assert call.assertion_header is not None and call.assertion_claims is not None
    assert call.assertion_header["alg"] == key.algorithm
    assert call.assertion_claims["aud"] == issuer.introspection_endpoint


def test_a_client_key_may_be_registered_as_a_jwk(issuer: LoopbackIssuer) -> None:
    issuer.add_client("0oa-jwk-client", public_key=public_jwk(rsa_key(40), "jwk-1"))
    key = ClientKey("0oa-jwk-client", "jwk-1", rsa_key(40), "RS256")
    signed = assertion(key, issuer.introspection_endpoint)
    assert introspect(issuer, jwt_form(signed, token=issuer.mint())).status_code == 200
    other_kid = assertion(key, issuer.introspection_endpoint, headers={"kid": "jwk-2"})
    assert refused(introspect(issuer, jwt_form(other_kid, token=issuer.mint())))


def test_private_key_jwt_aud_may_be_a_list_holding_the_endpoint(issuer: LoopbackIssuer) -> None:
    key = issuer.add_key_client()
    signed = assertion(key, ["https://other.example", issuer.introspection_endpoint])
    assert introspect(issuer, jwt_form(signed, token=issuer.mint())).status_code == 200


BAD_ASSERTIONS = {
    "token endpoint as aud": lambda key, aud: assertion(key, aud.replace("introspect", "token")),
    "aud with a trailing slash": lambda key, aud: assertion(key, aud + "/"),
    "expired": lambda key, aud: assertion(key, aud, exp=int(time.time()) - 60),
    "no exp": lambda key, aud: assertion(key, aud, exp=None),
    "exp over an hour ahead": lambda key, aud: assertion(key, aud, exp=int(time.time()) + 7300),
    "iat in the future": lambda key, aud: assertion(key, aud, iat=int(time.time()) + 600),
    "no jti": lambda key, aud: assertion(key, aud, jti=None),
    "sub is not iss": lambda key, aud: assertion(key, aud, sub="0oa-someone-else"),
    "other kid": lambda key, aud: assertion(key, aud, headers={"kid": "client-key-2"}),
    "signed with another key": lambda key, aud: jwt.encode(
        jwt.decode(assertion(key, aud), options={"verify_signature": False}),
        rsa_key(41),
        algorithm="RS256",
        headers={"kid": key.kid},
    ),
    "alg none": lambda key, aud: jwt.encode(
        jwt.decode(assertion(key, aud), options={"verify_signature": False}),
        None,  # type: ignore[arg-type]  # alg none signs with no key; PyJWT's stubs want one
        algorithm="none",
        headers={"kid": key.kid},
    ),
    "alg HS256": lambda key, aud: jwt.encode(
        jwt.decode(assertion(key, aud), options={"verify_signature": False}),
        "a-shared-secret-long-enough-for-hs256",
        algorithm="HS256",
        headers={"kid": key.kid},
    ),
    "not a JWT": lambda key, aud: "not.a.jwt",
}


@pytest.mark.parametrize("case", BAD_ASSERTIONS)
def test_a_bad_client_assertion_is_refused(issuer: LoopbackIssuer, case: str) -> None:
    key = issuer.add_key_client()
    signed = BAD_ASSERTIONS[case](key, issuer.introspection_endpoint)
    response = introspect(issuer, jwt_form(signed, token=issuer.mint()))
    assert refused(response), issuer.introspections[0].reason


def test_a_client_assertion_is_used_once(issuer: LoopbackIssuer) -> None:
    key = issuer.add_key_client()
    form = jwt_form(assertion(key, issuer.introspection_endpoint), token=issuer.mint())
    assert introspect(issuer, form).status_code == 200
    assert refused(introspect(issuer, form))
    assert "already used" in (issuer.introspections[1].reason or "")


def test_private_key_jwt_needs_the_assertion_type(issuer: LoopbackIssuer) -> None:
    key = issuer.add_key_client()
    form = jwt_form(assertion(key, issuer.introspection_endpoint), token=issuer.mint())
    form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    assert refused(introspect(issuer, form), "invalid_request")


def test_more_than_one_method_is_refused(issuer: LoopbackIssuer) -> None:
    key = issuer.add_key_client()
    secret = {"client_id": issuer.CLIENT_ID, "client_secret": issuer.CLIENT_SECRET}
    token = {"token": issuer.mint()}
    authorization = basic(issuer.CLIENT_ID, issuer.CLIENT_SECRET)
    assert refused(
        introspect(issuer, {**token, **secret}, authorization=authorization), "invalid_request"
    )
    signed = assertion(key, issuer.introspection_endpoint)
    assert refused(
        introspect(issuer, jwt_form(signed, **token), authorization=authorization),
        "invalid_request",
    )


def test_a_client_id_in_the_form_must_be_the_authenticated_client(issuer: LoopbackIssuer) -> None:
    issuer.add_client("0oa-other", "other-secret")
    response = introspect(
        issuer,
        {"token": issuer.mint(), "client_id": "0oa-other"},
        authorization=basic(issuer.CLIENT_ID, issuer.CLIENT_SECRET),
    )
    assert refused(response)


def test_no_client_authentication_is_refused(issuer: LoopbackIssuer) -> None:
    assert refused(introspect(issuer, {"token": issuer.mint()}))
    assert refused(introspect(issuer, {"token": issuer.mint(), "client_id": issuer.CLIENT_ID}))
    assert refused(
        introspect(issuer, {"token": issuer.mint()}, authorization="Bearer " + issuer.mint())
    )


@pytest.mark.parametrize(
    "body, content_type",
    [
        ("token=x", "application/json"),
        ("token=x", "text/plain"),
        ("token=a&token=b", "application/x-www-form-urlencoded"),
        ("client_id=0oa-introspector", "application/x-www-form-urlencoded"),
    ],
)
def test_a_request_that_is_not_a_proper_form_is_refused(
    issuer: LoopbackIssuer, body: str, content_type: str
) -> None:
    response = introspect(
        issuer,
        body,
        headers={"Content-Type": content_type},
        authorization=basic(issuer.CLIENT_ID, issuer.CLIENT_SECRET),
    )
    assert refused(response, "invalid_request")


# -- answers ------------------------------------------------------------------------


def test_a_minted_token_is_active_with_what_okta_adds(issuer: LoopbackIssuer) -> None:
    token = issuer.mint(scp=["read", "write"], custom="kept")
    answer = as_default_client(issuer, token).json()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert answer == {
        "active": True,
        **{k: v for k, v in claims.items() if k not in ("scp", "cid")},
        "scope": "read write",
        "client_id": claims["cid"],
        "token_type": "Bearer",
        "username": claims["sub"],
    }


def test_a_token_bound_to_a_key_is_a_dpop_token(issuer: LoopbackIssuer) -> None:
    token = issuer.mint(cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    assert as_default_client(issuer, token).json()["token_type"] == "DPoP"


def test_a_client_token_has_no_username(issuer: LoopbackIssuer) -> None:
    answer = as_default_client(issuer, issuer.mint(uid=DROP, sub="0oa-test-client")).json()
    assert answer["active"] is True and "username" not in answer


@pytest.mark.parametrize(
    "make_token",
    [
        lambda issuer: issuer.mint(exp=int(time.time()) - 10),
        lambda issuer: issuer.mint(key=SigningKey("key-1", rsa_key(9))),
        lambda issuer: issuer.mint(key=SigningKey("key-9", rsa_key(9))),
        lambda issuer: "not-a-token-of-this-issuer",
        lambda issuer: issuer.opaque(exp=int(time.time()) - 10),
    ],
    ids=["expired", "signed-with-another-key", "unknown-kid", "unknown", "expired-opaque"],
)
def test_anything_else_is_inactive(issuer: LoopbackIssuer, make_token: Any) -> None:
    assert as_default_client(issuer, make_token(issuer)).json() == {"active": False}


def test_an_opaque_token_answers_its_claims(issuer: LoopbackIssuer) -> None:
    token = issuer.opaque(sub="bob@example.com", scp=["messages:read"])
    assert "." not in token
    answer = as_default_client(issuer, token).json()
    assert answer["active"] is True and answer["sub"] == "bob@example.com"
    assert (answer["scope"], answer["client_id"], answer["token_type"]) == (
        "messages:read",
        "0oa-test-client",
        "Bearer",
    )


def test_a_revoked_token_is_inactive(issuer: LoopbackIssuer) -> None:
    minted, opaque = issuer.mint(), issuer.opaque()
    issuer.revoke(minted)
    assert as_default_client(issuer, minted).json() == {"active": False}
    revoke = introspect(
        issuer,
        {"token": opaque},
        url=issuer.revocation_endpoint,
        authorization=basic(issuer.CLIENT_ID, issuer.CLIENT_SECRET),
    )
    assert (revoke.status_code, revoke.content) == (200, b"")
    assert issuer.revocations[0].client_id == issuer.CLIENT_ID
    assert as_default_client(issuer, opaque).json() == {"active": False}


def test_revocation_authenticates_the_client_for_its_own_endpoint(issuer: LoopbackIssuer) -> None:
    key, token = issuer.add_key_client(), issuer.mint()
    anonymous = introspect(issuer, {"token": token}, url=issuer.revocation_endpoint)
    meant_for_introspection = introspect(
        issuer,
        jwt_form(assertion(key, issuer.introspection_endpoint), token=token),
        url=issuer.revocation_endpoint,
    )
    assert refused(anonymous) and refused(meant_for_introspection)
    assert as_default_client(issuer, token).json()["active"] is True
    signed = assertion(key, issuer.revocation_endpoint)
    assert (
        introspect(
            issuer, jwt_form(signed, token=token), url=issuer.revocation_endpoint
        ).status_code
        == 200
    )
    assert as_default_client(issuer, token).json() == {"active": False}


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"active": "true"}, b'{"active": "true"}'),
        (lambda token, call: [call.client_id, token[:3]], b'["0oa-introspector", "eyJ"]'),
        (b"raw, as it is", b"raw, as it is"),
    ],
)
def test_the_answer_can_be_replaced(issuer: LoopbackIssuer, override: Any, expected: bytes) -> None:
    issuer.introspection_answer = override
    assert as_default_client(issuer, issuer.mint()).content == expected


# -- failure modes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, status",
    [
        ("error", 500),
        ("garbage", 200),
        ("redirect", 302),
        ("unauthorized", 401),
    ],
)
def test_introspection_fails_while_keys_still_load(
    issuer: LoopbackIssuer, mode: str, status: int
) -> None:
    issuer.introspection_mode = mode
    response = as_default_client(issuer, issuer.mint())
    assert response.status_code == status and "active" not in response.text
    assert requests.get(issuer.jwks_uri, timeout=5).json()["keys"]


def test_a_huge_answer_is_still_the_same_json(issuer: LoopbackIssuer) -> None:
    issuer.introspection_mode = "huge"
    response = as_default_client(issuer, issuer.mint())
    assert len(response.content) > 1 << 20 and response.json()["active"] is True


@pytest.mark.parametrize("setting", [("introspection_mode", "hang"), ("introspection_delay", 1.0)])
def test_introspection_can_hang(issuer: LoopbackIssuer, setting: tuple[str, Any]) -> None:
    setattr(issuer, *setting)
    with pytest.raises(requests.Timeout):
        requests.post(
            issuer.introspection_endpoint,
            data={"token": issuer.mint()},
            timeout=0.2,
            headers={"Authorization": basic(issuer.CLIENT_ID, issuer.CLIENT_SECRET)},
        )


def test_introspection_can_drip_headers(issuer: LoopbackIssuer) -> None:
    issuer.introspection_mode = "drip_headers"
    issuer.drip_interval = 0.01
    body = f"token={issuer.mint()}".encode()
    authorization = basic(issuer.CLIENT_ID, issuer.CLIENT_SECRET)
    host = urlsplit(issuer.base_url).netloc
    with socket.create_connection(("127.0.0.1", int(host.split(":")[1])), timeout=5) as sock:
        sock.sendall(
            b"POST /oauth2/default/v1/introspect HTTP/1.1\r\nHost: %s\r\n"
            b"Authorization: %s\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\nContent-Length: %d\r\n\r\n%s"
            % (host.encode(), authorization.encode(), len(body), body)
        )
        received = b""
        while b"X-Drip-2" not in received:
            chunk = sock.recv(1024)
            assert chunk, received
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK\r\nX-Drip-0: 1\r\n")
