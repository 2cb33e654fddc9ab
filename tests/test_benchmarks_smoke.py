"""The benchmark runs: ``python -m benchmarks --smoke`` with tiny counts.

It measures nothing here; it keeps the benchmark from rotting. Peers that are
not installed (okta-jwt-verifier, wrk) are skipped by the benchmark itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.loadgen import wrk_available

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "loadgen",
    [
        "python",
        pytest.param(
            "wrk", marks=pytest.mark.skipif(not wrk_available(), reason="wrk is not installed")
        ),
    ],
)
def test_benchmark_smoke_run(tmp_path: Path, loadgen: str) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--smoke",
            "--loadgen",
            loadgen,
            "--json",
            str(report),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "## In process" in done.stdout
    assert "## In process: a cached token with one issuer configured and with three" in (
        done.stdout
    )
    assert all(value > 0 for value in json.loads(report.read_text())["issuers"]["micros"].values())
    assert "## The application alone" in done.stdout
    assert "## End to end" in done.stdout
    data = json.loads(report.read_text())
    micros = data["inprocess"]["micros"]
    assert {
        "RSA verify alone",
        "okta_pyramid",
        "PyJWT decode, key preloaded",
        "PyJWT + PyJWKClient",
    } <= set(micros)
    assert all(value > 0 for kinds in micros.values() for value in kinds.values())
    live = data["introspection"]
    assert set(live["micros"]) == {
        "local check only",
        "introspection configured, view not live",
        "live, answer cached",
        "live, no cache (a call per request)",
    }
    assert all(value > 0 for value in live["micros"].values())
    assert "## In process: a view that needs a live token" in done.stdout
    assert set(data["wsgi"]["micros"]) == {
        "/api/hello",
        "/api/whoami, one token reused",
        "/api/whoami, distinct tokens",
    }
    workloads = data["e2e"]["workloads"]
    # The four workloads (DPoP among them), and the calibration one when the smoke
    # run's few requests measured any cost for okta_pyramid to calibrate with.
    assert len(workloads) == (5 if data["e2e"]["spin_us"] > 0 else 4)
    assert "/api/whoami, DPoP, one token, a new proof each request" in workloads
    assert "of the requests/s of /api/whoami with a reused Bearer token" in done.stdout
    assert all(w["rps"] > 0 for w in workloads.values())
    assert data["e2e"]["loadgen"] == loadgen
    # Behind nginx: skipped (and said so) where redis-server or nginx is missing.
    assert "## Behind nginx" in done.stdout
    if "deploy" in data:
        assert set(data["deploy"]["rps"]) == {"one process", "two processes"}
        assert data["deploy"]["redis_micros"] == pytest.approx(
            data["deploy"]["micros"]["DPoP check, Redis replay store"]
            - data["deploy"]["micros"]["DPoP check, in-process replay store"]
        )
        # And the wait for a replica (okta.shared_store_min_replicas = 1).
        micros = data["deploy"]["micros"]
        assert data["deploy"]["replica_wait_ratio"] == pytest.approx(
            micros["DPoP check, Redis replay store, okta.shared_store_min_replicas = 1"]
            / micros["DPoP check, Redis replay store"]
        )
