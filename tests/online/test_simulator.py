"""Simulator: worlds load, the hidden tables behave, a short run goes through the collector API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tunepilot.exceptions import SpecError
from tunepilot.online._simulator import simulate, simulate_seed
from tunepilot.online._world import builtin_worlds, load_world

TINY = """
base: default
name: tiny
hours: 2
rate_per_s: 1.0
tick_s: 300
"""


def test_shipped_worlds_load_and_the_default_oracle_saves_35_to_45_percent() -> None:
    assert {"default", "aa", "cheap_hard", "drift", "price", "mix", "zero"} <= set(builtin_worlds())
    world = load_world("default")
    assert len(world.configurations) == 24
    quality, prices, shares, _ = world.state(0.0)
    tables = world.tables(quality, prices, samples=4000)
    premium = world.configurations.index(world.premium)
    cost_premium = float(tables["cost"][premium] @ shares)
    oracle = 0.0
    for d in range(3):
        ok = tables["quality"][:, d] >= tables["quality"][premium, d] - world.oracle_tolerance
        oracle += shares[d] * float(np.min(np.where(ok, tables["cost"][:, d], np.inf)))
    assert 0.35 <= 1 - oracle / cost_premium <= 0.45


def test_changes_apply_at_their_time() -> None:
    drift = load_world("drift")
    before, _, _, _ = drift.state(1.0)
    after, _, _, _ = drift.state(drift.hours / 2 + 0.1)
    cheap = list(drift.models).index("cheap")
    assert after[cheap, 0] == pytest.approx(before[cheap, 0] - 0.3)
    zero = load_world("zero")
    assert zero.state(8.0)[3] is False and zero.state(11.0)[3] is True


def test_bad_world_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="shipped: aa"):
        load_world("nowhere")
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: default\nname: bad\ndifficulties: {easy: {share: 1.0, input_tokens: [1, 1], output_tokens: 1}}\n")
    with pytest.raises(SpecError, match="easy, medium and hard"):
        load_world(bad)


def test_a_short_run_through_the_collector_api(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    world = load_world(path)
    result = simulate_seed(world, 3)
    assert result.calls > 5000
    assert result.rejected == 0
    # Every call and every feedback report went through the collector.
    assert result.accepted > result.calls
    assert result.cost["oracle"] < result.cost["premium"]
    assert result.quality["premium"] > result.quality["oracle"] - 0.02
    # The same requests and the same luck: the premium baseline is reproducible.
    again = simulate_seed(world, 3, api=False)
    assert again.cost["premium"] == pytest.approx(result.cost["premium"])
    summary, _ = simulate(world, [3, 4], api=False)
    for key in ("cost_reduction", "oracle_capture", "quality_delta_lower95",
                "p99_latency_within_budget", "rollbacks", "seeds"):
        assert key in summary
    assert summary["seeds"] == [3, 4]
    assert summary["cost_reduction_by_baseline"]["premium"] == 0.0
