"""What the development issuer's tests share: its clients, the served app
(:class:`DevServer`, started by the ``serve`` and ``dev`` fixtures of conftest.py), and
calls to its token, introspection and command-line interfaces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import webtest

from okta_pyramid.devissuer import TokenFactory, cli
from okta_pyramid.tokens.dpop import make_proof

from ..helpers import b64url, basic

CLIENTS = """
svc-client    s3cret-value   api.read api.write
read-client   p@ss:w0rd!x    api.read
"""


@dataclass
class DevServer:
    """The app, served on ``base_url`` and wrapped in WebTest as ``app``."""

    base_url: str
    issuer: str
    keys_dir: Path
    settings: dict[str, Any]
    app: webtest.TestApp

    def token(
        self, client_id: str = "svc-client", secret: str = "s3cret-value", scope: str = "api.read"
    ) -> str:
        response = self.app.post(
            "/oauth2/default/v1/token",
            {"grant_type": "client_credentials", "scope": scope},
            headers={"Authorization": basic(client_id, secret)},
        )
        return response.json["access_token"]

    def whoami(self, token: str, status: int = 200) -> webtest.TestResponse:
        return self.app.get(
            "/api/whoami", headers={"Authorization": f"Bearer {token}"}, status=status
        )


def dev_settings(port: int, keys_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "pyramid.includes": "okta_pyramid.devissuer",
        "okta.issuer": f"http://127.0.0.1:{port}/oauth2/default",
        "okta.audience": "api://default",
        "okta.http_timeout": "2",
        # Every unknown kid may refetch, so a rotation is seen at once in tests.
        "okta.jwks_refetch_cooldown": "0",
        "devissuer.clients": CLIENTS,
        "devissuer.keys_dir": str(keys_dir),
        **extra,
    }


TOKEN = "/oauth2/default/v1/token"
GRANT = {"grant_type": "client_credentials", "scope": "api.read"}
INTROSPECT = "/oauth2/default/v1/introspect"
#: The whole answer for any token that is not active (RFC 7662 §2.2).
INACTIVE = {"active": False}
SVC = basic("svc-client", "s3cret-value")
READER = basic("read-client", "p@ss:w0rd!x")
#: CLIENTS and a client that must bind its tokens to a key (DPoP).
DPOP_CLIENTS = CLIENTS + "bound-client  b0und-secret  api.read  dpop=required\n"


# -- the command line ----------------------------------------------------------------


def write_ini(path: Path, settings: dict[str, str]) -> Path:
    lines = ["[app:main]", "use = egg:okta_pyramid"]
    for key, value in settings.items():
        lines.append(f"{key} = " + str(value).replace("\n", "\n    "))
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``okta-pyramid-token ARGS`` in this process: its exit status, stdout, stderr."""
    try:
        status = cli.main(list(args))
    except SystemExit as exc:  # argparse: a usage error, or --help
        # The status the interpreter would exit with: None is 0, a message is 1.
        status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    out, err = capsys.readouterr()
    return status, out, err


# -- the token endpoint, and DPoP-bound tokens ------------------------------------


def token_url(dev: DevServer) -> str:
    return dev.base_url + TOKEN


def request_token(
    dev: DevServer,
    proof: str | None,
    *,
    client: str = "svc-client",
    secret: str = "s3cret-value",
    status: int | str = "*",
):
    headers = {"Authorization": basic(client, secret)}
    if proof is not None:
        headers["DPoP"] = proof
    return dev.app.post(TOKEN, GRANT, headers=headers, status=status)


def nonce(dev: DevServer, key) -> str:
    """The first leg of the dance: a proof without a nonce, answered with one."""
    response = request_token(dev, make_proof(key, "POST", token_url(dev)), status=400)
    return response.headers["DPoP-Nonce"]


def bound_token(dev: DevServer, key, **kwargs: Any):
    proof = make_proof(key, "POST", token_url(dev), nonce=nonce(dev, key))
    return request_token(dev, proof, status=200, **kwargs)


# -- introspection ------------------------------------------------------------------


def introspect(
    dev: DevServer, token: str, *, authorization: str | None = SVC, status: int = 200, **params: str
):
    headers = {"Authorization": authorization} if authorization else {}
    return dev.app.post(INTROSPECT, {"token": token, **params}, headers=headers, status=status)


def factory(dev: DevServer) -> TokenFactory:
    return dev.app.app.registry.devissuer_tokens


def mint(dev: DevServer, **changes) -> str:
    """A token of this issuer's key with some claims changed (``None`` removes one)."""
    claims = factory(dev).claims(client_id="svc-client", subject="svc-client", scopes=["api.read"])
    claims.update(changes)
    return factory(dev).sign({k: v for k, v in claims.items() if v is not None})


def tampered(token: str) -> str:
    """``token`` with a scope added to its claims and its signature kept."""
    header, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["scp"] = ["api.read", "api.write"]
    return f"{header}.{b64url(claims)}.{signature}"
