"""Serve the okta_pyramid application with waitress for the end-to-end benchmark.

``python -m benchmarks.server --issuer URL [--token-cache-size N] [--threads N]``
prints ``LISTENING <port>`` once it accepts connections on 127.0.0.1, then
serves until it is terminated. It is the real application (``okta_pyramid.app.main``)
under the real waitress server, in its own process.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import waitress

from okta_pyramid.app import main as make_app

#: Calibration path: /api/hello after this many microseconds of pure-Python work.
SPIN_PATH = "/bench/spin"


def spin_then_hello(app: Callable[..., Iterable[bytes]], micros: float) -> Callable[..., Any]:
    """Serve ``SPIN_PATH`` as /api/hello plus ``micros`` of busy work holding the GIL.

    It shows what the server makes of a fixed amount of extra work per request,
    whoever does it, to compare with what okta_pyramid adds to /api/whoami.
    """

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == SPIN_PATH:
            end = time.perf_counter() + micros / 1e6
            while time.perf_counter() < end:
                pass
            environ["PATH_INFO"] = "/api/hello"
        return app(environ, start_response)

    return wrapped


def serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience", default="api://default")
    parser.add_argument("--token-cache-size", default="4096")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--shared-store", default="", help="okta.shared_store (Redis URL)")
    parser.add_argument(
        "--spin-us", type=float, default=0.0, help=f"busy work added to {SPIN_PATH} (calibration)"
    )
    parser.add_argument(
        "--app",
        choices=("okta_pyramid", "peer"),
        default="okta_pyramid",
        help="the application: okta_pyramid's, or the peer on pyramid_jwt (benchmarks.peer)",
    )
    parser.add_argument("--public-key-file", help="the issuer's public key (PEM), for the peer")
    parser.add_argument(
        "--floor",
        choices=("none", "rs256", "es256"),
        help="serve a floor of benchmarks.floors, never a real application",
    )
    args = parser.parse_args(argv)
    # waitress warns "Task queue depth is N" whenever more requests are in flight
    # than it has threads, which a load generator does on purpose; writing that line
    # thousands of times a second would be measured instead of the application.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if args.app == "peer":
        from .peer import make_app as make_peer_app

        with open(args.public_key_file) as pem:
            app = make_peer_app(pem.read(), args.audience)
    else:
        app = make_app(
            {},
            **{
                "okta.issuer": args.issuer,
                "okta.audience": args.audience,
                "okta.token_cache_size": args.token_cache_size,
                "okta.shared_store": args.shared_store,
                # One benchmark client signs every DPoP proof with one key, tens of
                # thousands in a run: more than one key's default share of the replay
                # store (okta.dpop_replay_key_quota), which would answer 429.
                "okta.dpop_replay_key_quota": "200000",
            },
        )
        if args.floor is not None:
            from .floors import bench_token, install

            install(app, args.floor, bench_token())
    if args.spin_us > 0:
        app = spin_then_hello(app, args.spin_us)
    server = waitress.create_server(
        app, host="127.0.0.1", port=0, threads=args.threads, ident="okta_pyramid"
    )
    print(f"LISTENING {server.effective_port}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    sys.exit(0)


if __name__ == "__main__":
    serve()
