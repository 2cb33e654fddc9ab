"""``okta-pyramid-dpop`` (keys and proofs for curl) and ``okta-pyramid-token --dpop-key``,
run as the installed commands, as a developer runs them."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from okta_pyramid.tokens.dpop import DPoPVerifier, access_token_hash

from ..helpers import basic, thumbprint
from .helpers import TOKEN, DevServer, write_ini

# Every test here runs the installed commands as separate processes.
pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def command(name: str) -> str:
    script = shutil.which(name, path=str(BIN))
    assert script, f"pip install -e . installs the {name} command"
    return script


def dpop(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command("okta-pyramid-dpop"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "k.pem"
    dpop("keygen", path)
    return path


def private_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


# -- keygen -------------------------------------------------------------------------


def test_keygen_writes_a_p256_key_readable_by_its_owner_only(tmp_path: Path):
    path = tmp_path / "k.pem"
    result = dpop("keygen", path)
    assert result.stdout == ""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = private_key(path)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    # The key is never printed; its thumbprint is.
    assert "PRIVATE" not in result.stderr and path.read_text().splitlines()[1] not in result.stderr
    assert thumbprint(key) in result.stderr


def test_keygen_is_0600_whatever_the_umask(tmp_path: Path):
    path = tmp_path / "k.pem"
    subprocess.run(
        ["sh", "-c", 'umask 000 && exec "$0" keygen "$1"', command("okta-pyramid-dpop"), str(path)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keygen_never_overwrites_a_key(key_file: Path):
    before = key_file.read_bytes()
    result = dpop("keygen", key_file, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert "already exists" in result.stderr
    assert key_file.read_bytes() == before


# -- proof --------------------------------------------------------------------------


def test_proof_prints_a_proof_the_resource_servers_checker_accepts(key_file: Path):
    url = "http://localhost:6543/api/whoami"
    result = dpop(
        "proof", "--key", key_file, "GET", url + "?page=2", "--token", "tok.en.x", "--nonce", "n-1"
    )
    proof = result.stdout.strip()
    assert result.stdout == proof + "\n" and result.stderr == ""
    checked = DPoPVerifier().verify(
        [proof], "GET", url, access_token="tok.en.x", jkt=thumbprint(private_key(key_file))
    )
    assert checked.claims["htu"] == url  # the query is not part of htu
    assert checked.claims["ath"] == access_token_hash("tok.en.x")
    assert checked.claims["nonce"] == "n-1"
    assert checked.alg == "ES256"


def test_each_proof_is_new(key_file: Path):
    url = "http://localhost:6543/api/whoami"
    proofs = [dpop("proof", "--key", key_file, "GET", url).stdout for _ in range(2)]
    jtis = {jwt.decode(p.strip(), options={"verify_signature": False})["jti"] for p in proofs}
    assert len(jtis) == 2


def test_proof_signs_with_an_rsa_key_too(tmp_path: Path):
    path = tmp_path / "rsa.pem"
    path.write_bytes(
        rsa.generate_private_key(65537, 2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    proof = dpop("proof", "--key", path, "POST", "https://example.com/t").stdout.strip()
    assert DPoPVerifier().verify([proof], "POST", "https://example.com/t").alg == "RS256"


@pytest.mark.parametrize(
    "args, message",
    [
        (("GET", "localhost:6543/api"), "URL:"),
        (("GET", "ftp://example.com/x"), "URL:"),
        (("G ET", "http://localhost/x"), "METHOD:"),
        (("GET", "http://localhost/x", "--token", "a b"), "--token:"),
        (("GET", "http://localhost/x", "--nonce", ""), "--nonce:"),
    ],
)
def test_proof_refuses_bad_arguments(key_file: Path, args, message):
    result = dpop("proof", "--key", key_file, *args, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert message in result.stderr


def test_a_token_given_with_a_bad_argument_is_not_echoed(key_file: Path):
    result = dpop(
        "proof",
        "--key",
        key_file,
        "GET",
        "http://localhost/x",
        "--token",
        "secret token-value",
        check=False,
    )
    assert result.returncode == 2 and "token-value" not in result.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read"),
        (b"not a key\nbut a secret line\n", "is not a PEM private key"),
        ("public", "holds a"),
        ("encrypted", "encrypted key"),
        ("rsa1024", "1024-bit RSA key"),
    ],
)
def test_a_key_file_that_cannot_sign_is_refused_without_showing_it(
    tmp_path: Path, content, message
):
    path = tmp_path / "bad.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    if content == "public":
        content = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    elif content == "encrypted":
        content = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass-phrase"),
        )
    elif content == "rsa1024":
        # Too weak on purpose: the command must refuse it.
        content = rsa.generate_private_key(65537, 1024).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    if content is not None:
        path.write_bytes(content)
    result = dpop("proof", "--key", path, "GET", "http://localhost/x", check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert message in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr
    if content is not None:
        assert content.decode().splitlines()[1] not in result.stderr


# -- jwk ----------------------------------------------------------------------------


def test_jwk_prints_the_public_half_and_its_thumbprint(key_file: Path):
    key = private_key(key_file)
    jwk = json.loads(dpop("jwk", "--key", key_file).stdout)
    assert set(jwk) == {"kty", "crv", "x", "y"}  # never "d"
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
    assert dpop("jwk", "--key", key_file, "--thumbprint").stdout == thumbprint(key) + "\n"


# -- with the development issuer --------------------------------------------------------


def test_a_dpop_token_from_the_token_endpoint_with_proofs_from_the_command(
    dev: DevServer, key_file: Path
):
    url = dev.base_url + TOKEN
    auth = {"Authorization": basic("svc-client", "s3cret-value")}
    grant = {"grant_type": "client_credentials", "scope": "api.read"}
    first = dpop("proof", "--key", key_file, "POST", url).stdout.strip()
    answer = dev.app.post(TOKEN, grant, headers={**auth, "DPoP": first}, status=400)
    assert answer.json["error"] == "use_dpop_nonce"
    retry = dpop(
        "proof", "--key", key_file, "POST", url, "--nonce", answer.headers["DPoP-Nonce"]
    ).stdout.strip()
    body = dev.app.post(TOKEN, grant, headers={**auth, "DPoP": retry}, status=200).json
    assert body["token_type"] == "DPoP"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["cnf"]["jkt"] == dpop("jwk", "--key", key_file, "--thumbprint").stdout.strip()


def test_okta_pyramid_token_binds_a_user_token_to_a_key(
    dev: DevServer, key_file: Path, tmp_path: Path
):
    ini = write_ini(tmp_path / "dev.ini", dev.settings)
    result = subprocess.run(
        [
            command("okta-pyramid-token"),
            str(ini),
            "--sub",
            "alice@example.com",
            "--dpop-key",
            str(key_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = result.stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": thumbprint(private_key(key_file))}
    assert claims["sub"] == "alice@example.com"


def test_okta_pyramid_token_refuses_a_key_file_it_cannot_use(dev: DevServer, tmp_path: Path):
    ini = write_ini(tmp_path / "dev.ini", dev.settings)
    result = subprocess.run(
        [
            command("okta-pyramid-token"),
            str(ini),
            "--sub",
            "a",
            "--dpop-key",
            str(tmp_path / "missing.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "--dpop-key: cannot read" in result.stderr
