"""The training-loop reporter: in an objective, outside any study, and the pruners behind it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tunepilot.exceptions import SpecError
from tunepilot.runner import Reporter, get_reporter, load_spec, make_pruner, run_study
from tunepilot.runner._spec import PrunerSpec

# Each trial trains for 10 "epochs"; x decides how good it gets. Bad trials are clearly
# worse at every epoch, so a pruner can tell early.
LOOP = """\
from tunepilot.runner import get_reporter

def objective(config):
    reporter = get_reporter()
    value = 0.0
    for epoch in range(10):
        value = (epoch + 1) * (1 - abs(config["x"]))
        reporter.report(epoch, value)
        if reporter.should_prune():
            reporter.prune()
    return value
"""


def make_spec(tmp_path: Path, pruner: Any, **fields: Any) -> Path:
    (tmp_path / "loop.py").write_text(LOOP)
    data = {
        "name": "loop", "objective": "loop:objective", "direction": "maximize",
        "n_trials": 20, "seed": 0, "sampler": "random", "pruner": pruner,
        "storage": f"sqlite:///{tmp_path / 'loop.db'}",
        "parameters": {"x": "interval(-1, 1)"}, **fields,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_outside_a_study_reports_are_dropped_and_nothing_is_pruned() -> None:
    reporter = get_reporter()
    assert not reporter.active
    reporter.report(0, 0.5)
    assert not reporter.should_prune()


def test_a_reporter_on_a_trial_records_intermediate_values() -> None:
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    reporter = Reporter(trial)
    for step, value in enumerate([3.0, 2.0, 1.5]):
        reporter.report(step, value)
    assert reporter.active and not reporter.should_prune()
    study.tell(trial, 1.5)
    assert study.trials[0].intermediate_values == {0: 3.0, 1: 2.0, 2: 1.5}
    with pytest.raises(optuna.TrialPruned, match="pruned after step 2"):
        reporter.prune()


@pytest.mark.parametrize("step", [-1, 1.5, True])
def test_a_bad_step_is_refused(step: Any) -> None:
    with pytest.raises(ValueError, match="step must be a whole number >= 0"):
        Reporter().report(step, 1.0)


@pytest.mark.parametrize("pruner", [
    {"name": "median", "n_startup_trials": 3, "n_warmup_steps": 1},
    {"name": "successive-halving", "min_resource": 1, "reduction_factor": 3},
    {"name": "hyperband", "min_resource": 1, "max_resource": 10, "reduction_factor": 3},
])
def test_pruners_stop_bad_trials_and_save_epochs(tmp_path: Path, pruner: dict[str, Any]) -> None:
    result = run_study(load_spec(make_spec(tmp_path, pruner)), progress=False)
    trials = optuna.load_study(study_name="loop", storage=f"sqlite:///{tmp_path / 'loop.db'}"
                               ).trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and result.states["PRUNED"] == len(pruned)
    assert any(len(t.intermediate_values) < 10 for t in pruned)
    assert result.steps == sum(len(t.intermediate_values) for t in trials) < 20 * 10
    complete = [t for t in trials if t.state == TrialState.COMPLETE]

    def quality(group: list[optuna.trial.FrozenTrial]) -> float:
        return sum(1 - abs(t.params["x"]) for t in group) / len(group)

    # What was pruned was worse, on average, than what ran to the end.
    assert quality(pruned) < quality(complete)


def test_without_a_pruner_every_trial_runs_to_the_end(tmp_path: Path) -> None:
    result = run_study(load_spec(make_spec(tmp_path, "none")), progress=False)
    assert result.states == {"COMPLETE": 20} and result.steps == 200


def test_unknown_pruner_options_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="pruner.n_warmup: unknown option for the median pruner; "
                                        "did you mean 'n_warmup_steps'"):
        make_pruner(PrunerSpec(name="median", options={"n_warmup": 2}))
    with pytest.raises(SpecError, match="pruner: invalid option value"):
        make_pruner(PrunerSpec(name="successive-halving", options={"reduction_factor": 1}))


def test_reports_reach_the_trial_with_parallel_jobs(tmp_path: Path) -> None:
    path = make_spec(tmp_path, "none", n_jobs=2, n_trials=6)
    result = run_study(load_spec(path), progress=False)
    trials = optuna.load_study(study_name="loop", storage=f"sqlite:///{tmp_path / 'loop.db'}"
                               ).trials
    assert result.n_trials == 6 and all(len(t.intermediate_values) == 10 for t in trials)


def test_after_a_run_the_reporter_is_inactive_again(tmp_path: Path) -> None:
    run_study(load_spec(make_spec(tmp_path, "none", n_trials=1)), progress=False)
    assert not get_reporter().active
