"""``tunepilot online simulate`` and ``tunepilot online worlds``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tunepilot.cli import app

runner = CliRunner()

TINY = "base: default\nname: tiny\nhours: 1\nrate_per_s: 1.0\ntick_s: 300\n"


def test_simulate_prints_the_json_summary(tmp_path: Path) -> None:
    world = tmp_path / "tiny.yaml"
    world.write_text(TINY)
    result = runner.invoke(app, ["online", "simulate", "--world", str(world), "--seeds", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["seeds"] == [1, 2]
    assert summary["path"] == "collector API (in-process ASGI)"
    for key in ("cost_reduction", "oracle_capture", "quality_delta_lower95",
                "p99_latency_within_budget", "rollbacks"):
        assert key in summary


def test_simulate_table_and_a_bad_world(tmp_path: Path) -> None:
    world = tmp_path / "tiny.yaml"
    world.write_text(TINY)
    result = runner.invoke(app, ["online", "simulate", "--world", str(world), "--seeds", "1",
                                 "--first-seed", "1001", "--direct"])
    assert result.exit_code == 0, result.output
    assert "premium" in result.output and "oracle capture" in result.output
    bad = runner.invoke(app, ["online", "simulate", "--world", "atlantis"])
    assert bad.exit_code == 2
    assert "no world file 'atlantis'" in bad.output


def test_worlds_lists_the_shipped_worlds() -> None:
    result = runner.invoke(app, ["online", "worlds"])
    assert result.exit_code == 0
    assert "default:" in result.output and "aa:" in result.output
