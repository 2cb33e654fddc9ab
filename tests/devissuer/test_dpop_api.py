"""The whole DPoP round trip on one development app: a bound token from its token
endpoint, then the API's endpoints with proofs signed by the same key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from okta_pyramid.tokens import make_proof

from ..helpers import thumbprint
from .helpers import DPOP_CLIENTS, DevServer, bound_token


@pytest.mark.parametrize("path", ["/api/whoami", "/api/dpop"])
def test_a_token_bound_at_the_issuer_opens_the_api_with_proofs(serve, path: str) -> None:
    dev: DevServer = serve(**{"devissuer.clients": DPOP_CLIENTS})
    key = ec.generate_private_key(ec.SECP256R1())
    issued = bound_token(dev, key).json
    assert issued["token_type"] == "DPoP"
    token = issued["access_token"]

    proof = make_proof(key, "GET", dev.base_url + path, access_token=token)
    answer = dev.app.get(path, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert answer.status_int == 200
    if path == "/api/dpop":
        assert answer.json["jkt"] == thumbprint(key)
    # Sent as a bearer token, the bound token is refused (RFC 9449 §7.2).
    refused = dev.whoami(token, status=401)
    assert refused.json["error"] == "invalid_token"
