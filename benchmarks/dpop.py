"""Microseconds per DPoP proof check, against one ES256 signature check alone.

``python -m benchmarks.dpop``. A DPoP request whose access token is already cached
costs the proof check alone, and every proof is new, so its signature check cannot
be cached. The target: a whole proof check (ES256 proof with ``ath`` and ``jkt``,
replay store on, fresh ``jti`` every time) costs at most 1.25x cryptography's bare
ES256 ``verify`` of the same signatures, measured in the same process.

Both are timed in short passes that alternate between the two (the proofs are
signed ahead of time, so signing is not measured). Each pass of proof checks is
divided by the bare-verify pass next to it, and the median of those ratios is
reported: on a busy machine, neighbouring passes are slowed alike.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from okta_pyramid.tokens._jwk import b64url_decode
from okta_pyramid.tokens.dpop import DPoPVerifier, make_proof

TARGET = 1.25
URL = "https://api.example.com/api/whoami"
#: Stands in for a cached access token: only its hash (``ath``) is computed per proof.
ACCESS_TOKEN = "eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0." + "x" * 700 + ".sig"


@dataclass
class DPoPResult:
    """Median microseconds per check, and the median ratio of neighbouring passes."""

    dpop_micros: float
    es256_micros: float
    ratio: float
    proofs: int
    rounds: int

    @property
    def met(self) -> bool:
        return self.ratio <= TARGET


def measure(proofs: int = 200, rounds: int = 41) -> DPoPResult:
    """Time :meth:`DPoPVerifier.verify` and a bare ES256 verify, interleaved."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    public_key = private_key.public_key()
    ecdsa = ec.ECDSA(hashes.SHA256())
    verifier_jkt = DPoPVerifier().verify(
        [make_proof(private_key, "GET", URL, access_token=ACCESS_TOKEN)], "GET", URL,
        access_token=ACCESS_TOKEN).jkt

    # Every round checks new proofs (a replay store remembers every jti), signed
    # ahead of time so that signing is not measured.
    batches = [[make_proof(private_key, "GET", URL, access_token=ACCESS_TOKEN)
                for _ in range(proofs)] for _ in range(rounds)]
    bare = []
    for proof in batches[0]:
        signing_input, _, signature = proof.rpartition(".")
        raw = b64url_decode(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                   int.from_bytes(raw[32:], "big"))
        bare.append((der, signing_input.encode("ascii")))

    verifier = DPoPVerifier()
    verifier.verify([make_proof(private_key, "GET", URL, access_token=ACCESS_TOKEN)],
                    "GET", URL, access_token=ACCESS_TOKEN, jkt=verifier_jkt)  # warm caches

    def run_dpop(batch: list[str]) -> float:
        verify = verifier.verify
        start = time.perf_counter()
        for proof in batch:
            verify((proof,), "GET", URL, access_token=ACCESS_TOKEN, jkt=verifier_jkt)
        return (time.perf_counter() - start) / len(batch) * 1e6

    def run_es256() -> float:
        verify = public_key.verify
        start = time.perf_counter()
        for der, data in bare:
            verify(der, data, ecdsa)
        return (time.perf_counter() - start) / len(bare) * 1e6

    dpop_times, es256_times = [], []
    gc.collect()
    for index, batch in enumerate(batches):
        # Alternate which goes first, so neither always follows the other.
        if index % 2:
            es256_times.append(run_es256())
            dpop_times.append(run_dpop(batch))
        else:
            dpop_times.append(run_dpop(batch))
            es256_times.append(run_es256())
    ratios = [d / e for d, e in zip(dpop_times, es256_times)]
    return DPoPResult(statistics.median(dpop_times), statistics.median(es256_times),
                      statistics.median(ratios), proofs, rounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dpop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proofs", type=int, default=200, help="proofs per pass (default 200)")
    parser.add_argument("--rounds", type=int, default=41,
                        help="interleaved passes (default 41)")
    args = parser.parse_args(argv)
    result = measure(args.proofs, args.rounds)
    print(f"DPoP proof check (ES256, ath, jkt, replay store): {result.dpop_micros:8.1f} µs")
    print(f"ES256 verify alone (cryptography):                {result.es256_micros:8.1f} µs")
    print(f"ratio: {result.ratio:.3f} (target <= {TARGET}: "
          f"{'met' if result.met else 'NOT met'}); median of {result.rounds} pairs of "
          f"passes of {result.proofs} proofs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
