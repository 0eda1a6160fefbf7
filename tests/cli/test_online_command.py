"""``tunepilot online simulate`` and ``tunepilot online worlds``."""

from __future__ import annotations

import json
import subprocess
import sys
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


def test_simulate_with_one_seed_prints_strict_json(tmp_path: Path) -> None:
    world = tmp_path / "tiny.yaml"
    world.write_text(TINY)
    done = subprocess.run(
        [sys.executable, "-c", "from tunepilot.cli import main; main()", "online", "simulate",
         "--world", str(world), "--seeds", "1", "--json"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    summary = json.loads(done.stdout, parse_constant=refuse)
    assert summary["seeds"] == [1]
    assert summary["quality_delta_lower95"] is None  # one seed bounds nothing


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


def test_apps_decisions_rollout_and_control_against_a_live_server(tmp_path: Path) -> None:
    import httpx

    from tunepilot.testing import SweepServer

    with SweepServer(f"sqlite:///{tmp_path}/online.db") as server:
        created = httpx.post(f"{server.url}/api/v1/online/apps", json={
            "name": "bot", "baseline": "big",
            "variants": [{"id": "big", "model": "big"}, {"id": "small", "model": "small"}]})
        assert created.status_code == 201, created.text
        listed = runner.invoke(app, ["online", "apps", "--url", server.url])
        assert listed.exit_code == 0 and "bot: 2 variants, baseline big" in listed.output
        paused = runner.invoke(app, ["online", "pause", "bot", "--url", server.url])
        assert paused.exit_code == 0 and "bot has no rollout" in paused.output
        shown = runner.invoke(app, ["online", "decisions", "bot", "--url", server.url, "--json"])
        assert shown.exit_code == 0, shown.output
        assert [d["kind"] for d in json.loads(shown.output)] == ["pause"]
        table = runner.invoke(app, ["online", "decisions", "bot", "--url", server.url])
        assert "paused by a user" in table.output
        missing = runner.invoke(app, ["online", "rollout", "ghost", "--url", server.url])
        assert missing.exit_code == 2 and "404" in missing.output
        kept = runner.invoke(app, ["online", "delete", "bot", "--url", server.url], input="n\n")
        assert kept.exit_code == 1 and "Aborted" in kept.output
        deleted = runner.invoke(app, ["online", "delete", "bot", "--yes", "--url", server.url])
        assert deleted.exit_code == 0 and "deleted bot" in deleted.output
        listed = runner.invoke(app, ["online", "apps", "--url", server.url, "--json"])
        assert json.loads(listed.output) == []
        again = runner.invoke(app, ["online", "delete", "bot", "--yes", "--url", server.url])
        assert again.exit_code == 2 and "404" in again.output
