"""The sweep server benchmark runs end to end on a tiny workload and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sweep_server_benchmark_smoke(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.sweep_server", "--db", "sqlite", "--agents", "1,2",
         "--trials", "3", "--history", "5", "--repeats", "1", "--log-behind", "50",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = tmp_path.glob("sweep-server-*.json")
    report = json.loads(path.read_text())
    assert report["machine"]["versions"]["optuna"]
    assert report["command"].endswith("--log-behind 50 --out " + str(tmp_path))
    (result,) = report["results"]
    assert [e["agents"] for e in result["throughput"]] == [1, 2]
    for entry in result["throughput"]:
        for side in ("server", "optuna"):
            assert entry[side]["completed"] == entry["agents"] * 3
            assert len(entry[side]["latencies_ms"]) == entry["agents"] * 3
            assert entry[side]["trials_per_s"] > 0
    assert {row.get("agents") or row.get("existing") for row in report["summary"]} == {1, 2, 5}
    (behind,) = result["log_behind"]
    assert behind["behind"] == 50 and behind["runs"] == 3
    assert [len(behind["latencies_ms"][name]) for name in ("quiet", "busy")] == [3, 3]
    assert 0 < behind["quiet_p50_ms"] <= behind["quiet_p99_ms"]
    table = subprocess.run(
        [sys.executable, "-m", "benchmarks.sweep_server", "--report", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert table.startswith("| database | workload |") and "| sqlite | 2 agents × 3 trials |" in table
    assert "| sqlite | 50 | " in table
