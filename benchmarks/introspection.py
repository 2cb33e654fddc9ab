"""What a live token costs: a view that says ``require_active_token=True``.

Four applications built the same way, each with one view that returns the
caller's subject, called through their WSGI callables with one token:

- **local check only**: no introspection configured, the view without the option;
- **introspection configured, view not live**: what turning introspection on costs
  the views that do not ask for it;
- **live, answer cached**: the view with ``require_active_token=True``, the
  introspection answer in the cache (``okta.introspection_cache_ttl`` long enough);
- **live, no cache**: ``okta.introspection_cache_ttl = 0``, so every request calls
  the loopback issuer's ``/v1/introspect`` over https (client_secret_basic).

The first three run in passes that take turns, in a new random order each round;
each pass is divided by the local pass of its round and the median of those
ratios is reported. The uncached one makes real calls, so it runs fewer requests.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyramid.config import Configurator
from webob import Request

LOCAL = "local check only"
CONFIGURED = "introspection configured, view not live"
CACHED = "live, answer cached"
UNCACHED = "live, no cache (a call per request)"
#: The target: a live view with a cached answer costs at most this much more.
TARGET = 1.2


@dataclass
class IntrospectionResult:
    micros: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)
    rounds: int = 0
    requests: int = 0

    def targets(self) -> list[tuple[str, float, str, bool]]:
        ratio = self.ratios[CACHED]
        return [
            (
                "live-token view, answer cached / same view without introspection (in process)",
                ratio,
                f"≤ {TARGET}",
                ratio <= TARGET,
            )
        ]


def _subject(request: Any) -> dict[str, Any]:
    return {"sub": request.identity.subject}


def _app(issuer_url: str, *, introspection: dict[str, str] | None, live: bool) -> Any:
    settings = {"okta.issuer": issuer_url, "okta.jwks_refresh_interval": "0"}
    if introspection is not None:
        settings.update({f"okta.{key}": value for key, value in introspection.items()})
    config = Configurator(settings=settings)
    config.include("okta_pyramid")
    config.add_route("orders", "/orders")
    config.add_view(_subject, route_name="orders", renderer="json", require_active_token=live)
    return config.make_wsgi_app()


def run(
    issuer: Any,
    token: str,
    *,
    requests: int = 2000,
    uncached_requests: int = 200,
    rounds: int = 9,
    progress: Callable[[str], None] = lambda _: None,
) -> IntrospectionResult:
    """Measure against ``issuer`` (a ``tests.issuer.LoopbackIssuer``) with ``token``."""
    client = {
        "introspection_client_id": issuer.CLIENT_ID,
        "introspection_client_secret": issuer.CLIENT_SECRET,
    }
    apps = {
        LOCAL: _app(issuer.issuer, introspection=None, live=False),
        CONFIGURED: _app(
            issuer.issuer, introspection={**client, "introspection_cache_ttl": "3600"}, live=False
        ),
        CACHED: _app(
            issuer.issuer, introspection={**client, "introspection_cache_ttl": "3600"}, live=True
        ),
        UNCACHED: _app(
            issuer.issuer, introspection={**client, "introspection_cache_ttl": "0"}, live=True
        ),
    }
    environ = Request.blank(
        "/orders",
        headers={"Authorization": f"Bearer {token}", "Host": "127.0.0.1"},
        remote_addr="127.0.0.1",
    ).environ
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    def one_pass(app: Any, count: int) -> float:
        statuses.clear()
        began = time.perf_counter_ns()
        for _ in range(count):
            for _ in app(dict(environ), start_response):
                pass
        elapsed = time.perf_counter_ns() - began
        if any(not s.startswith("200") for s in statuses):
            raise AssertionError(f"unexpected answers: {sorted(set(statuses))}")
        return elapsed / count / 1000

    before = issuer.hits["/oauth2/default/v1/introspect"]
    for app in apps.values():
        one_pass(app, 20)  # keys and metadata fetched, the answer cached, code loaded
    in_turn = [LOCAL, CONFIGURED, CACHED]
    samples: dict[str, list[float]] = {name: [] for name in apps}
    ratios: dict[str, list[float]] = {name: [] for name in in_turn}
    for number in range(rounds):
        progress(f"introspection round {number + 1}/{rounds}")
        order = in_turn[:]
        random.shuffle(order)
        measured = {}
        for name in order:
            gc.collect()
            measured[name] = one_pass(apps[name], requests)
            samples[name].append(measured[name])
        for name in in_turn:
            ratios[name].append(measured[name] / measured[LOCAL])
        gc.collect()
        samples[UNCACHED].append(one_pass(apps[UNCACHED], uncached_requests))
    calls = issuer.hits["/oauth2/default/v1/introspect"] - before
    # Every uncached request asked the issuer; the cached ones did not.
    expected = 20 + 1 + rounds * uncached_requests
    if calls != expected:
        raise AssertionError(f"{calls} introspection calls, expected {expected}")
    result = IntrospectionResult(rounds=rounds, requests=requests)
    result.micros = {name: statistics.median(values) for name, values in samples.items()}
    result.ratios = {name: statistics.median(values) for name, values in ratios.items()}
    result.ratios[UNCACHED] = result.micros[UNCACHED] / result.micros[LOCAL]
    result.spread = {name: (min(values), max(values)) for name, values in ratios.items()}
    return result


def table(result: IntrospectionResult) -> str:
    lines = [
        "| view | µs/request | × local check only | lowest–highest round |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, micros in result.micros.items():
        low, high = result.spread.get(name, (None, None))
        spread = f"{low:.2f}–{high:.2f}" if low is not None else "—"
        lines.append(f"| {name} | {micros:.1f} | {result.ratios[name]:.2f} | {spread} |")
    return "\n".join(lines)
