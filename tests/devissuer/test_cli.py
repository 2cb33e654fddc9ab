"""``okta-pyramid-token``: user tokens and key rotation from the command line."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from okta_pyramid.devissuer.keys import KeyStore
from okta_pyramid.devissuer.tokens import user_id

from .helpers import DevServer, run_cli, write_ini

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ini(dev: DevServer, tmp_path: Path) -> Path:
    return write_ini(tmp_path / "dev.ini", dev.settings)


def test_mints_a_user_token_the_app_accepts(dev: DevServer, ini: Path, capsys):
    status, out, _ = run_cli(
        capsys,
        str(ini),
        "--sub",
        "alice@example.com",
        "--group",
        "admins",
        "--group",
        "staff",
        "--scope",
        "api.read",
    )
    assert status == 0
    token = out.strip()
    assert "\n" not in token  # stdout is the token alone: TOKEN=$(okta-pyramid-token ...)
    claims = dev.whoami(token).json
    assert claims["sub"] == "alice@example.com"
    assert claims["uid"] == user_id("alice@example.com")
    assert claims["uid"].startswith("00u") and len(claims["uid"]) == 20
    assert claims["groups"] == ["admins", "staff"]
    assert claims["scp"] == ["api.read"]
    assert claims["cid"] == "svc-client"
    assert claims["iss"] == dev.issuer
    assert jwt.get_unverified_header(token)["kid"] == KeyStore(str(dev.keys_dir)).signing_key.kid


def test_reads_the_environment_like_the_app(
    dev: DevServer, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
):
    # ${NAME} in the ini expands as the app's main() expands it: same keys folder.
    monkeypatch.setenv("DEV_KEYS", str(dev.keys_dir))
    ini = write_ini(tmp_path / "env.ini", {**dev.settings, "devissuer.keys_dir": "${DEV_KEYS}"})
    status, out, _ = run_cli(capsys, str(ini), "--sub", "carol@example.com")
    assert status == 0
    assert dev.whoami(out.strip()).json["sub"] == "carol@example.com"
    assert not (tmp_path / "${DEV_KEYS}").exists()


def test_defaults_and_options(dev: DevServer, ini: Path, capsys):
    status, out, _ = run_cli(
        capsys,
        str(ini),
        "--sub",
        "bob@example.com",
        "--uid",
        "00ubob",
        "--client-id",
        "read-client",
        "--lifetime",
        "120",
    )
    assert status == 0
    claims = dev.whoami(out.strip()).json
    assert claims["uid"] == "00ubob"
    assert claims["cid"] == "read-client"
    assert claims["scp"] == ["api.read"]  # every scope of the client
    assert "groups" not in claims
    assert claims["exp"] - claims["iat"] == 120


def test_rotate_then_the_running_app_accepts_the_new_key(dev: DevServer, ini: Path, capsys):
    before = dev.token()
    status, out, err = run_cli(capsys, str(ini), "--rotate")
    assert status == 0 and out == ""
    new_kid = KeyStore(str(dev.keys_dir)).signing_key.kid
    assert new_kid in err
    status, out, _ = run_cli(capsys, str(ini), "--sub", "alice@example.com")
    assert jwt.get_unverified_header(out.strip())["kid"] == new_kid
    dev.whoami(out.strip())
    dev.whoami(before)


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "--sub is required"),
        (("--sub", "a", "--scope", 'bad"scope'), "not a valid scope"),
        (("--sub", "a", "--lifetime", "5"), "--lifetime"),
        (("--sub", "a", "--client-id", "stranger"), "--scope is required"),
    ],
)
def test_bad_arguments(ini: Path, capsys, args, message):
    status, out, err = run_cli(capsys, str(ini), *args)
    assert status == 2 and out == ""
    assert message in err


def test_refuses_a_config_without_the_development_issuer(capsys):
    status, out, err = run_cli(capsys, str(ROOT / "production.ini"), "--sub", "a")
    assert status == 2 and out == ""
    assert "does not include okta_pyramid.devissuer" in err


def test_refuses_a_missing_config(tmp_path, capsys):
    status, _, err = run_cli(capsys, str(tmp_path / "nope.ini"), "--sub", "a")
    assert status == 2 and "cannot read" in err


def test_the_console_script_is_installed(ini: Path):
    script = shutil.which("okta-pyramid-token", path=str(Path(sys.executable).parent))
    assert script, "pip install -e . installs the okta-pyramid-token command"
    result = subprocess.run(
        [script, str(ini), "--sub", "carol@example.com"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert (
        jwt.decode(result.stdout.strip(), options={"verify_signature": False})["sub"]
        == "carol@example.com"
    )


# -- how and when the user signed in (acr, amr, auth_time) ---------------------------


def test_a_user_token_says_how_and_when_the_user_signed_in(dev: DevServer, ini: Path, capsys):
    status, out, _ = run_cli(
        capsys, str(ini), "--sub", "alice", "--acr", "urn:okta:loa:2fa:any", "--auth-age", "120"
    )
    assert status == 0
    claims = dev.whoami(out.strip()).json
    assert claims["acr"] == "urn:okta:loa:2fa:any"
    assert claims["amr"] == ["pwd", "otp"]
    assert abs(claims["auth_time"] - (time.time() - 120)) < 5


def test_amr_and_auth_time_defaults(dev: DevServer, ini: Path, capsys):
    _, out, _ = run_cli(capsys, str(ini), "--sub", "alice", "--acr", "urn:okta:loa:1fa:pwd")
    one = jwt.decode(out.strip(), options={"verify_signature": False})
    assert one["amr"] == ["pwd"] and abs(one["auth_time"] - time.time()) < 5
    _, out, _ = run_cli(capsys, str(ini), "--sub", "alice", "--acr", "phr", "--amr", "hwk")
    assert jwt.decode(out.strip(), options={"verify_signature": False})["amr"] == ["hwk"]
    _, out, _ = run_cli(capsys, str(ini), "--sub", "alice")
    plain = jwt.decode(out.strip(), options={"verify_signature": False})
    assert not {"acr", "amr", "auth_time"} & set(plain)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--acr", ""), "--acr: give one acr value"),
        (("--acr", "a b"), "--acr: give one acr value"),
        (("--auth-age", "-5"), "--auth-age: give seconds"),
        (("--auth-age", "soon"), "--auth-age: invalid int value"),
    ],
)
def test_bad_authentication_options_are_usage_errors(ini: Path, capsys, args, message):
    status, out, err = run_cli(capsys, str(ini), "--sub", "alice", *args)
    assert status == 2 and not out
    assert message in err


def test_client_credentials_tokens_carry_no_authentication_claims(dev: DevServer):
    claims = jwt.decode(dev.token(), options={"verify_signature": False})
    assert not {"acr", "amr", "auth_time", "uid"} & set(claims)
