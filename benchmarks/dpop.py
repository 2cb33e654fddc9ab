"""Microseconds per DPoP request check, against one ES256 signature check alone.

``python -m benchmarks.dpop``, and part of the in-process run of ``python -m benchmarks``.
A DPoP request whose access token is already cached costs the token's cache hit
and the proof check, and every proof is new, so its signature check cannot be
cached. The target: that whole request check costs at most 1.25x cryptography's
bare ES256 ``verify`` of the same signatures, measured in the same process.

Three things are timed, in passes that alternate between them (the proofs are
signed ahead of time, so signing is not measured):

- ``ES256 verify alone``: ``public_key.verify(der, signing_input, ECDSA(SHA256()))``,
  the signatures already in DER;
- ``proof check``: :meth:`DPoPVerifier.verify` of an ES256 proof with ``ath`` and
  ``jkt``, replay store on, a fresh ``jti`` every time;
- ``request``: what the security policy does for ``Authorization: DPoP``:
  :meth:`RequestVerifier.check` of the credentials, which is the access token's
  :meth:`AccessTokenVerifier.verify_token` (a cache hit, whose ``cnf.jkt`` and
  digest were read once) and then the proof check with that digest as ``ath``'s.

Each pass is divided by the ES256 pass of its round, and the median of those
ratios is reported: on a busy machine, neighbouring passes are slowed alike.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from okta_pyramid.tokens._jws import b64url_decode
from okta_pyramid.tokens.dpop import DPoPVerifier, make_proof
from okta_pyramid.tokens.schemes import DPOP, Credentials, RequestVerifier
from okta_pyramid.tokens.verifier import AccessTokenVerifier
from tests.issuer import LoopbackIssuer

TARGET = 1.25
URL = "https://api.example.com/api/whoami"

ES256 = "ES256 verify alone (cryptography)"
PROOF = "DPoP proof check (ES256, ath, jkt, replay store)"
REQUEST = "DPoP request: cached access token + proof check"


@dataclass
class DPoPResult:
    """Median microseconds per check, and the median ratios to the ES256 pass of
    the same round."""

    es256_micros: float
    dpop_micros: float
    request_micros: float
    #: proof check / ES256 verify
    ratio: float
    #: cached access token + proof check / ES256 verify: the target's measure
    request_ratio: float
    #: the lowest and highest request ratio of the rounds
    request_spread: tuple[float, float]
    proofs: int
    rounds: int

    @property
    def met(self) -> bool:
        return self.request_ratio <= TARGET

    def targets(self) -> list[tuple[str, float, str, bool]]:
        """(description, measured, target, met), as the main run reports its goals."""
        return [
            (
                "DPoP request with a cached access token: time / one ES256 verify",
                self.request_ratio,
                f"<= {TARGET}",
                self.met,
            )
        ]


def measure(
    proofs: int = 200,
    rounds: int = 41,
    *,
    issuer: LoopbackIssuer | None = None,
    session: requests.Session | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> DPoPResult:
    """Time the three, interleaved. Without ``issuer``, a plain-http loopback issuer
    is started for the access token and closed again."""
    own_issuer = issuer is None
    if issuer is None:
        issuer = LoopbackIssuer()
    try:
        return _measure(issuer, session, proofs, rounds, progress)
    finally:
        if own_issuer:
            issuer.close()


def _measure(
    issuer: LoopbackIssuer,
    session: requests.Session | None,
    proofs: int,
    rounds: int,
    progress: Callable[[str], None],
) -> DPoPResult:
    private_key = ec.generate_private_key(ec.SECP256R1())
    public_key = private_key.public_key()
    ecdsa = ec.ECDSA(hashes.SHA256())
    jkt = DPoPVerifier().verify([make_proof(private_key, "GET", URL)], "GET", URL).jkt
    token = issuer.mint(cnf={"jkt": jkt})
    tokens = AccessTokenVerifier(issuer.issuer, issuer.audience, session=session)
    tokens.verify_token(token)  # fetches the keys, and caches the token

    # Every round checks new proofs (a replay store remembers every jti), signed
    # ahead of time so that signing is not measured. The proof check and the
    # request path have a verifier (and replay store) each, so they share proofs.
    progress(f"signing {proofs * rounds} DPoP proofs")
    batches = [
        [make_proof(private_key, "GET", URL, access_token=token) for _ in range(proofs)]
        for _ in range(rounds)
    ]
    # The bare check verifies the very signatures of each round's proofs, over the
    # same signing inputs, already in DER: it touches as much new data as the proofs.
    bare: dict[int, list[tuple[bytes, bytes]]] = {}
    for batch in batches:
        pairs = bare[id(batch)] = []
        for proof in batch:
            signing_input, _, signature = proof.rpartition(".")
            raw = b64url_decode(signature)
            der = encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            pairs.append((der, signing_input.encode("ascii")))

    proof_verifier = DPoPVerifier()
    request_verifier = RequestVerifier(tokens, DPoPVerifier())
    credentials = Credentials(DPOP, token)
    # Warm the header and key caches.
    proof_verifier.verify(
        (make_proof(private_key, "GET", URL, access_token=token),),
        "GET",
        URL,
        access_token=token,
        jkt=jkt,
    )
    request_verifier.check(
        credentials, "GET", URL, (make_proof(private_key, "GET", URL, access_token=token),)
    )

    def run_es256(batch: list[str]) -> float:
        verify, pairs = public_key.verify, bare[id(batch)]
        start = time.perf_counter()
        for der, data in pairs:
            verify(der, data, ecdsa)
        return (time.perf_counter() - start) / len(pairs) * 1e6

    def run_proof(batch: list[str]) -> float:
        verify = proof_verifier.verify
        start = time.perf_counter()
        for proof in batch:
            verify((proof,), "GET", URL, access_token=token, jkt=jkt)
        return (time.perf_counter() - start) / len(batch) * 1e6

    def run_request(batch: list[str]) -> float:
        check = request_verifier.check
        start = time.perf_counter()
        for proof in batch:
            check(credentials, "GET", URL, (proof,))
        return (time.perf_counter() - start) / len(batch) * 1e6

    runs = ((ES256, run_es256), (PROOF, run_proof), (REQUEST, run_request))
    samples: dict[str, list[float]] = {name: [] for name, _ in runs}
    gc.collect()
    for index, batch in enumerate(batches):
        if index % 10 == 0:
            progress(f"DPoP round {index + 1}/{rounds}")
        # Rotate the order, so that none always follows another.
        for name, run in runs[index % 3 :] + runs[: index % 3]:
            samples[name].append(run(batch))
    es256 = samples[ES256]
    proof_ratios = [p / e for p, e in zip(samples[PROOF], es256, strict=True)]
    request_ratios = [r / e for r, e in zip(samples[REQUEST], es256, strict=True)]
    return DPoPResult(
        es256_micros=statistics.median(es256),
        dpop_micros=statistics.median(samples[PROOF]),
        request_micros=statistics.median(samples[REQUEST]),
        ratio=statistics.median(proof_ratios),
        request_ratio=statistics.median(request_ratios),
        request_spread=(min(request_ratios), max(request_ratios)),
        proofs=proofs,
        rounds=rounds,
    )


def table(result: DPoPResult) -> str:
    """A Markdown table of the result."""
    lo, hi = result.request_spread
    return "\n".join(
        [
            "| check | µs | × ES256 verify |",
            "| --- | ---: | ---: |",
            f"| {ES256} | {result.es256_micros:.1f} | 1.00 |",
            f"| {PROOF} | {result.dpop_micros:.1f} | {result.ratio:.3f} |",
            f"| {REQUEST} | {result.request_micros:.1f} | {result.request_ratio:.3f} "
            f"(rounds: {lo:.2f} to {hi:.2f}) |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dpop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--proofs", type=int, default=200, help="proofs per pass (default 200)")
    parser.add_argument("--rounds", type=int, default=41, help="interleaved rounds (default 41)")
    args = parser.parse_args(argv)
    result = measure(args.proofs, args.rounds)
    print(table(result))
    print(
        f"\nratio: {result.request_ratio:.3f} (target <= {TARGET}: "
        f"{'met' if result.met else 'NOT met'}); median of {result.rounds} rounds of "
        f"{result.proofs} proofs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
