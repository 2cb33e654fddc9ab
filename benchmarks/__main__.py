"""Run the benchmarks: ``python -m benchmarks`` (or ``make bench``).

1. in process: microseconds per validation for okta_pyramid and its peers
   (PyJWT with a preloaded key, PyJWT + PyJWKClient, okta-jwt-verifier), as ratios
   to an RS256 signature check alone; and a DPoP request with a cached access token
   (the token's cache hit and the proof check) against one ES256 signature check
   alone (:mod:`benchmarks.dpop`); a view that needs a live token, with the
   introspection answer cached and without a cache (:mod:`benchmarks.introspection`);
   and a cached token with one issuer configured and with three
   (:mod:`benchmarks.issuers`);
2. the application alone (its WSGI callable, no server), then end to end under
   waitress: /api/whoami with a reused token and with distinct tokens, against
   /api/hello.

All of it against one https issuer on 127.0.0.1, in one run. ``--smoke`` runs
everything with tiny counts, to check that the benchmark works, not to measure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

from .loadgen import wrk_available


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny counts: check that the benchmark runs (used by the tests)",
    )
    parser.add_argument(
        "--only",
        choices=(
            "inprocess",
            "dpop",
            "introspection",
            "issuers",
            "wsgi",
            "e2e",
            "floors",
            "deploy",
        ),
        help="run one of the parts (dpop, introspection, issuers: only that part of inprocess; "
        "floors: only with --only, see benchmarks/floors.py)",
    )
    parser.add_argument(
        "--tokens", type=int, default=1000, help="distinct tokens in process (default 1000)"
    )
    parser.add_argument(
        "--rounds", type=int, default=9, help="interleaved in-process rounds (default 9)"
    )
    parser.add_argument(
        "--dpop-proofs", type=int, default=200, help="DPoP proofs per pass (default 200)"
    )
    parser.add_argument(
        "--dpop-rounds", type=int, default=41, help="interleaved DPoP rounds (default 41)"
    )
    parser.add_argument(
        "--issuer-calls",
        type=int,
        default=2000,
        help="calls per pass, one issuer against three (default 2000)",
    )
    parser.add_argument(
        "--issuer-rounds",
        type=int,
        default=21,
        help="interleaved rounds, one issuer against three (default 21)",
    )
    parser.add_argument(
        "--introspection-requests",
        type=int,
        default=2000,
        help="requests per live-token pass (default 2000)",
    )
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="end-to-end load generator (default: wrk if installed)",
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per end-to-end measurement (default 5)"
    )
    parser.add_argument(
        "--e2e-rounds", type=int, default=5, help="interleaved end-to-end rounds (default 5)"
    )
    parser.add_argument(
        "--connections", type=int, default=8, help="concurrent connections (default 8)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=4,
        help="waitress worker threads (default 4, waitress's own default)",
    )
    parser.add_argument(
        "--cache-size",
        type=int,
        default=1000,
        help="server's okta.token_cache_size; the distinct-token workload "
        "cycles through 1.5x as many tokens (default 1000)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.tokens, args.rounds, args.duration, args.e2e_rounds = 20, 1, 0.5, 1
        args.cache_size, args.connections = 8, 2
        args.dpop_proofs, args.dpop_rounds = 10, 3
        args.issuer_calls, args.issuer_rounds = 20, 2
        args.introspection_requests = 20
    if args.loadgen == "auto":
        args.loadgen = "wrk" if wrk_available() else "python"
    return args


def dpop_client(issuer: Any) -> Any:
    """A DPoP-bound token from ``issuer`` and the EC key that signs its proofs."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from okta_pyramid.tokens.dpop import DPoPVerifier, make_proof

    from .e2e import DPoPClient

    key = ec.generate_private_key(ec.SECP256R1())
    url = "https://api.example.com/"
    jkt = DPoPVerifier().verify([make_proof(key, "GET", url)], "GET", url).jkt
    return DPoPClient(issuer.mint(cnf={"jkt": jkt}), key)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    # Imported here so that --help works without the test dependencies.
    import requests

    from tests.issuer import LoopbackIssuer

    from . import deploy, dpop, e2e, floors, inprocess, introspection, issuers, peer, wsgi
    from .tls import make_loopback_tls

    def progress(message: str) -> None:
        print(f"  .. {message}", file=sys.stderr, flush=True)

    tls = make_loopback_tls()
    # okta-jwt-verifier and the server process fetch keys with requests, which
    # trusts this bundle; the others are handed the authority explicitly.
    env = {"REQUESTS_CA_BUNDLE": str(tls.ca_file)}
    os.environ.update(env)
    issuer = LoopbackIssuer(ssl_context=tls.server_context())
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    targets: list[tuple[str, float, str, bool]] = []
    try:
        # The DPoP part mints its own (bound) token.
        needed = (
            1
            if args.only in ("dpop", "introspection", "issuers", "deploy")
            else max(args.tokens, (args.cache_size * 3) // 2 + 1)
        )
        progress(f"minting {needed} tokens at {issuer.issuer}")
        tokens = [issuer.mint() for _ in range(needed)]
        print(
            f"# okta_pyramid benchmarks ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"Python {report['python']}, {report['machine']})\n"
        )
        if args.only in (None, "inprocess"):
            result = inprocess.run(
                issuer, tls, tokens[: args.tokens], rounds=args.rounds, progress=progress
            )
            print(
                f"## In process: µs per validation (median of {result.rounds} interleaved rounds)\n"
            )
            print(inprocess.table(result) + "\n")
            targets += result.targets()
            report["inprocess"] = {
                "micros": result.micros,
                "skipped": result.skipped,
                "tokens": result.tokens,
                "rounds": result.rounds,
            }
        if args.only in (None, "inprocess", "dpop"):
            session = requests.Session()
            session.verify = str(tls.ca_file)
            result_dpop = dpop.measure(
                args.dpop_proofs,
                args.dpop_rounds,
                issuer=issuer,
                session=session,
                progress=progress,
            )
            print(
                f"## In process: a DPoP request with a cached access token, against one "
                f"ES256 signature check (median of {result_dpop.rounds} interleaved rounds "
                f"of {result_dpop.proofs} proofs)\n"
            )
            print(dpop.table(result_dpop) + "\n")
            targets += result_dpop.targets()
            report["dpop"] = {
                "micros": {
                    dpop.ES256: result_dpop.es256_micros,
                    dpop.PROOF: result_dpop.dpop_micros,
                    dpop.REQUEST: result_dpop.request_micros,
                },
                "proof_ratio": result_dpop.ratio,
                "request_ratio": result_dpop.request_ratio,
                "request_ratio_spread": list(result_dpop.request_spread),
                "proofs": result_dpop.proofs,
                "rounds": result_dpop.rounds,
            }
        if args.only in (None, "inprocess", "introspection"):
            result_live = introspection.run(
                issuer,
                tokens[0],
                requests=args.introspection_requests,
                uncached_requests=max(10, args.introspection_requests // 10),
                rounds=args.rounds,
                progress=progress,
            )
            print(
                f"## In process: a view that needs a live token (token introspection), "
                f"one token, median of {result_live.rounds} interleaved rounds of "
                f"{result_live.requests} requests\n"
            )
            print(introspection.table(result_live) + "\n")
            targets += result_live.targets()
            report["introspection"] = {
                "micros": result_live.micros,
                "ratios": result_live.ratios,
                "rounds": result_live.rounds,
            }
        if args.only in (None, "inprocess", "issuers"):
            servers = issuers.start_issuers(tls, issuer)
            session = requests.Session()
            session.verify = str(tls.ca_file)
            try:
                result_issuers = issuers.measure(
                    servers,
                    session,
                    calls=args.issuer_calls,
                    rounds=args.issuer_rounds,
                    progress=progress,
                )
            finally:
                for server in servers[1:]:
                    server.close()
            print(
                f"## In process: a cached token with one issuer configured and with "
                f"three (median of {result_issuers.rounds} interleaved rounds of "
                f"{result_issuers.calls} calls)\n"
            )
            print(issuers.table(result_issuers) + "\n")
            targets += result_issuers.targets()
            report["issuers"] = {
                "micros": result_issuers.micros,
                "ratios": result_issuers.ratios,
                "calls": result_issuers.calls,
                "rounds": result_issuers.rounds,
            }
        distinct = tokens[: (args.cache_size * 3) // 2 + 1]
        spin_us = 0.0
        if args.only in (None, "wsgi"):
            result_wsgi = wsgi.run(
                issuer.issuer,
                tokens[0],
                distinct,
                cache_size=args.cache_size,
                rounds=max(1, args.rounds // 2),
                progress=progress,
            )
            print(
                f"## The application alone: µs per request through its WSGI callable "
                f"(okta.token_cache_size = {args.cache_size}, median of "
                f"{result_wsgi.rounds} rounds)\n"
            )
            print(wsgi.table(result_wsgi) + "\n")
            report["wsgi"] = {"micros": result_wsgi.micros}
            # Calibrate the end-to-end run with as much busy work as okta_pyramid
            # adds to a request with a reused token.
            spin_us = max(
                0.0, result_wsgi.micros[e2e.WHOAMI_REUSED] - result_wsgi.micros[e2e.HELLO]
            )
        if args.only in (None, "e2e"):
            result_e2e = e2e.run(
                issuer.issuer,
                tokens[0],
                distinct,
                cache_size=args.cache_size,
                loadgen=args.loadgen,
                connections=args.connections,
                duration=args.duration,
                rounds=args.e2e_rounds,
                threads=args.threads,
                env=env,
                spin_us=spin_us,
                dpop=dpop_client(issuer),
                peer_public_key=peer.public_key_pem(issuer),
                wrong_audience=issuer.mint(aud="api://another-api"),
                progress=progress,
            )
            print(
                f"## End to end: waitress ({result_e2e.threads} threads, "
                f"okta.token_cache_size = {result_e2e.cache_size}), {result_e2e.loadgen}, "
                f"{result_e2e.connections} connections, {result_e2e.duration:g} s per run, "
                f"median of {result_e2e.rounds} interleaved rounds; the distinct workload "
                f"cycles {result_e2e.distinct_tokens} tokens\n"
            )
            print(e2e.table(result_e2e) + "\n")
            print(
                f"/api/whoami with DPoP (a new proof each request) serves "
                f"{result_e2e.ratio(e2e.WHOAMI_DPOP, e2e.WHOAMI_REUSED):.2f} of the "
                f"requests/s of /api/whoami with a reused Bearer token.\n"
            )
            print(
                "The same workloads on the peer, an application on pyramid_jwt's own "
                "JWTAuthenticationPolicy (PyJWT, the issuer's public key given at start-up, "
                "ACL authorization), under the same waitress settings, its runs taking "
                "turns with ours:\n"
            )
            print(e2e.peer_table(result_e2e) + "\n")
            targets += result_e2e.targets()
            report["e2e"] = {
                "loadgen": result_e2e.loadgen,
                "spin_us": result_e2e.spin_us,
                "workloads": {
                    name: {
                        "rps": result_e2e.rps(name),
                        "ratio_to_hello": result_e2e.ratio(name),
                        "latency_ms": {
                            str(p): result_e2e.latency(name, p) for p in e2e.PERCENTILES
                        },
                        "server_cpu_us_per_request": result_e2e.cpu_per_request(name),
                    }
                    for name in result_e2e.runs
                },
                "peer": {
                    name: {
                        "rps": result_e2e.peer_rps(name),
                        "ours_over_peer": result_e2e.over_peer(name),
                        "server_cpu_us_per_request": result_e2e.peer_cpu_per_request(name),
                    }
                    for name in result_e2e.peer_runs
                },
            }
        if args.only == "floors":
            result_floors = floors.run(
                issuer.issuer,
                tokens[0],
                distinct,
                dpop_client(issuer),
                cache_size=args.cache_size,
                loadgen=args.loadgen,
                connections=args.connections,
                duration=args.duration,
                rounds=max(args.e2e_rounds, 5) if not args.smoke else 1,
                threads=args.threads,
                env=env,
                progress=progress,
            )
            print(
                f"## Floors: the application and what /api/whoami would cost with no check, "
                f"or only a signature check more (waitress, {args.threads} threads, "
                f"{args.loadgen}, {args.connections} connections, {args.duration:g} s per run, "
                f"median of {result_floors.rounds} interleaved rounds)\n"
            )
            print(floors.table(result_floors) + "\n")
            report["floors"] = {
                name: {
                    "rps": result_floors.rps(name),
                    "server_cpu_us_per_request": result_floors.cpu(name),
                    "ratio": result_floors.ratio(name) if name in floors.BASELINES else None,
                }
                for name in result_floors.runs
            }
        if args.only in (None, "deploy"):
            result_deploy = deploy.run(
                issuer,
                tls,
                tokens[0],
                loadgen=args.loadgen,
                connections=args.connections,
                duration=args.duration,
                proofs=args.dpop_proofs,
                rounds=max(3, args.dpop_rounds // 4),
                threads=args.threads,
                env=env,
                progress=progress,
            )
            print(
                f"## Behind nginx: /api/whoami over https with one reused token, "
                f"{result_deploy.loadgen}, {result_deploy.connections} connections, "
                f"{result_deploy.duration:g} s per run; and the Redis round trip and a "
                f"replica's acknowledgement per "
                f"DPoP request (median of interleaved passes)\n"
            )
            print(deploy.table(result_deploy) + "\n")
            if result_deploy.skipped is None:
                report["deploy"] = {
                    "rps": result_deploy.rps,
                    "micros": result_deploy.micros,
                    "redis_micros": result_deploy.redis_micros,
                    "replica_wait_micros": result_deploy.wait_micros,
                    "replica_wait_ratio": result_deploy.wait_ratio,
                }
    finally:
        issuer.close()
    print("## Targets\n")
    print("| goal | measured | target | |\n| --- | ---: | ---: | --- |")
    for description, value, target, met in targets:
        print(f"| {description} | {value:.2f} | {target} | {'met' if met else 'MISSED'} |")
    report["targets"] = [
        {"goal": d, "measured": v, "target": t, "met": m} for d, v, t, m in targets
    ]
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
