"""The hand-written compact-JWS parsing refuses at least everything PyJWT's PyJWS refuses.

PyJWS reads the same tokens (same key, RS256 only) and is the reference: for any
text it refuses, the verifier must refuse too. The verifier refuses more (claims,
duplicate names, spare bits, typ, crit), which PyJWS does not look at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from okta_pyramid.tokens import AccessTokenVerifier, InvalidToken, _jws

from ..helpers import b64url
from ..issuer import LoopbackIssuer

PROFILE = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Characters a mutation may bring in: base64url, the standard alphabet's, padding,
# separators, whitespace and a non-ASCII letter.
NOISE = ALPHABET + "+/=. \t\n%é"


@pytest.fixture(scope="module")
def module_issuer() -> Iterator[LoopbackIssuer]:
    issuer = LoopbackIssuer()
    yield issuer
    issuer.close()


@pytest.fixture(scope="module")
def module_verifier(module_issuer: LoopbackIssuer) -> AccessTokenVerifier:
    # No token cache: every example is judged in full.
    return AccessTokenVerifier(
        module_issuer.issuer, module_issuer.audience, http_timeout=2, token_cache_size=0
    )


@pytest.fixture(scope="module")
def token(module_issuer: LoopbackIssuer) -> str:
    return module_issuer.mint()


def pyjws_refuses(issuer: LoopbackIssuer, text: str) -> bool:
    try:
        jwt.PyJWS().decode_complete(
            text, issuer.keys[0].private_key.public_key(), algorithms=["RS256"]
        )
    except jwt.PyJWTError:
        return True
    return False


def assert_refused_as_pyjws_does(
    issuer: LoopbackIssuer, verifier: AccessTokenVerifier, text: str
) -> None:
    if pyjws_refuses(issuer, text):
        with pytest.raises(InvalidToken):
            verifier.verify(text)


def test_the_reference_accepts_the_unchanged_token(
    module_issuer: LoopbackIssuer, module_verifier: AccessTokenVerifier, token: str
) -> None:
    assert not pyjws_refuses(module_issuer, token)
    assert module_verifier.verify(token)


edits = st.lists(
    st.tuples(
        st.sampled_from(["replace", "insert", "delete"]),
        st.integers(min_value=0),
        st.sampled_from(NOISE),
    ),
    min_size=1,
    max_size=4,
)


@PROFILE
@given(changes=edits)
def test_an_edited_token(
    module_issuer: LoopbackIssuer,
    module_verifier: AccessTokenVerifier,
    token: str,
    changes: list[tuple[str, int, str]],
) -> None:
    text = token
    for kind, position, character in changes:
        position %= len(text) + (kind == "insert")
        if kind == "replace" and position < len(text):
            text = text[:position] + character + text[position + 1 :]
        elif kind == "insert":
            text = text[:position] + character + text[position:]
        elif kind == "delete" and position < len(text):
            text = text[:position] + text[position + 1 :]
    assume(text != token)
    assert_refused_as_pyjws_does(module_issuer, module_verifier, text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "rs256", "none", "HS256", "RS384", "PS256", ""])
        | json_values,
        "kid": st.sampled_from(["key-1", "key-2", ""]) | json_values,
        "typ": st.sampled_from(["JWT", "at+jwt", "JOSE"]) | json_values,
        "crit": st.sampled_from([["b64"], ["exp"], []]) | json_values,
        "b64": st.booleans() | json_values,
        "jku": st.just("https://attacker.example/keys"),
    },
)


@PROFILE
@given(header=headers, payload=st.none() | st.binary(max_size=64))
def test_a_token_signed_with_any_header(
    module_issuer: LoopbackIssuer,
    module_verifier: AccessTokenVerifier,
    header: dict[str, Any],
    payload: bytes | None,
) -> None:
    # Correctly signed, so that only the header or payload can make PyJWS refuse;
    # mostly with good claims, so that the verifier's claim checks cannot be what
    # refuses the token.
    if payload is None:
        payload = json.dumps(module_issuer.claims()).encode()
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(payload)}"
    text = f"{signing_input}.{b64url(module_issuer.signature(signing_input.encode()))}"
    assert_refused_as_pyjws_does(module_issuer, module_verifier, text)


@PROFILE
@given(parts=st.lists(st.text(ALPHABET + "=+/", max_size=30), min_size=0, max_size=5))
def test_any_segments(
    module_issuer: LoopbackIssuer, module_verifier: AccessTokenVerifier, parts: list[str]
) -> None:
    assert_refused_as_pyjws_does(module_issuer, module_verifier, ".".join(parts))


# -- the strict JSON reader every part of the token package uses --------------------


@pytest.mark.parametrize("text", ['{"a":1}', ' {"a": [1, {"b": "c"}]}\n', "\t{}", '{"a":1}\r\n'])
def test_strict_json_reads_what_json_reads(text: str) -> None:
    assert _jws.loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1}x',
        '{"a":1}{}',
        '{"a":1} 2',
        "",
        " ",
        '{"a":NaN}',
        '{"a":-Infinity}',
        '{"a":1,"a":2}',
        '{"a":{"b":1,"b":1}}',
        '[{"a":1,"a":1}]',
        '{"a":1',
        '"\\ud800" x',
    ],
)
def test_strict_json_refuses_trailing_text_constants_and_repeated_names(text: str) -> None:
    with pytest.raises(ValueError):
        _jws.loads(text.encode())


def test_strict_json_is_utf_8() -> None:
    with pytest.raises(ValueError):
        _jws.loads('{"a":"é"}'.encode("latin-1"))
