"""Small helpers shared by the tests: request headers, base64url and RFC 7638 written
out by hand, a DPoP client, a settable clock, and waiting for something to happen.

Test modules import what they share from here (or from :mod:`tests.services`, the
programs they start), never from one another.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote_plus

import webtest
from cryptography.hazmat.primitives.asymmetric import ec
from pyramid.config import Configurator

from okta_pyramid.tokens import make_proof

from .issuer import LoopbackIssuer

# RFC 9449 §7.1: with okta.dpop = allowed (the default), a request without credentials
# is challenged with both schemes; DPoP's names the accepted proof algorithms.
#: Where the protected-resource metadata of the app WebTest calls is (RFC 9728 §3.1).
LOCAL_METADATA = "http://localhost/.well-known/oauth-protected-resource"


def both_challenges(metadata: str = LOCAL_METADATA, scope: str | None = None) -> str:
    """The challenges of a request without credentials, in the default DPoP mode."""
    extra = (f', scope="{scope}"' if scope else "") + f', resource_metadata="{metadata}"'
    return (
        f'Bearer realm="api"{extra}, DPoP realm="api", '
        f'algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"{extra}'
    )


#: :func:`both_challenges` of an app WebTest calls, at a view no scope grants.
BOTH_CHALLENGES = both_challenges()

#: The URL WebTest requests /api/whoami at: what a DPoP proof for it names (htu).
WHOAMI_URL = "http://localhost/api/whoami"


def webtest_app(config: Configurator) -> webtest.TestApp:
    """The application configured so far, in WebTest."""
    return webtest.TestApp(config.make_wsgi_app(), extra_environ={"REMOTE_ADDR": "192.0.2.7"})


def run_together(
    target: Callable[..., Any], args: Iterable[tuple[Any, ...]], timeout: float = 30
) -> None:
    """Call ``target`` with each tuple of ``args`` in its own thread, all started
    before any is joined, and wait for every one of them."""
    threads = [threading.Thread(target=target, args=each) for each in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Whether ``condition()`` holds within ``timeout`` seconds (asked every 10 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# -- headers ---------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    """The request headers that present ``token`` as a bearer token (RFC 6750)."""
    return {"Authorization": f"Bearer {token}"}


def basic(client_id: str, secret: str) -> str:
    """The Authorization value of client authentication (RFC 6749 §2.3.1): each part
    form-urlencoded first."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


# -- JOSE, written out here rather than taken from the code under test ------------------


def b64url(data: bytes | Mapping[str, Any]) -> str:
    """base64url without padding (RFC 7515 §2) of ``data``, or of its JSON if it is a
    mapping (a JWT header or claims set)."""
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def thumbprint(key: ec.EllipticCurvePrivateKey) -> str:
    """RFC 7638 SHA-256 thumbprint of a P-256 key: SHA-256 over the required members,
    sorted, compact; computed here from the key's numbers, not by the code under test."""
    numbers = key.public_key().public_numbers()
    canonical = json.dumps(
        {
            "crv": "P-256",
            "kty": "EC",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    return b64url(hashlib.sha256(canonical.encode()).digest())


class DPoPClient:
    """A DPoP client: a key, a token bound to it, and proofs on demand."""

    def __init__(self, issuer: LoopbackIssuer, **claims: Any) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.jkt = thumbprint(self.key)
        self.token = issuer.mint(cnf={"jkt": self.jkt}, **claims)

    def headers(
        self, url: str = WHOAMI_URL, method: str = "GET", *, token: str | None = None, **proof: Any
    ) -> dict[str, str]:
        token = token or self.token
        return {
            "Authorization": f"DPoP {token}",
            "DPoP": make_proof(self.key, method, url, access_token=token, **proof),
        }


def metric_value(found: Mapping[tuple[str, tuple], float], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` that carry ``labels`` (and maybe others), in
    ``found``: samples by (name, sorted label pairs), as read from ``/metrics``."""
    return sum(
        sample
        for (sample_name, sample_labels), sample in found.items()
        if sample_name == name and labels.items() <= dict(sample_labels).items()
    )


# -- stand-ins ---------------------------------------------------------------------------


class Clock:
    """A clock the test sets: ``clock.now = ...``; pass it where a ``clock`` is taken."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recording(dict):
    """A settings mapping that remembers which keys were read."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)
