"""The ingest benchmark runs end to end on a small load and its counts are exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_online_ingest_benchmark_smoke(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.online_ingest", "--rate", "3000", "--duration", "3",
         "--batch", "200", "--senders", "2", "--duplicates", "0.05", "--out-of-order", "0.05",
         "--step-interval", "0.5", "--idle", "1", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = tmp_path.glob("online-ingest-*.json")
    report = json.loads(path.read_text())
    summary = report["summary"]
    assert report["machine"]["versions"]["fastapi"]
    assert report["load"]["failed_requests"] == 0
    assert report["load"]["distinct_sent"] > 1000
    assert (summary["lost"], summary["double_counted"]) == (0, 0)
    assert summary["repeats_sent"] > 0 and summary["repeats_recognised"] == summary["repeats_sent"]
    assert summary["out_of_order_sent"] > 0
    assert summary["windows_match"] is True
    assert report["server_counts"]["rejected"] == 0
    assert summary["steps"] >= 1 and summary["step_p99_ms"] is not None
    assert summary["split_requests"] > 0 and summary["idle_rss_mb"] > 0
    table = subprocess.run(
        [sys.executable, "-m", "benchmarks.online_ingest", "--report", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert table.startswith("| measure | value |") and "| lost / double-counted | 0 / 0 |" in table
