"""``okta-pyramid-token``: mint a user's access token, or rotate the signing keys,
with the development issuer's keys, without a browser.

    okta-pyramid-token --sub alice@example.com --group admins --scope api.read
    okta-pyramid-token --sub alice@example.com --dpop-key key.pem
    okta-pyramid-token --sub alice@example.com --acr urn:okta:loa:2fa:any --auth-age 30
    okta-pyramid-token --sub bob@partner.example --issuer partners
    okta-pyramid-token --rotate

With several ``okta.issuer`` lines served (docs/issuers.md), ``--issuer`` chooses the
authorization server by its issuer URL or the last part of its path (``partners``
for ``.../oauth2/partners``); the default is the first. ``--rotate`` rotates that
server's keys.

With ``--dpop-key`` the token is bound to that key (``cnf.jkt``, RFC 9449 §6.1), as
if the user's client had sent a DPoP proof signed with it; ``okta-pyramid-dpop``
makes such a key and the proofs that go with each request.

``--acr``, ``--amr`` and ``--auth-age`` say how and when the user signed in: the
``acr``, ``amr`` and ``auth_time`` claims (OIDC Core §2) that a step-up check reads
(RFC 9470). ``auth_time`` is now minus ``--auth-age`` seconds.

The token goes to standard output alone, so ``TOKEN=$(okta-pyramid-token ...)``
works. The configuration file (default ``development.ini``) must include
``okta_pyramid.devissuer``; its keys folder is the one the running app serves, so
the app accepts the token through its normal discovery and JWKS path.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pyramid.exceptions import ConfigurationError
from pyramid.paster import get_appsettings
from pyramid.scripts.common import parse_vars
from pyramid.settings import aslist

from ..app.environ import expand_settings
from . import token_factory
from .config import (
    MAX_TOKEN_LIFETIME,
    MIN_TOKEN_LIFETIME,
    DevIssuerSettings,
    is_scope_token,
    parse_devissuer_servers,
)
from .dpop import KeyFileError, key_thumbprint, load_key_file
from .signin import ACR_VALUES, TWO_FACTOR_ACR_VALUES

log = logging.getLogger(__name__)

PROG = "okta-pyramid-token"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Mint an access token for a user from the development issuer's "
        "keys, or rotate those keys.",
    )
    parser.add_argument(
        "config_uri",
        nargs="?",
        default="development.ini",
        help="the app's configuration file (default: development.ini)",
    )
    parser.add_argument(
        "config_vars",
        nargs="*",
        metavar="name=value",
        help="variables for the configuration file, as with pserve",
    )
    parser.add_argument("--sub", help="the user's login, e.g. alice@example.com")
    parser.add_argument("--uid", help="the user's Okta id (default: derived from --sub)")
    parser.add_argument(
        "--group",
        action="append",
        dest="groups",
        metavar="GROUP",
        help="a group the user belongs to (repeatable): the groups claim",
    )
    parser.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        metavar="SCOPE",
        help="a granted scope (repeatable or space-separated; default: every scope of the client)",
    )
    parser.add_argument(
        "--client-id", help="the cid claim (default: the first devissuer.clients entry)"
    )
    parser.add_argument(
        "--lifetime",
        type=int,
        metavar="SECONDS",
        help="seconds until the token expires (default: devissuer.token_lifetime)",
    )
    parser.add_argument(
        "--dpop-key",
        metavar="FILE",
        help="bind the token to this DPoP private key (PEM, e.g. from "
        "'okta-pyramid-dpop keygen FILE'): the cnf.jkt claim",
    )
    parser.add_argument(
        "--acr",
        metavar="VALUE",
        help="the acr claim: how strongly the user signed in, e.g. urn:okta:loa:2fa:any "
        f"(Okta's values: {', '.join(ACR_VALUES)})",
    )
    parser.add_argument(
        "--amr",
        action="append",
        metavar="METHOD",
        help="a method the user signed in with (repeatable; RFC 8176, e.g. pwd, otp): the "
        "amr claim (default with --acr: pwd, and otp for a two-factor acr)",
    )
    parser.add_argument(
        "--auth-age",
        type=int,
        metavar="SECONDS",
        help="how long ago the user signed in: auth_time is now minus this (default with --acr: 0)",
    )
    parser.add_argument(
        "--issuer",
        metavar="ISSUER",
        help="the authorization server that signs: its issuer URL or the "
        "last part of its path, e.g. partners (default: the first "
        "okta.issuer line)",
    )
    parser.add_argument(
        "--rotate",
        action="store_true",
        help="make a new signing key; the previous one stays published",
    )
    return parser


def _server(
    parser: argparse.ArgumentParser, servers: Sequence[DevIssuerSettings], wanted: str | None
) -> DevIssuerSettings:
    """The server named by ``--issuer`` (its URL, or the last part of its path)."""
    if wanted is None:
        return servers[0]
    for server in servers:
        if wanted in (server.issuer, server.path.rpartition("/")[2]):
            return server
    parser.error(
        f"--issuer: {wanted!r} is not served here; choose among "
        f"{', '.join(server.issuer for server in servers)}"
    )


def _authentication(
    parser: argparse.ArgumentParser, args: argparse.Namespace, now: float
) -> tuple[str | None, list[str] | None, int | None]:
    """The ``acr``, ``amr`` and ``auth_time`` claims the options ask for (none
    without them)."""
    acr = args.acr
    if acr is not None and (not acr or not acr.isprintable() or " " in acr):
        parser.error("--acr: give one acr value, e.g. urn:okta:loa:2fa:any")
    amr = None
    if args.amr:
        amr = list(dict.fromkeys(m for value in args.amr for m in value.split()))
        if not amr or not all(m.isprintable() for m in amr):
            parser.error("--amr: give method names such as pwd or otp")
    elif acr is not None:
        amr = ["pwd", "otp"] if acr in TWO_FACTOR_ACR_VALUES else ["pwd"]
    auth_time = None
    if args.auth_age is not None:
        if not 0 <= args.auth_age <= 10 * 365 * 86400:
            parser.error("--auth-age: give seconds since the sign-in, 0 or more")
        auth_time = int(now) - args.auth_age
    elif acr is not None or amr is not None:
        auth_time = int(now)
    return acr, amr, auth_time


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        app_settings = get_appsettings(args.config_uri, options=parse_vars(args.config_vars))
    except (OSError, LookupError, ValueError) as exc:
        parser.error(f"cannot read {args.config_uri}: {exc}")
    if "okta_pyramid.devissuer" not in aslist(app_settings.get("pyramid.includes", "")):
        parser.error(
            f"{args.config_uri} does not include okta_pyramid.devissuer in "
            "pyramid.includes: it has no development issuer"
        )
    try:
        # The same ${NAME} expansion as the app's main(), so both sign with one key set.
        servers = parse_devissuer_servers(expand_settings(app_settings))
    except ConfigurationError as exc:
        parser.error(str(exc))
    settings = _server(parser, servers, args.issuer)
    try:
        factory = token_factory(settings)
    except ConfigurationError as exc:
        parser.error(str(exc))

    if args.rotate:
        key = factory.keys.rotate()
        print(
            f"new signing key: {key.kid}; published keys: "
            f"{', '.join(k.kid for k in factory.keys.keys())}",  # noqa: SIM118 - a KeyStore
            file=sys.stderr,
        )
        if not args.sub:
            return 0
    if not args.sub:
        parser.error("--sub is required to mint a token (or use --rotate)")

    client_id = args.client_id or settings.clients[0].client_id
    client = settings.client(client_id)
    if args.scopes:
        scopes = list(dict.fromkeys(s for value in args.scopes for s in value.split()))
    elif client is not None:
        scopes = sorted(client.scopes)
    else:
        parser.error(
            f"--scope is required for client {client_id!r}, which is not in devissuer.clients"
        )
    bad = [s for s in scopes if not is_scope_token(s)]
    if bad:
        parser.error(f"--scope: {bad[0]!r} is not a valid scope")
    if args.lifetime is not None and not MIN_TOKEN_LIFETIME <= args.lifetime <= MAX_TOKEN_LIFETIME:
        parser.error(
            f"--lifetime: must be between {MIN_TOKEN_LIFETIME} and {MAX_TOKEN_LIFETIME} seconds"
        )
    jkt = None
    if args.dpop_key is not None:
        try:
            jkt = key_thumbprint(load_key_file(args.dpop_key))
        except KeyFileError as exc:
            parser.error(f"--dpop-key: {exc}")
    acr, amr, auth_time = _authentication(parser, args, factory.clock())
    token = factory.user_token(
        args.sub,
        client_id=client_id,
        scopes=scopes,
        uid=args.uid,
        groups=args.groups,
        lifetime=args.lifetime,
        jkt=jkt,
        acr=acr,
        amr=amr,
        auth_time=auth_time,
    )
    print(token)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
