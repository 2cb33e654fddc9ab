"""The DPoP benchmark runs (tiny counts: it measures nothing here, it must not rot)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.dpop import measure

REPO = Path(__file__).resolve().parents[2]


def test_the_dpop_benchmark_measures_every_side() -> None:
    result = measure(proofs=5, rounds=3)
    assert result.es256_micros > 0 and result.dpop_micros > 0 and result.request_micros > 0
    assert result.ratio > 0 and result.request_ratio > 0
    low, high = result.request_spread
    assert low <= result.request_ratio <= high
    # The target is judged on the whole request: the cached token and the proof.
    assert result.met == (result.request_ratio <= 1.25)
    [(_goal, measured, target, met)] = result.targets()
    assert measured == result.request_ratio and target == "<= 1.25" and met == result.met


def test_the_dpop_benchmark_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.dpop", "--proofs", "5", "--rounds", "3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ratio:" in done.stdout


@pytest.mark.e2e
def test_the_main_benchmark_reports_the_dpop_target(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--only", "dpop", "--json", str(report)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "a DPoP request with a cached access token" in done.stdout
    data = json.loads(report.read_text())
    assert data["dpop"]["request_ratio"] > 0 and data["dpop"]["proof_ratio"] > 0
    assert all(value > 0 for value in data["dpop"]["micros"].values())
    assert [t["target"] for t in data["targets"]] == ["<= 1.25"]
