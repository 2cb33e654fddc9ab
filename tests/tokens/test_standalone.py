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
    finally:
        issuer.close()
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("verified without Pyramid")
""")


def test_the_verifier_works_without_pyramid() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "verified without Pyramid"
