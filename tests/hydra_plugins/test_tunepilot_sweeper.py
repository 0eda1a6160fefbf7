"""The Hydra sweeper plugin: discovered by Hydra, sweeping a real Hydra app in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

APP = """\
import hydra
from omegaconf import DictConfig
from tunepilot.runner import get_reporter

@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg: DictConfig) -> float:
    if cfg.kind == "broken":
        raise RuntimeError("diverged")
    reporter = get_reporter()
    value = 0.0
    for epoch in range(6):
        value = (cfg.x - 1) ** 2 + 1 / (epoch + 1)
        reporter.report(epoch, value)
        if reporter.should_prune():
            reporter.prune()
    return value + (cfg.kind == "b") + cfg.offset

if __name__ == "__main__":
    main()
"""

CONFIG = """\
x: 0.0
kind: a
offset: 0
"""


def sweep(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "config.yaml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")}
    return subprocess.run(
        [sys.executable, "app.py", "--multirun", "hydra/sweeper=tunepilot",
         f"hydra.sweep.dir={tmp_path / 'sweep'}", f"hydra.sweeper.storage={db(tmp_path)}",
         "hydra.sweeper.study_name=app", "hydra.sweeper.seed=0", *args],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300, check=False,
    )


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sweep.db'}"


def trials(tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="app", storage=db(tmp_path)).trials


def test_hydra_discovers_the_sweeper() -> None:
    code = textwrap.dedent("""\
        from hydra.core.plugins import Plugins
        from hydra.plugins.sweeper import Sweeper
        print([p.__name__ for p in Plugins.instance().discover(Sweeper)])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert "TunepilotSweeper" in done.stdout


@pytest.mark.slow
def test_a_sweep_runs_the_trials_and_writes_the_results(tmp_path: Path) -> None:
    done = sweep(tmp_path, "hydra.sweeper.n_trials=6", "x=interval(-2, 2)", "kind=choice(a, b)",
                 "offset=10")
    assert done.returncode == 0, done.stderr[-3000:]
    stored = trials(tmp_path)
    assert len(stored) == 6 and all(t.state == TrialState.COMPLETE for t in stored)
    for t in stored:
        assert -2 <= t.params["x"] <= 2 and t.params["kind"] in ("a", "b")
        expected = (t.params["x"] - 1) ** 2 + 1 / 6 + (t.params["kind"] == "b") + 10
        assert t.value == pytest.approx(expected)  # the fixed override reached the app
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    best = min(stored, key=lambda t: t.value or 0)
    assert results["best_value"] == best.value and results["best_params"] == best.params
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == [
        str(i) for i in range(6)]


@pytest.mark.slow
def test_pruning_failures_and_resuming(tmp_path: Path) -> None:
    args = ["x=interval(-2, 2)", "kind=choice(a, broken)",
            "hydra.sweeper.pruner={name: median, n_startup_trials: 2}"]
    done = sweep(tmp_path, "hydra.sweeper.n_trials=12", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    stored = trials(tmp_path)
    states = {t.state for t in stored}
    assert {TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE} <= states
    failed = [t for t in stored if t.state == TrialState.FAIL]
    assert all(t.params["kind"] == "broken" for t in failed)
    assert all(t.user_attrs["fail_reason"] == "RuntimeError: diverged" for t in failed)

    again = sweep(tmp_path, "hydra.sweeper.n_trials=12", *args)
    assert again.returncode == 0 and len(trials(tmp_path)) == 12  # the budget is used up
    more = sweep(tmp_path, "hydra.sweeper.n_trials=14", *args)
    assert more.returncode == 0 and len(trials(tmp_path)) == 14


def test_a_bad_sampler_is_named(tmp_path: Path) -> None:
    done = sweep(tmp_path, "hydra.sweeper.sampler=bayes", "x=interval(-2, 2)")
    assert done.returncode != 0
    assert "hydra.sweeper: sampler.name: Input should be 'llm', 'blend'" in done.stderr


def test_nothing_to_sweep_is_named(tmp_path: Path) -> None:
    done = sweep(tmp_path, "x=1")
    assert done.returncode != 0
    assert "hydra.sweeper.params: no parameter to sweep" in done.stderr


@pytest.mark.slow
def test_a_blend_sweep_starts_from_beliefs_and_an_earlier_study(tmp_path: Path) -> None:
    blend = ["hydra.sweeper.sampler={name: blend, model: null}", "x=interval(-2, 2)"]
    done = sweep(tmp_path, "hydra.sweeper.n_trials=4", *blend,
                 "hydra.sweeper.priors={x: {value: 1, confidence: high}}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert {s for t in trials(tmp_path) for s in t.user_attrs.get("llm.prior_sources", [])} == {
        "user"}
    later = sweep(tmp_path, "hydra.sweeper.n_trials=3", *blend, "hydra.sweeper.study_name=later",
                  "hydra.sweeper.prior_from=app")
    assert later.returncode == 0, later.stderr[-3000:]
    stored = optuna.load_study(study_name="later", storage=db(tmp_path)).trials
    assert any("study" in t.user_attrs.get("llm.prior_sources", []) for t in stored)


@pytest.mark.parametrize(("args", "message"), [
    (["hydra.sweeper.priors={x: 5}"],
     "hydra.sweeper.priors.x: prior 5 is outside the parameter's range (float in [-2, 2])"),
    (["hydra.sweeper.prior_from=nope"], "hydra.sweeper: prior_from: no study named 'nope'"),
])
def test_a_bad_prior_is_named(tmp_path: Path, args: list[str], message: str) -> None:
    optuna.create_study(study_name="other", storage=db(tmp_path))
    done = sweep(tmp_path, "hydra.sweeper.sampler={name: blend, model: null}",
                 "x=interval(-2, 2)", *args)
    assert done.returncode != 0
    assert message in done.stderr
