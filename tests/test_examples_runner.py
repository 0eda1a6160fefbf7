"""The runner's examples, end to end: the pruning spec and the Hydra app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TUNEPILOT_STORAGE"}
    return subprocess.run([sys.executable, "-c", "from tunepilot.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=570,
                          check=False)


@pytest.mark.slow
def test_pruning_saves_epochs_at_the_same_best_value(tmp_path: Path) -> None:
    spec = EXAMPLES / "pruning" / "spec.yaml"
    storage = f"sqlite:///{tmp_path / 'pruning.db'}"
    done = cli("run", str(spec), "--json", "--storage", storage, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    pruned, unpruned = json.loads(done.stdout)["studies"]
    assert (pruned["study_name"], unpruned["study_name"]) == ("sgd-pruned", "sgd-unpruned")
    assert pruned["n_trials"] == unpruned["n_trials"] == 30
    assert pruned["states"].get("PRUNED", 0) > 0 and unpruned["states"] == {"COMPLETE": 30}
    # Every reported step is one trained epoch.
    assert pruned["steps"] <= 0.6 * unpruned["steps"], (pruned["steps"], unpruned["steps"])
    assert abs(pruned["best_value"] - unpruned["best_value"]) <= 0.02 * unpruned["best_value"]
    study = optuna.load_study(study_name="sgd-pruned", storage=storage)
    assert sum(len(t.intermediate_values) for t in study.trials) == pruned["steps"]

    again = cli("run", str(spec), "--json", "--storage", storage, cwd=tmp_path)
    assert [s["n_trials"] for s in json.loads(again.stdout)["studies"]] == [0, 0]


@pytest.mark.slow
def test_the_hydra_app_sweeps_ten_trials(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "hydra_app" / "train.py"), "--multirun",
         "hydra/sweeper=tunepilot", f"hydra.sweep.dir={sweep_dir}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=570, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="hydra-sgd-digits",
                              storage=f"sqlite:///{sweep_dir / 'tunepilot.db'}")
    assert len(study.trials) == 10
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == study.best_value > 0.9
    assert results["best_params"] == study.best_params
    assert set(results["best_params"]) == {"model.loss", "model.alpha", "model.eta0"}


@pytest.mark.slow
def test_the_phases_hand_their_best_trials_forward(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'phases.db'}"
    done = cli("run", str(EXAMPLES / "phases" / "spec.yaml"), "--json", "--storage", storage,
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)["studies"]
    assert [(r["study_name"], r["n_trials"], r["states"]) for r in results] == [
        ("foundation", 30, {"COMPLETE": 30}), ("reward", 15, {"COMPLETE": 15}),
        ("finetune", 10, {"COMPLETE": 10})]
    # A phase trained on more data reaches a lower validation loss.
    assert results[0]["best_value"] > results[1]["best_value"] > results[2]["best_value"]
    for name, earlier in (("reward", "foundation"), ("finetune", "reward")):
        trials = optuna.load_study(study_name=name, storage=storage).trials
        shaped = [t for t in trials if "study" in t.user_attrs.get("llm.prior_sources", [])]
        assert shaped, f"no trial of {name} was shaped by {earlier}'s best trials"
    first = optuna.load_study(study_name="foundation", storage=storage).trials
    assert not any(t.user_attrs.get("llm.prior_sources") for t in first)
