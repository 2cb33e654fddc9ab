"""``/metrics``: off by default; when on, it counts what happened, per application, and
never names a token, a subject or a client."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import webtest
from prometheus_client.parser import text_string_to_metric_families
from pyramid.exceptions import ConfigurationError

from okta_pyramid.settings import parse_settings

from .helpers import DPoPClient, bearer, metric_value
from .issuer import LoopbackIssuer


def samples(app: webtest.TestApp) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, by name and labels."""
    response = app.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert response.headers["Cache-Control"] == "no-store"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_off_by_default(make_app: Callable[..., webtest.TestApp]) -> None:
    app = make_app()
    assert app.get("/metrics", status=404).json["error"] == "not_found"
    assert app.app.registry.okta.metrics is None


def test_counts_what_happened(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer
) -> None:
    app = make_app(metrics="true")
    token = issuer.mint(cid="0oa-secret-client-id", sub="carol@example.com")
    for _ in range(3):
        app.get("/api/whoami", headers=bearer(token))
    app.get("/api/whoami", headers=bearer(issuer.mint(aud="api://other")), status=401)
    app.get("/api/whoami", headers=bearer("not-a-jwt"), status=401)
    client = DPoPClient(issuer)
    headers = client.headers()
    app.get("/api/whoami", headers=headers)
    app.get("/api/whoami", headers=headers, status=401)  # the same proof again
    app.get("/api/hello")  # no token: not counted
    found = samples(app)
    assert metric_value(found, "okta_pyramid_tokens_accepted_total", scheme="Bearer") == 3
    assert metric_value(found, "okta_pyramid_tokens_accepted_total", scheme="DPoP") == 1
    assert metric_value(found, "okta_pyramid_tokens_refused_total", reason="wrong_audience") == 1
    assert metric_value(found, "okta_pyramid_tokens_refused_total", reason="malformed") == 1
    assert metric_value(found, "okta_pyramid_tokens_refused_total", reason="dpop_replayed") == 1
    assert metric_value(found, "okta_pyramid_dpop_replays_refused_total") == 1
    assert metric_value(found, "okta_pyramid_key_fetches_total") == 1
    assert metric_value(found, "okta_pyramid_key_fetches_total", issuer=issuer.issuer) == 1
    assert metric_value(found, "okta_pyramid_key_fetch_failures_total") == 0
    # Three requests with one token: verified once, then found in the cache.
    assert metric_value(found, "okta_pyramid_token_cache_hits_total") >= 2
    text = app.get("/metrics").text
    for secret in (
        token,
        token.split(".")[2],
        "carol",
        "0oa-secret-client-id",
        client.token,
        client.jkt,
    ):
        assert secret not in text


def test_introspection_and_the_shared_store(
    make_app: Callable[..., webtest.TestApp], issuer: LoopbackIssuer, redis_url: str
) -> None:
    app = make_app(
        metrics="true",
        shared_store=redis_url,
        introspection_client_id=issuer.CLIENT_ID,
        introspection_client_secret=issuer.CLIENT_SECRET,
    )
    other = make_app(
        metrics="true",
        shared_store=redis_url,
        introspection_client_id=issuer.CLIENT_ID,
        introspection_client_secret=issuer.CLIENT_SECRET,
    )
    token = issuer.mint(scp=["messages:write"])
    for _ in range(2):
        app.post_json("/api/messages", {"text": "hi"}, headers=bearer(token), status=201)
    other.post_json("/api/messages", {"text": "hi"}, headers=bearer(token), status=201)
    revoked = issuer.mint(scp=["messages:write"])
    issuer.revoke(revoked)
    app.post_json("/api/messages", {"text": "hi"}, headers=bearer(revoked), status=401)
    found = samples(app)
    assert metric_value(found, "okta_pyramid_introspection_calls_total") == 2
    assert metric_value(found, "okta_pyramid_introspection_seconds_count", outcome="active") == 1
    assert metric_value(found, "okta_pyramid_introspection_seconds_count", outcome="inactive") == 1
    assert metric_value(found, "okta_pyramid_introspection_cache_hits_total", cache="process") == 1
    assert metric_value(found, "okta_pyramid_tokens_refused_total", reason="inactive") == 1
    assert metric_value(found, "okta_pyramid_shared_store_failures_total") == 0
    # The other application counts for itself: its own registry.
    found = samples(other)
    assert metric_value(found, "okta_pyramid_introspection_calls_total") == 0
    assert metric_value(found, "okta_pyramid_introspection_cache_hits_total", cache="shared") == 1
    assert metric_value(found, "okta_pyramid_tokens_accepted_total", scheme="Bearer") == 1
    assert metric_value(found, "okta_pyramid_tokens_refused_total", reason="inactive") == 0


def test_the_setting() -> None:
    base = {"okta.issuer": "https://dev-1.okta.com/oauth2/default"}
    assert parse_settings(base).metrics is False
    assert parse_settings({**base, "okta.metrics": "true"}).metrics is True
    with pytest.raises(ConfigurationError, match=re.escape("okta.metrics: must be true or")):
        parse_settings({**base, "okta.metrics": "sometimes"})
