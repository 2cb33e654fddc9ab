"""``GET /metrics``: what the add-on did, in the Prometheus text format.

Off by default; ``okta.metrics = true`` turns it on (docs/metrics.md). The route is
public, as a scraper sends no token: keep it from the Internet at the proxy, or
serve the processes' own ports only to the scraper.

Each application has its own :class:`prometheus_client.CollectorRegistry`, so two
applications in one process (or one test after another) never share a count. Label
values are fixed codes (a refusal's ``reason``, a scheme's name), never a token, a
subject or a client id. Counts the token core keeps (key fetches, cache hits,
introspection calls, shared store failures) are read when scraped: the hot path
pays for none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from .active_token import LIVE_FAILURE
from .parts import okta_parts
from .tokens.introspection import IntrospectingVerifier
from .tokens.issuers import MultiIssuerVerifier

#: Every metric's name starts with this.
NAMESPACE = "okta_pyramid"
#: Introspection calls take a few milliseconds to a timeout (``okta.http_timeout``).
INTROSPECTION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The metrics of one application."""

    def __init__(self, registry: Registry) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "tokens_accepted",
            "Requests whose access token was accepted, by scheme",
            ["scheme"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.refused = Counter(
            "tokens_refused",
            "Requests whose credentials were refused or could not be "
            "judged, by reason (the reason code of the log line)",
            ["reason"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.replays = Counter(
            "dpop_replays_refused",
            "DPoP proofs refused because they were used before",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.introspection = Histogram(
            "introspection_seconds",
            "Introspection calls to the issuer, by outcome (active, inactive, failed)",
            ["outcome"],
            namespace=NAMESPACE,
            buckets=INTROSPECTION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_CoreCounts(registry))

    def count(self, verdict: Any, live_failure: Exception | None) -> None:
        """Count one request's verdict (``None``: its credentials were not looked at)."""
        failure = live_failure
        if failure is None and verdict is not None:
            if verdict.identity is not None:
                self.accepted.labels(verdict.identity.scheme).inc()
                return
            failure = verdict.failure
        if failure is None:
            return
        reason = getattr(failure, "reason", None) or "unknown"
        self.refused.labels(reason).inc()
        if reason == "dpop_replayed":
            self.replays.inc()

    def observe_introspection(self, seconds: float, outcome: str) -> None:
        self.introspection.labels(outcome).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _CoreCounts:
    """Reads, when scraped, the counts that the token core keeps as plain numbers."""

    def __init__(self, registry: Registry) -> None:
        self.pyramid_registry = registry

    def collect(self) -> Iterator[CounterMetricFamily]:
        registry = self.pyramid_registry
        # One family per count, a sample per issuer (the issuer's URL comes from the
        # settings, never from a token).
        fetches = _family("key_fetches", "Fetches of the issuer's key set")
        failures = _family("key_fetch_failures", "Fetches of the issuer's key set that failed")
        cache_hits = _family("token_cache_hits", "Tokens found in the verified-token cache")
        cache_misses = _family("token_cache_misses", "Tokens verified in full (cache misses)")
        for issuer, verifier in okta_parts(registry).verifiers.items():
            fetches.add_metric([issuer], verifier.keys.fetches)
            failures.add_metric([issuer], verifier.keys.fetch_failures)
            cache = verifier.token_cache
            if cache is not None:
                cache_hits.add_metric([issuer], cache.hits)
                cache_misses.add_metric([issuer], cache.misses)
        yield from (fetches, failures, cache_hits, cache_misses)
        introspectors = _introspectors(registry)
        if introspectors:
            hits = CounterMetricFamily(
                f"{NAMESPACE}_introspection_cache_hits",
                "Introspection answers reused, from this process's cache or the shared store",
                labels=["issuer", "cache"],
            )
            calls = _family("introspection_calls", "Introspection calls made to the issuer")
            for issuer, introspector in introspectors:
                own = introspector.cache
                hits.add_metric([issuer, "process"], own.hits if own is not None else 0)
                hits.add_metric([issuer, "shared"], introspector.shared_hits)
                calls.add_metric([issuer], introspector.calls)
            yield hits
            yield calls
        store = okta_parts(registry).shared_store
        if store is not None:
            yield _counter(
                "shared_store_failures",
                "Calls to the shared store that failed "
                "or took longer than okta.shared_store_timeout",
                store.failures,
            )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{NAMESPACE}_{name}", documentation, value=value)


def _family(name: str, documentation: str) -> CounterMetricFamily:
    return CounterMetricFamily(f"{NAMESPACE}_{name}", documentation, labels=["issuer"])


def _introspectors(registry: Registry) -> list[tuple[str, Any]]:
    """``(issuer, TokenIntrospector)`` of each issuer that introspects."""
    okta = okta_parts(registry)
    judge = okta.request_verifier.tokens
    judges = (
        judge.judges if isinstance(judge, MultiIssuerVerifier) else {okta.settings.issuer: judge}
    )
    return [
        (issuer, found.introspector)
        for issuer, found in judges.items()
        if isinstance(found, IntrospectingVerifier)
    ]


def _metrics(registry: Registry) -> Metrics:
    metrics = okta_parts(registry).metrics
    if metrics is None:
        raise RuntimeError("okta_pyramid.metrics has not been included")
    return metrics


def metrics_view(request: Request) -> Response:
    """The application's metrics, in the Prometheus text format."""
    response = Response(body=_metrics(request.registry).exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.cache_control = "no-store"
    return response


def metrics_tween_factory(
    handler: Callable[[Request], Response], registry: Registry
) -> Callable[[Request], Response]:
    """Counts each request's verdict once it has been answered."""
    metrics = _metrics(registry)
    policy = okta_parts(registry).policy

    def metrics_tween(request: Request) -> Response:
        try:
            return handler(request)
        finally:
            metrics.count(policy.judged(request), request.__dict__.get(LIVE_FAILURE))

    return metrics_tween


def includeme(config: Configurator) -> None:
    """``/metrics``, the counting tween and the introspection latency hook."""
    registry = config.registry
    metrics = okta_parts(config.registry).metrics = Metrics(config.registry)
    for _, introspector in _introspectors(registry):
        introspector.call_observer = metrics.observe_introspection
    config.add_tween("okta_pyramid.metrics.metrics_tween_factory")
    config.add_route("okta.metrics", "/metrics")
    config.add_view(
        metrics_view,
        route_name="okta.metrics",
        request_method=("GET", "HEAD"),
        permission=NO_PERMISSION_REQUIRED,
    )
