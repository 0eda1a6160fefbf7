"""The dashboard benchmark runs end to end on a small sweep and study and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_dashboard_benchmark_smoke(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.dashboard", "--runs", "30", "--repeats", "1",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = tmp_path.glob("dashboard-*.json")
    report = json.loads(path.read_text())
    assert report["machine"]["versions"]["jinja2"]
    assert report["command"].endswith("--runs 30 --repeats 1 --out " + str(tmp_path))
    (result,) = report["results"]
    assert result["runs"] == 30 and result["database"] == "sqlite"
    timings = result["timings"]
    assert {"detail page (overview)", "runs tab (page 1)", "live JSON (polled)",
            "importance JSON", "study page (overview)", "study live JSON (polled)",
            "study importance JSON"} <= set(timings)
    for entry in timings.values():
        assert len(entry["server_ms"]) == 1 and entry["server_ms"][0] > 0
        assert entry["first_server_ms"] > 0
        assert entry["wall_ms"][0] >= entry["server_ms"][0] * 0.5
    # The sweep really holds the runs the pages show.
    assert timings["runs tab (page 1)"]["bytes"] > timings["best tab"]["bytes"]
    assert timings["study trials tab (page 1)"]["bytes"] > timings["study page (overview)"]["bytes"]
    assert result["detail_page_under_target"] is (result["detail_page_server_s"] < 2.0)
    table = subprocess.run(
        [sys.executable, "-m", "benchmarks.dashboard", "--report", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert table.startswith("| request | sqlite server ms (first; then median / max)")
    assert "| detail page (overview) |" in table and "| study live JSON (polled) |" in table
