"""The online-optimizer simulation benchmark runs end to end on a tiny world and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_online_simulation_benchmark_smoke(tmp_path: Path) -> None:
    world = tmp_path / "tiny.yaml"
    world.write_text("base: drift\nname: tiny-drift\nhours: 2\nrate_per_s: 1.0\ntick_s: 300\n")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.online", "--worlds", str(world), "--seeds", "2",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = tmp_path.glob("online-sim-*.json")
    report = json.loads(path.read_text())
    assert report["seeds"] == [1, 2]
    assert report["machine"]["versions"]["ddsketch"]
    assert report["command"].endswith(f"--out {tmp_path}")
    entry = report["worlds"][str(world)]
    assert len(entry["per_seed"]) == 2
    assert entry["summary"]["world"] == "tiny-drift"
    assert entry["per_seed"][0]["calls"] > 1000
    table = subprocess.run(
        [sys.executable, "-m", "benchmarks.online", "--report", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert table.startswith("| world | cost saved |")
