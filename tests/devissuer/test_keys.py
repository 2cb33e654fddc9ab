"""The signing keys: generated at run time, kept on disk privately, rotated."""

from __future__ import annotations

import stat

import pytest

from okta_pyramid.devissuer.keys import KeyStore, KeyStoreError, jwk_thumbprint


def test_the_first_use_generates_a_private_key_file(tmp_path):
    folder = tmp_path / "keys"
    store = KeyStore(str(folder))
    key = store.signing_key
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "keys.json").stat().st_mode) == 0o600
    # Whatever folder is configured, git will not pick the keys up.
    assert (folder / ".gitignore").read_text() == "*\n"
    assert key.private_key.key_size == 2048
    assert "PRIVATE" not in repr(key)


def test_keys_are_reloaded_from_disk(tmp_path):
    first = KeyStore(str(tmp_path)).signing_key
    again = KeyStore(str(tmp_path)).signing_key
    assert again.kid == first.kid
    assert again.private_key.private_numbers() == first.private_key.private_numbers()


RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
    "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
    "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)


def test_kid_is_the_rfc7638_thumbprint(tmp_path):
    # The example of RFC 7638 §3.1.
    assert jwk_thumbprint("AQAB", RFC7638_N) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    jwk = KeyStore(str(tmp_path)).signing_key.public_jwk
    assert jwk["kid"] == jwk_thumbprint(jwk["e"], jwk["n"])


def test_jwks_has_no_private_material(tmp_path):
    store = KeyStore(str(tmp_path))
    store.rotate()
    for jwk in store.jwks()["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)


def test_rotation_keeps_the_previous_keys_published(tmp_path):
    store = KeyStore(str(tmp_path), keep=2)
    first = store.signing_key
    second = store.rotate()
    # KeyStore.keys() is a method, not a dict's: ruff's SIM118 does not apply.
    assert [k.kid for k in store.keys()] == [second.kid, first.kid]  # noqa: SIM118
    third = store.rotate()
    assert [k.kid for k in store.keys()] == [third.kid, second.kid]  # noqa: SIM118


def test_a_rotation_by_another_process_is_seen_without_a_restart(tmp_path):
    server = KeyStore(str(tmp_path))
    before = server.signing_key
    new = KeyStore(str(tmp_path)).rotate()
    assert server.signing_key.kid == new.kid
    # KeyStore.keys() is a method, not a dict's: ruff's SIM118 does not apply.
    assert before.kid in {k.kid for k in server.keys()}  # noqa: SIM118


@pytest.mark.parametrize("content", ["", "{}", '{"keys": []}', '{"keys": [{"kid": "x"}]}'])
def test_an_unreadable_key_file_is_an_error_not_a_silent_new_key(tmp_path, content):
    (tmp_path / "keys.json").write_text(content)
    with pytest.raises(KeyStoreError, match="delete"):
        KeyStore(str(tmp_path)).keys()
