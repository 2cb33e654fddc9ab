"""The DPoP benchmark runs (tiny counts: it measures nothing here, it must not rot)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.dpop import measure

REPO = Path(__file__).resolve().parents[2]


def test_the_dpop_benchmark_measures_both_sides() -> None:
    result = measure(proofs=5, rounds=3)
    assert result.dpop_micros > 0 and result.es256_micros > 0 and result.ratio > 0
    assert result.met == (result.ratio <= 1.25)


def test_the_dpop_benchmark_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.dpop", "--proofs", "5",
                           "--rounds", "3"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ratio:" in done.stdout
