"""Microseconds per validation: okta_pyramid's verifier and its peers, side by side.

Every verifier checks the same tokens from the same https loopback issuer in
the same process. Each is first shown to accept a good token and refuse one
for another audience, so all of them do the same job. Passes are interleaved
across verifiers and repeated; the median pass is reported, with the ratio to
an RS256 signature check alone (cryptography's ``public_key.verify``), the
floor for anything that really verifies a token.
"""

from __future__ import annotations

import gc
import logging
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from jwt.utils import base64url_decode

from okta_pyramid.tokens.verifier import AccessTokenVerifier
from tests.issuer import LoopbackIssuer

from .tls import LoopbackTLS

log = logging.getLogger(__name__)

RSA = "RSA verify alone"
OKTA_PYRAMID = "okta_pyramid"
OKTA_PYRAMID_NO_CACHE = "okta_pyramid, cache off"
PYJWT = "PyJWT decode, key preloaded"
PYJWT_JWKS = "PyJWT + PyJWKClient"
OKTA_JWT_VERIFIER = "okta-jwt-verifier verify_sync"

REPEATED = "repeated"
DISTINCT = "distinct"


@dataclass
class Peer:
    name: str
    verify: Callable[[str], Any]
    #: run before each pass over the distinct tokens (the cache is emptied there,
    #: so every one of them is verified in full)
    before_distinct: Callable[[], None] | None = None


@dataclass
class InProcessResult:
    """Median microseconds per validation by verifier and token set."""

    micros: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    tokens: int = 0
    rounds: int = 0

    def ratio_to_rsa(self, name: str, kind: str) -> float:
        return self.micros[name][kind] / self.micros[RSA][kind]

    def targets(self) -> list[tuple[str, float, str, bool]]:
        """(description, measured, target, met) for the in-process goals."""
        out = []
        if OKTA_JWT_VERIFIER in self.micros:
            speedup = self.micros[OKTA_JWT_VERIFIER][REPEATED] / self.micros[OKTA_PYRAMID][REPEATED]
            out.append(
                (
                    "repeated token: okta_pyramid speed-up over okta-jwt-verifier verify_sync",
                    speedup,
                    ">= 15x",
                    speedup >= 15,
                )
            )
        ratio = self.micros[OKTA_PYRAMID][DISTINCT] / self.micros[PYJWT][DISTINCT]
        out.append(
            (
                "distinct tokens: okta_pyramid time / PyJWT decode with preloaded key",
                ratio,
                "<= 1.10",
                ratio <= 1.10,
            )
        )
        return out


def _peers(
    issuer: LoopbackIssuer, tls: LoopbackTLS, tokens: list[str], leeway: int
) -> tuple[list[Peer], dict[str, str]]:
    session = requests.Session()
    session.verify = str(tls.ca_file)
    audience, iss = issuer.audience, issuer.issuer
    ours = AccessTokenVerifier(
        iss, audience, leeway=leeway, session=session, token_cache_size=max(4096, 2 * len(tokens))
    )
    uncached = AccessTokenVerifier(
        iss, audience, leeway=leeway, session=session, token_cache_size=0
    )
    assert ours.token_cache is not None
    ours.keys.refresh()
    uncached.keys.refresh()

    public_key = issuer.keys[0].private_key.public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    split: dict[str, tuple[bytes, bytes]] = {}
    for token in tokens:
        signing_input, _, signature = token.rpartition(".")
        split[token] = (base64url_decode(signature.encode()), signing_input.encode())

    def rsa_only(token: str) -> None:
        signature, signing_input = split[token]
        public_key.verify(signature, signing_input, pkcs1, sha256)

    # PyJWT is given every option explicitly, as a careful resource server would.
    decode_options: jwt.types.Options = {"require": ["exp", "iat", "iss", "aud"]}

    def pyjwt_preloaded(token: str) -> dict[str, Any]:
        return jwt.decode(
            token,
            public_key,
            algorithms=["RS256"],
            audience=audience,
            issuer=iss,
            leeway=leeway,
            options=decode_options,
        )

    jwks_client = jwt.PyJWKClient(issuer.jwks_uri, ssl_context=tls.client_context())

    def pyjwt_jwks(token: str) -> dict[str, Any]:
        key = jwks_client.get_signing_key_from_jwt(token).key
        return jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=audience,
            issuer=iss,
            leeway=leeway,
            options=decode_options,
        )

    peers = [
        Peer(RSA, rsa_only),
        Peer(OKTA_PYRAMID, ours.verify, before_distinct=ours.token_cache.clear),
        Peer(OKTA_PYRAMID_NO_CACHE, uncached.verify),
        Peer(PYJWT, pyjwt_preloaded),
        Peer(PYJWT_JWKS, pyjwt_jwks),
    ]
    skipped = {}
    try:
        from okta_jwt_verifier import AccessTokenVerifier as OktaAccessTokenVerifier
    except ImportError:
        skipped[OKTA_JWT_VERIFIER] = "not installed (pip install -e '.[bench]')"
    else:
        # It fetches keys with requests, which trusts REQUESTS_CA_BUNDLE (set by the caller).
        okta = OktaAccessTokenVerifier(issuer=iss, audience=audience, leeway=leeway)
        peers.append(Peer(OKTA_JWT_VERIFIER, okta.verify_sync))
    return peers, skipped


def _check(peers: list[Peer], issuer: LoopbackIssuer, token: str) -> None:
    """Every verifier accepts a good token and refuses another audience's."""
    foreign = issuer.mint(aud="api://someone-else")
    for peer in peers:
        peer.verify(token)
        if peer.name == RSA:
            continue
        try:
            peer.verify(foreign)
        except Exception:  # noqa: BLE001, S112 - each peer refuses with its own exception type
            continue
        raise AssertionError(f"{peer.name} accepted a token for another audience")


def _time_pass(peer: Peer, tokens: list[str], kind: str) -> float:
    if kind == DISTINCT and peer.before_distinct is not None:
        peer.before_distinct()
    verify = peer.verify
    start = time.perf_counter_ns()
    for token in tokens:
        verify(token)
    return (time.perf_counter_ns() - start) / len(tokens) / 1000


def run(
    issuer: LoopbackIssuer,
    tls: LoopbackTLS,
    distinct: list[str],
    *,
    rounds: int = 7,
    leeway: int = 60,
    progress: Callable[[str], None] = lambda _: None,
) -> InProcessResult:
    """Time every verifier on one token repeated and on ``distinct`` tokens."""
    repeated = [distinct[0]] * len(distinct)
    peers, skipped = _peers(issuer, tls, distinct, leeway)
    _check(peers, issuer, distinct[0])
    samples: dict[str, dict[str, list[float]]] = {
        peer.name: {REPEATED: [], DISTINCT: []} for peer in peers
    }
    # Warm every code path and cache (key sets, PyJWKClient's LRU) before timing.
    for peer in peers:
        for kind, tokens in ((REPEATED, repeated[:50]), (DISTINCT, distinct[:50])):
            _time_pass(peer, tokens, kind)
    rng = random.Random(6)
    gc_was_enabled = gc.isenabled()
    try:
        for number in range(rounds):
            progress(f"in-process round {number + 1}/{rounds}")
            order = [
                (peer, kind, tokens)
                for peer in peers
                for kind, tokens in ((REPEATED, repeated), (DISTINCT, distinct))
            ]
            rng.shuffle(order)  # no verifier always runs first or last
            for peer, kind, tokens in order:
                gc.collect()
                gc.disable()  # as timeit does: a collection mid-pass is noise
                samples[peer.name][kind].append(_time_pass(peer, tokens, kind))
                gc.enable()
    finally:
        if gc_was_enabled:
            gc.enable()
    result = InProcessResult(skipped=skipped, tokens=len(distinct), rounds=rounds)
    for name, kinds in samples.items():
        result.micros[name] = {kind: statistics.median(values) for kind, values in kinds.items()}
    return result


def table(result: InProcessResult) -> str:
    """A Markdown table of the result."""
    lines = [
        f"| verifier | one token repeated: µs | × RSA | {result.tokens:,} distinct tokens: µs "
        "| × RSA |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, kinds in result.micros.items():
        lines.append(
            f"| {name} | {kinds[REPEATED]:.1f} | {result.ratio_to_rsa(name, REPEATED):.2f} "
            f"| {kinds[DISTINCT]:.1f} | {result.ratio_to_rsa(name, DISTINCT):.2f} |"
        )
    for name, why in result.skipped.items():
        lines.append(f"| {name} | skipped: {why} | | | |")
    return "\n".join(lines)
