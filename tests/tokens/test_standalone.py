"""okta_pyramid.tokens is usable without Pyramid: nothing in it imports the web framework."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter in which the web stack cannot be imported at all.
SCRIPT = textwrap.dedent("""
    import importlib.abc
    import sys

    BLOCKED = ("pyramid", "pyramid_jwt", "webob", "zope", "webtest", "waitress")

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not available here")
            return None

    sys.meta_path.insert(0, Blocker())

    from okta_pyramid.tokens import AccessTokenVerifier, InvalidToken
    from tests.issuer import LoopbackIssuer

    issuer = LoopbackIssuer()
    try:
        verifier = AccessTokenVerifier(issuer.issuer, issuer.audience, http_timeout=2)
        assert verifier.verify(issuer.mint())["sub"] == "alice@example.com"
        try:
            verifier.verify(issuer.mint(aud="api://another"))
        except InvalidToken as exc:
            assert exc.reason == "wrong_audience", exc.reason
        else:
            raise AssertionError("a token for another audience was accepted")

        # The request-level check: method, URL and headers in; the verdict out.
        from cryptography.hazmat.primitives.asymmetric import ec
        from okta_pyramid.tokens import DPoPVerifier, RequestVerifier, make_proof

        url = "https://api.example.com/orders"
        key = ec.generate_private_key(ec.SECP256R1())
        jkt = DPoPVerifier().verify(make_proof(key, "GET", url), "GET", url).jkt
        token = issuer.mint(cnf={"jkt": jkt})
        check = RequestVerifier(verifier, DPoPVerifier())
        proof = make_proof(key, "GET", url, access_token=token)
        verified = check.verify("GET", url, {"authorization": "DPoP " + token, "dpop": proof})
        assert verified.scheme == "DPoP" and verified.proof.jkt == jkt
        assert verified.token.claims()["cnf"] == {"jkt": jkt}

        # Token introspection (RFC 7662) of a token that is not a JWT.
        from okta_pyramid.tokens import ClientSecretBasic, IssuerClient, TokenIntrospector

        introspector = TokenIntrospector(
            IssuerClient(issuer.issuer, http_timeout=2),
            ClientSecretBasic(issuer.CLIENT_ID, issuer.CLIENT_SECRET), rules=verifier)
        assert introspector.introspect(issuer.opaque()).claims()["sub"] == "alice@example.com"
    finally:
        issuer.close()
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("verified without Pyramid")
""")


def test_the_verifier_works_without_pyramid() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "verified without Pyramid"
