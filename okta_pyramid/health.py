"""Health checks for load balancers and orchestrators: ``GET /healthz`` and ``GET /readyz``.

Both are public (even with ``okta.protect_all``), read no credentials, do no I/O
(but the shared store's PING below) and answer in well under a millisecond, so
probes may call them as often as they like.

- ``/healthz``: the process is alive and answering. 200, always.
- ``/readyz``: the issuer's signing keys are held and fresh, so a token can be judged
  now. 200, or 503 with ``{"status": "not_ready", "reason": ...}``. With several
  issuers, ``issuers`` gives each one's state, and it is 200 only when all are ready.
  With ``okta.shared_store`` it also says whether the store answers (``shared_store``:
  ``ok`` or ``unavailable``: one PING, bounded by ``okta.shared_store_timeout``),
  without changing the status: every process shares the store, so failing them all
  would stop the requests that need no shared state too.

The application includes them; an application that uses okta_pyramid as an add-on
opts in with ``config.include("okta_pyramid.health")`` (with ``route_prefix`` to
move them).
"""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from .parts import okta_parts
from .tokens.jwks import KeySet
from .tokens.refresher import KeyRefresher

#: Reason codes of a 503 from ``/readyz``.
NOT_LOADED = "keys_not_loaded"
STALE = "keys_stale"
#: With several issuers: one or more of them is not ready (each says why).
ISSUERS_NOT_READY = "issuers_not_ready"

_DESCRIPTIONS = {
    NOT_LOADED: "the issuer's signing keys have not been fetched yet",
    STALE: "the issuer's signing keys could not be refreshed for too long",
}


def readiness(keys: KeySet, refresher: KeyRefresher | None) -> tuple[str | None, dict[str, Any]]:
    """``(reason, details)``: ``reason`` is ``None`` when ready."""
    age = keys.age
    details: dict[str, Any] = {"keys": len(keys.kids)}
    if age is not None:
        details["keys_age_seconds"] = round(age, 1)
    if age is None or not keys.kids:
        return NOT_LOADED, details
    if refresher is not None and age > refresher.stale_after:
        return STALE, details
    return None, details


def _json(status: int, body: dict[str, Any]) -> Response:
    response = Response(status=status, json_body=body)
    # A cached answer would hide a change of state from the next probe.
    response.cache_control = "no-store"
    return response


def healthz(request: Request) -> Response:
    """The process is alive."""
    return _json(200, {"status": "ok"})


def readyz(request: Request) -> Response:
    """The issuers' keys are loaded and fresh; 503 with the reason otherwise.

    With several issuers (``okta.issuer`` lines) it answers 200 only when every one
    is ready, and 503 naming those that are not: their tokens get 503 while the
    others' are served, but a probe asks whether this process can judge any token.
    """
    registry = request.registry
    okta = okta_parts(registry)
    verifiers = okta.verifiers
    refreshers = okta.key_refreshers
    store = okta.shared_store
    shared = {} if store is None else {"shared_store": "ok" if store.ping() else "unavailable"}
    if len(verifiers) == 1:
        reason, details = readiness(next(iter(verifiers.values())).keys, okta.key_refresher)
        if reason is None:
            return _json(200, {"status": "ready", **details, **shared})
        return _json(
            503,
            {
                "status": "not_ready",
                "reason": reason,
                "description": _DESCRIPTIONS[reason],
                **details,
                **shared,
            },
        )
    issuers = []
    for issuer, verifier in verifiers.items():
        reason, details = readiness(verifier.keys, refreshers.get(issuer))
        state = {"issuer": issuer, "status": "ready" if reason is None else "not_ready"}
        if reason is not None:
            state.update(reason=reason, description=_DESCRIPTIONS[reason])
        issuers.append({**state, **details})
    waiting = [state["issuer"] for state in issuers if state["status"] != "ready"]
    if not waiting:
        return _json(200, {"status": "ready", "issuers": issuers, **shared})
    return _json(
        503,
        {
            "status": "not_ready",
            "reason": ISSUERS_NOT_READY,
            "description": f"not ready: {', '.join(waiting)}",
            "not_ready": waiting,
            "issuers": issuers,
            **shared,
        },
    )


def includeme(config: Configurator) -> None:
    config.add_route("okta.healthz", "/healthz")
    config.add_route("okta.readyz", "/readyz")
    for route, view in (("okta.healthz", healthz), ("okta.readyz", readyz)):
        config.add_view(
            view,
            route_name=route,
            request_method=("GET", "HEAD"),
            permission=NO_PERMISSION_REQUIRED,
        )
