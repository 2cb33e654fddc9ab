"""The verified-token cache: a repeated token costs a lookup, and no outcome changes.

Each rule of :mod:`okta_pyramid.tokens.cache` has a test here that fails if the rule
is removed. Tokens come from the loopback issuer over real HTTP.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from pyramid.exceptions import ConfigurationError

from okta_pyramid.settings import DEFAULT_TOKEN_CACHE_SIZE, parse_settings
from okta_pyramid.tokens.cache import VerifiedTokenCache, token_digest
from okta_pyramid.tokens.exceptions import (
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaims,
    InvalidIssuer,
    InvalidSignature,
    UnknownKey,
)
from okta_pyramid.tokens.verifier import AccessTokenVerifier

from ..helpers import Clock, run_together
from ..issuer import DROP, LoopbackIssuer

LEEWAY = 60


@pytest.fixture
def clock() -> Clock:
    return Clock(float(int(time.time())))


def make_verifier(
    issuer: LoopbackIssuer, clock: Clock | None = None, **kwargs: Any
) -> AccessTokenVerifier:
    kwargs.setdefault("http_timeout", 2)
    kwargs.setdefault("leeway", LEEWAY)
    if clock is not None:
        kwargs["clock"] = clock
    return AccessTokenVerifier(issuer.issuer, issuer.audience, **kwargs)


def cached(verifier: AccessTokenVerifier, token: str) -> bool:
    cache = verifier.token_cache
    assert cache is not None
    return token_digest(token) in cache._entries


# -- a repeated token is a lookup ---------------------------------------------------


def test_repeated_token_is_served_from_the_cache(issuer: LoopbackIssuer) -> None:
    verifier = make_verifier(issuer)
    token = issuer.mint()
    first = verifier.verify(token)
    assert verifier.token_cache is not None
    assert (verifier.token_cache.hits, len(verifier.token_cache)) == (0, 1)
    assert verifier.verify(token) == first
    assert verifier.token_cache.hits == 1


def test_the_cache_keeps_a_digest_not_the_token(issuer: LoopbackIssuer) -> None:
    verifier = make_verifier(issuer)
    token = issuer.mint()
    verifier.verify(token)
    assert verifier.token_cache is not None
    keys = list(verifier.token_cache._entries)
    assert keys == [token_digest(token)]
    assert all(len(key) == 32 for key in keys)


def test_default_size(issuer: LoopbackIssuer) -> None:
    verifier = make_verifier(issuer)
    assert verifier.token_cache is not None
    assert verifier.token_cache.max_entries == DEFAULT_TOKEN_CACHE_SIZE


def test_size_zero_turns_the_cache_off(issuer: LoopbackIssuer) -> None:
    verifier = make_verifier(issuer, token_cache_size=0)
    assert verifier.token_cache is None
    token = issuer.mint()
    assert verifier.verify(token) == verifier.verify(token)


# -- the whole token is the key -------------------------------------------------------


def test_a_tampered_signature_misses_the_cache(issuer: LoopbackIssuer) -> None:
    verifier = make_verifier(issuer)
    token = issuer.mint()
    verifier.verify(token)
    head, payload, signature = token.split(".")
    flipped = "A" if signature[10] != "A" else "B"
    tampered = f"{head}.{payload}.{signature[:10]}{flipped}{signature[11:]}"
    with pytest.raises(InvalidSignature):
        verifier.verify(tampered)


# -- the time window is rechecked on every hit ----------------------------------------


def test_exp_is_rechecked_on_a_hit_and_the_entry_goes(issuer: LoopbackIssuer, clock: Clock) -> None:
    verifier = make_verifier(issuer, clock)
    exp = int(clock.now) + 120
    token = issuer.mint(iat=int(clock.now), exp=exp)
    verifier.verify(token)
    clock.now = exp + LEEWAY - 1  # still inside the leeway: a hit
    verifier.verify(token)
    assert verifier.token_cache is not None and verifier.token_cache.hits == 1
    clock.now = exp + LEEWAY  # the moment a full check calls it expired
    with pytest.raises(ExpiredToken):
        verifier.verify(token)
    # The entry never outlives its token.
    assert not cached(verifier, token)
    assert len(verifier.token_cache) == 0


def test_nbf_is_rechecked_on_a_hit(issuer: LoopbackIssuer, clock: Clock) -> None:
    verifier = make_verifier(issuer, clock)
    start = int(clock.now)
    token = issuer.mint(iat=start - 600, nbf=start)
    verifier.verify(token)
    assert cached(verifier, token)
    clock.now = start - LEEWAY - 1  # the clock went back
    with pytest.raises(ImmatureToken):
        verifier.verify(token)


def test_iat_is_rechecked_on_a_hit(issuer: LoopbackIssuer, clock: Clock) -> None:
    verifier = make_verifier(issuer, clock)
    start = int(clock.now)
    token = issuer.mint(iat=start)
    verifier.verify(token)
    clock.now = start - LEEWAY - 1
    with pytest.raises(ImmatureToken):
        verifier.verify(token)


# -- a change of the issuer's keys empties it -----------------------------------------


def test_a_key_removed_at_the_issuer_stops_its_cached_tokens(issuer: LoopbackIssuer) -> None:
    verifier = make_verifier(issuer, jwks_refetch_cooldown=0)
    old_token = issuer.mint()
    verifier.verify(old_token)
    assert cached(verifier, old_token)
    new_key = issuer.rotate(2, keep_old=False)
    # A token signed with the new key makes the verifier refetch the key set.
    verifier.verify(issuer.mint(key=new_key))
    with pytest.raises(UnknownKey):
        verifier.verify(old_token)


def test_the_cache_is_emptied_when_the_key_set_changes(issuer: LoopbackIssuer) -> None:
    verifier = make_verifier(issuer)
    tokens = [issuer.mint() for _ in range(3)]
    for token in tokens:
        verifier.verify(token)
    assert verifier.token_cache is not None and len(verifier.token_cache) == 3
    issuer.rotate(2, keep_old=True)  # key-1 stays valid, but the set changed
    verifier.keys.refresh()
    assert verifier.verify(tokens[0])["iss"] == issuer.issuer
    assert len(verifier.token_cache) == 1
    assert verifier.token_cache.hits == 0


# -- rejected tokens are never remembered as valid ------------------------------------


@pytest.mark.parametrize(
    ("claims", "error", "verifier_options"),
    [
        ({"aud": "api://other"}, InvalidAudience, {}),
        ({"iss": "https://evil.example.com/oauth2/default"}, InvalidIssuer, {}),
        ({"exp": DROP}, InvalidClaims, {}),
        ({"sub": 42}, InvalidClaims, {}),
        ({"cid": "0oa-someone-else"}, InvalidClaims, {"client_ids": ["0oa-test-client"]}),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, ExpiredToken, {}),
    ],
)
def test_a_rejected_token_is_not_cached(
    issuer: LoopbackIssuer,
    claims: dict[str, Any],
    error: type[Exception],
    verifier_options: dict[str, Any],
) -> None:
    verifier = make_verifier(issuer, **verifier_options)
    token = issuer.mint(**claims)
    for _ in range(2):
        with pytest.raises(error):
            verifier.verify(token)
    assert verifier.token_cache is not None and len(verifier.token_cache) == 0


def test_a_bad_signature_is_not_cached(issuer: LoopbackIssuer) -> None:
    from ..issuer import SigningKey, rsa_key

    verifier = make_verifier(issuer)
    forged = issuer.mint(key=SigningKey("key-1", rsa_key(99)))  # a known kid, a foreign key
    for _ in range(2):
        with pytest.raises(InvalidSignature):
            verifier.verify(forged)
    assert verifier.token_cache is not None and len(verifier.token_cache) == 0


# -- callers cannot poison it ---------------------------------------------------------


def test_mutating_returned_claims_does_not_change_the_cache(issuer: LoopbackIssuer) -> None:
    verifier = make_verifier(issuer)
    token = issuer.mint(scp=["openid"], groups={"team": ["a"]})
    first = verifier.verify(token)
    expected = {**first, "scp": ["openid"], "groups": {"team": ["a"]}}
    first["scp"].append("admin")
    first["sub"] = "mallory"
    second = verifier.verify(token)  # a hit
    assert verifier.token_cache is not None and verifier.token_cache.hits == 1
    assert second == expected
    second["groups"]["team"].append("root")
    assert verifier.verify(token) == expected


# -- bounded ------------------------------------------------------------------------


def test_bounded_by_entries_least_recently_used_first(issuer: LoopbackIssuer) -> None:
    verifier = make_verifier(issuer, token_cache_size=3)
    tokens = [issuer.mint() for _ in range(4)]
    for token in tokens[:3]:
        verifier.verify(token)
    verifier.verify(tokens[0])  # now the most recently used
    verifier.verify(tokens[3])  # evicts tokens[1], the least recently used
    assert verifier.token_cache is not None and len(verifier.token_cache) == 3
    assert [cached(verifier, t) for t in tokens] == [True, False, True, True]


def test_bounded_by_bytes() -> None:
    cache = VerifiedTokenCache(100, max_bytes=100)
    for i in range(5):
        cache.put(
            bytes([i]) * 32, b"x" * 40, size=40, not_before=0, not_after=10, generation=1, now=5
        )
    assert len(cache) == 2
    assert cache.size_bytes == 80
    assert cache.get(bytes([4]) * 32, 5, 1) == b"x" * 40
    assert cache.get(bytes([0]) * 32, 5, 1) is None
    cache.put(b"y" * 32, b"z" * 101, size=101, not_before=0, not_after=10, generation=1, now=5)
    assert cache.get(b"y" * 32, 5, 1) is None


def test_expired_entries_are_dropped_from_the_lru_end() -> None:
    cache = VerifiedTokenCache(10)
    cache.put(b"a" * 32, b"{}", size=2, not_before=0, not_after=10, generation=1, now=5)
    cache.put(b"b" * 32, b"{}", size=2, not_before=0, not_after=100, generation=1, now=5)
    cache.put(b"c" * 32, b"{}", size=2, not_before=0, not_after=100, generation=1, now=20)
    assert len(cache) == 2 and cache.size_bytes == 4
    assert cache.get(b"a" * 32, 20, 1) is None
    # When everything has expired, nothing is kept, the new entry included.
    cache.put(b"d" * 32, b"{}", size=2, not_before=0, not_after=100, generation=1, now=100)
    assert len(cache) == 0 and cache.size_bytes == 0


def test_an_entry_from_older_keys_is_never_served() -> None:
    cache = VerifiedTokenCache(10)
    cache.put(b"a" * 32, b"{}", size=2, not_before=0, not_after=10, generation=2, now=5)
    # A verification that began before the key set changed must not be stored.
    cache.put(b"b" * 32, b"{}", size=2, not_before=0, not_after=10, generation=1, now=5)
    assert cache.get(b"b" * 32, 5, 2) is None
    assert cache.get(b"a" * 32, 5, 2) == b"{}"
    assert cache.get(b"a" * 32, 5, 3) is None
    assert len(cache) == 0


def test_concurrent_use_keeps_it_consistent(issuer: LoopbackIssuer) -> None:
    verifier = make_verifier(issuer, token_cache_size=8)
    tokens = [issuer.mint() for _ in range(20)]
    verifier.keys.refresh()
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(200):
                token = tokens[(i * 7 + offset) % len(tokens)]
                assert verifier.verify(token)["iss"] == issuer.issuer
        except BaseException as exc:  # reported below
            errors.append(exc)

    run_together(work, [(n,) for n in range(4)])
    assert errors == []
    cache = verifier.token_cache
    assert cache is not None and len(cache) <= 8
    assert cache.size_bytes == sum(e.value.size for e in cache._entries.values())
    assert cache.hits + cache.misses == 800


# -- the setting -------------------------------------------------------------------


def test_setting_default_and_zero() -> None:
    base = {"okta.issuer": "https://dev-1.okta.com/oauth2/default"}
    assert parse_settings(base).token_cache_size == DEFAULT_TOKEN_CACHE_SIZE
    assert parse_settings({**base, "okta.token_cache_size": "0"}).token_cache_size == 0
    assert parse_settings({**base, "okta.token_cache_size": "10"}).token_cache_size == 10


@pytest.mark.parametrize("value", ["-1", "lots", "1.5", "100001"])
def test_setting_refuses_bad_values(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^okta\.token_cache_size: "):
        parse_settings(
            {"okta.issuer": "https://dev-1.okta.com/oauth2/default", "okta.token_cache_size": value}
        )


def test_the_app_passes_the_setting_to_its_verifier(make_app: Any) -> None:
    off = make_app(token_cache_size="0").app.registry.okta.verifier
    assert off.token_cache is None
    small = make_app(token_cache_size="5").app.registry.okta.verifier
    assert small.token_cache is not None and small.token_cache.max_entries == 5
