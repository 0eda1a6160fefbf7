"""Smoke runs of the benchmark harnesses: 2 tasks, 2 seeds, budget 5 (real objectives)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.slow
@pytest.mark.parametrize(
    ("suite", "tasks"), [("synthetic", "branin,ackley5-shifted"), ("bayesmark", "SVM-breast_cancer,DT-digits")]
)
def test_hpo_harness_smoke_run_and_report(tmp_path, suite, tasks):
    out = tmp_path / "smoke.json"
    run("-m", "benchmarks.hpo", "--suite", suite, "--tasks", tasks,
        "--samplers", "random,tpe,blend-informative,blend-misleading",
        "--seeds", "2", "--budget", "5", "--out", str(out))
    data = json.loads(out.read_text())
    assert data["suite"] == suite and data["seeds"] == [0, 1]
    assert {"machine", "versions", "command"} <= set(data)
    assert len(data["results"]) == 2 * 2 * 4
    assert all(len(r["values"]) == 5 for r in data["results"])
    report = run("-m", "benchmarks.hpo", "--report", str(out)).stdout
    assert "| sampler | regret @5 |" in report
    assert "controlled prior: informative (not an LLM)" in report


@pytest.mark.slow
def test_overhead_benchmark_smoke_run(tmp_path):
    out = tmp_path / "overhead.json"
    table = run("-m", "benchmarks.overhead", "--sizes", "20", "--trials", "2", "--repeats", "1",
                "--out", str(out)).stdout
    data = json.loads(out.read_text())
    assert set(data["summary"]["20"]) >= {"tpe_ms", "blend_ms", "blend_over_tpe"}
    assert "| 20 |" in table
