"""``okta-pyramid-dpop``: a DPoP key and proofs (RFC 9449) for curl and other tools.

    okta-pyramid-dpop keygen key.pem
    okta-pyramid-dpop proof --key key.pem POST http://localhost:6543/oauth2/default/v1/token
    okta-pyramid-dpop proof --key key.pem GET http://localhost:6543/api/whoami --token "$TOKEN"
    okta-pyramid-dpop jwk --key key.pem [--thumbprint]

``keygen`` writes a new EC P-256 private key (PEM, mode 0600) and never prints it.
``proof`` prints one fresh proof (a new ``jti`` each time) for one request:
``DPoP: $(okta-pyramid-dpop proof ...)``; with ``--token`` it carries the token's
hash (``ath``), with ``--nonce`` the server's ``DPoP-Nonce``. ``jwk`` prints the
public key as a JWK, or with ``--thumbprint`` its RFC 7638 thumbprint: the
``cnf.jkt`` of tokens bound to it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence

from ..tokens._jwk import public_jwk
from ..tokens.dpop import make_proof
from ..tokens.urls import normalize_url
from .dpop import KeyFileError, generate_key_file, key_thumbprint, load_key_file

__all__ = ["main"]

PROG = "okta-pyramid-dpop"
# RFC 9110 §5.6.2: a method is a token.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Make a DPoP key and print DPoP proofs (RFC 9449) for curl."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    keygen = commands.add_parser(
        "keygen",
        help="write a new EC P-256 private key to FILE (mode 0600)",
        description="Write a new EC P-256 private key (PEM) to FILE, readable by its "
        "owner only. An existing file is never overwritten.",
    )
    keygen.add_argument("file", metavar="FILE")

    proof = commands.add_parser(
        "proof",
        help="print a DPoP proof for one request",
        description="Print a new DPoP proof for a request of METHOD to URL.",
    )
    proof.add_argument(
        "--key", required=True, metavar="FILE", help="the private key (PEM) that signs the proof"
    )
    proof.add_argument("method", metavar="METHOD", help="the request's method, e.g. GET")
    proof.add_argument(
        "url", metavar="URL", help="the request's URL as the client calls it (query ignored)"
    )
    proof.add_argument(
        "--token",
        metavar="TOKEN",
        help="the access token sent with the request (adds its hash, ath)",
    )
    proof.add_argument("--nonce", metavar="NONCE", help="the server's last DPoP-Nonce header value")

    jwk = commands.add_parser(
        "jwk",
        help="print the public key (JWK) or its thumbprint",
        description="Print the key's public half as a JWK (RFC 7517), or its RFC 7638 "
        "thumbprint: the cnf.jkt of tokens bound to it.",
    )
    jwk.add_argument("--key", required=True, metavar="FILE", help="the private key (PEM)")
    jwk.add_argument("--thumbprint", action="store_true", help="print only the thumbprint (jkt)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            key = generate_key_file(args.file)
            # The key itself is never printed: only where it went and whose it is.
            print(
                f"wrote a new EC P-256 key to {args.file} (mode 0600); "
                f"its thumbprint (jkt): {key_thumbprint(key)}",
                file=sys.stderr,
            )
            return 0
        key = load_key_file(args.key)
    except KeyFileError as exc:
        parser.error(str(exc))

    if args.command == "jwk":
        print(
            key_thumbprint(key)
            if args.thumbprint
            else json.dumps(public_jwk(key), separators=(",", ":"))
        )
        return 0

    if not _METHOD.fullmatch(args.method):
        parser.error(f"METHOD: {args.method[:40]!r} is not an HTTP method")
    try:
        normalize_url(args.url)
    except ValueError as exc:
        parser.error(f"URL: {args.url[:200]!r} cannot be a proof's htu: {exc}")
    for name in ("token", "nonce"):
        value = getattr(args, name)
        if value is not None and (
            not value or not value.isascii() or not value.isprintable() or " " in value
        ):
            # Not echoed: a token is a credential.
            parser.error(f"--{name}: must be the {name} as the server sent it, without spaces")
    print(make_proof(key, args.method, args.url, access_token=args.token, nonce=args.nonce))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
