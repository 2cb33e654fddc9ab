"""MultiIssuerVerifier: choosing the issuer, and the cached token's short path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from okta_pyramid.tokens import AccessTokenVerifier, MultiIssuerVerifier
from okta_pyramid.tokens import issuers as issuers_module
from okta_pyramid.tokens.exceptions import InvalidIssuer, MalformedToken

from ..issuer import LoopbackIssuer, SigningKey, rsa_key


@pytest.fixture
def second() -> Iterator[LoopbackIssuer]:
    server = LoopbackIssuer()
    server.audience = "api://partners"
    server.keys = [SigningKey("partners-1", rsa_key(7))]
    yield server
    server.close()


@pytest.fixture
def verifier(issuer: LoopbackIssuer, second: LoopbackIssuer) -> MultiIssuerVerifier:
    return MultiIssuerVerifier(
        [
            AccessTokenVerifier(issuer.issuer, issuer.audience, http_timeout=2),
            AccessTokenVerifier(second.issuer, second.audience, http_timeout=2),
        ]
    )


def test_a_cached_token_is_found_by_its_digest_without_reading_iss(
    verifier: MultiIssuerVerifier,
    issuer: LoopbackIssuer,
    second: LoopbackIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[str] = []
    original = issuers_module.unverified_issuer

    def counting(token: str) -> object:
        reads.append(token)
        return original(token)

    monkeypatch.setattr(issuers_module, "unverified_issuer", counting)
    for server in (issuer, second):
        token = server.mint()
        first = verifier.verify_token(token)
        assert first.issuer == server.issuer
        assert verifier.verify_token(token) is first
        assert reads.count(token) == 1


def test_a_lost_route_only_costs_a_decode(
    verifier: MultiIssuerVerifier, second: LoopbackIssuer
) -> None:
    token = second.mint()
    first = verifier.verify_token(token)
    verifier._routes.clear()
    assert verifier.verify_token(token) is first  # from the partners' cache again
    cache = verifier.verifiers[second.issuer].token_cache
    assert cache is not None
    assert cache.hits == 1


def test_the_route_is_bounded(issuer: LoopbackIssuer, second: LoopbackIssuer) -> None:
    verifier = MultiIssuerVerifier(
        [
            AccessTokenVerifier(issuer.issuer, issuer.audience, token_cache_size=1),
            AccessTokenVerifier(second.issuer, second.audience, token_cache_size=1),
        ]
    )
    verifier._max_routes = 3
    for _ in range(7):
        verifier.verify_token(issuer.mint())
        assert len(verifier._routes) <= 3


@pytest.mark.parametrize("token", ["a.b", "abc", "x.y.z", "e30.e30.x", "e30.W10.x"])
def test_what_names_no_issuer_is_refused(
    verifier: MultiIssuerVerifier, token: str, issuer: LoopbackIssuer, second: LoopbackIssuer
) -> None:
    with pytest.raises((MalformedToken, InvalidIssuer)):
        verifier.verify_token(token)
    assert sum(issuer.hits.values()) + sum(second.hits.values()) == 0


def test_it_refuses_what_it_cannot_serve(issuer: LoopbackIssuer) -> None:
    one = AccessTokenVerifier(issuer.issuer, issuer.audience)
    with pytest.raises(ValueError, match="at least one issuer"):
        MultiIssuerVerifier([])
    with pytest.raises(ValueError, match="given twice"):
        MultiIssuerVerifier([one, AccessTokenVerifier(issuer.issuer, issuer.audience)])
    with pytest.raises(ValueError, match="verifies tokens of"):
        MultiIssuerVerifier({"https://elsewhere.example": one})
    with pytest.raises(ValueError, match="needs an issuer that introspects|opaque tokens"):
        MultiIssuerVerifier([one], opaque=issuer.issuer)
    with pytest.raises(ValueError, match="same leeway"):
        MultiIssuerVerifier([one, AccessTokenVerifier(issuer.issuer + "2", leeway=5)])
