"""Command-line objectives: parameters in, metrics back, failures, timeouts and pruning."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tunepilot.runner import command_line, load_spec, run_study
from tunepilot.runner import _command

PYTHON = sys.executable


def make_spec(tmp_path: Path, script: str, objective: dict[str, Any], **fields: Any) -> Path:
    (tmp_path / "train.py").write_text(textwrap.dedent(script))
    data = {
        "name": "cmd", "objective": objective, "direction": "minimize", "n_trials": 3,
        "seed": 0, "sampler": "random", "storage": f"sqlite:///{tmp_path / 'cmd.db'}",
        "parameters": {"x": "interval(-2, 2)", "opt": "choice(adam, 'sgd m')"}, **fields,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def trials(tmp_path: Path, name: str = "cmd") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'cmd.db'}").trials


def test_placeholders_are_filled_and_the_rest_appended_as_overrides() -> None:
    assert command_line(["train.py", "--lr={lr}", "{missing}"], {
        "lr": 0.1, "opt": "sgd m", "flag": True, "none": None, "n": 3,
    }) == ["train.py", "--lr=0.1", "{missing}", "opt='sgd m'", "flag=true", "none=null", "n=3"]


ECHO = """\
import json, os, sys
args = dict(a.split("=", 1) for a in sys.argv[1:])
params = json.loads(os.environ["TUNEPILOT_PARAMS"])
print("training...")
print(json.dumps({"loss": (float(args["x"]) - 1) ** 2, "opt": params["opt"], "argv": args}))
"""


def test_the_last_json_line_is_the_result(tmp_path: Path) -> None:
    spec = load_spec(make_spec(tmp_path, ECHO, {"command": f"{PYTHON} train.py x={{x}}"},
                               metric="loss"))
    result = run_study(spec, progress=False)
    assert result.states == {"COMPLETE": 3}
    for trial in trials(tmp_path):
        assert trial.value == pytest.approx((trial.params["x"] - 1) ** 2)


def test_a_metrics_file_per_trial(tmp_path: Path) -> None:
    script = """\
        import json, os, sys
        x = float(sys.argv[1].split("=")[1])
        with open(os.environ["TUNEPILOT_METRICS_FILE"], "w") as f:
            json.dump({"loss": abs(x)}, f)
        print(json.dumps({"loss": 1e9}))  # ignored: the file is the result
    """
    spec = load_spec(make_spec(tmp_path, script, {
        "command": [PYTHON, "train.py"], "metrics_file": "out/metrics-{trial}.json",
    }, metric="loss", parameters={"x": "interval(-2, 2)"}))
    (tmp_path / "out").mkdir()
    run_study(spec, progress=False)
    stored = trials(tmp_path)
    assert [t.value for t in stored] == [pytest.approx(abs(t.params["x"])) for t in stored]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "metrics-0.json", "metrics-1.json", "metrics-2.json"]


@pytest.mark.parametrize(("script", "objective", "reason"), [
    ("import sys\nsys.stderr.write('CUDA out of memory\\n')\nsys.exit(3)\n", {},
     "ObjectiveError: the command exited with status 3: CUDA out of memory"),
    ("print('done')\n", {}, "ObjectiveError: the command printed no JSON line"),
    ("import time\ntime.sleep(30)\n", {"timeout": 0.5},
     "ObjectiveError: the command ran past its timeout of 0.5 s and was stopped"),
    ("print('{\"acc\": 1}')\n", {}, "the objective's result has no 'loss'; it has ['acc']"),
    ("", {"metrics_file": "m.json"}, "ObjectiveError: the command wrote no metrics file"),
])
def test_failures_are_stored_with_their_reason(
    tmp_path: Path, script: str, objective: dict[str, Any], reason: str
) -> None:
    spec = load_spec(make_spec(tmp_path, script, {"command": f"{PYTHON} train.py", **objective},
                               metric="loss", n_trials=1))
    result = run_study(spec, progress=False)
    assert result.states == {"FAIL": 1}
    assert reason in trials(tmp_path)[0].user_attrs["fail_reason"]


def test_a_command_that_cannot_start_fails_its_trial(tmp_path: Path) -> None:
    spec = load_spec(make_spec(tmp_path, "", {"command": "no-such-program-xyz"}, n_trials=1))
    run_study(spec, progress=False)
    assert "cannot run 'no-such-program-xyz'" in trials(tmp_path)[0].user_attrs["fail_reason"]


LOOP = """\
import sys
from tunepilot.runner import get_reporter

x = float(dict(a.split("=", 1) for a in sys.argv[1:])["x"])
reporter = get_reporter()
for epoch in range(8):
    reporter.report(epoch, abs(x) * (8 - epoch))
    if reporter.should_prune():
        reporter.prune()
print('{"value": %r}' % (abs(x),))
"""


@pytest.mark.slow
def test_a_command_is_pruned_through_its_reporter(tmp_path: Path) -> None:
    spec = load_spec(make_spec(
        tmp_path, LOOP, {"command": f"{PYTHON} train.py"}, n_trials=12,
        pruner={"name": "median", "n_startup_trials": 2}, parameters={"x": "interval(-2, 2)"},
    ))
    result = run_study(spec, progress=False)
    stored = trials(tmp_path)
    pruned = [t for t in stored if t.state == TrialState.PRUNED]
    assert pruned and all(len(t.intermediate_values) < 8 for t in pruned)
    complete = [t for t in stored if t.state == TrialState.COMPLETE]
    assert all(t.value == pytest.approx(abs(t.params["x"])) for t in complete)
    assert result.steps == sum(len(t.intermediate_values) for t in stored) < 12 * 8


@pytest.mark.slow
def test_a_command_that_ignores_the_answer_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_command, "PRUNE_GRACE_S", 0.3)
    script = """\
        import json, sys, time
        x = float(sys.argv[1].split("=")[1])
        for epoch in range(200):
            print(json.dumps({"step": epoch, "loss": abs(x) + 1 / (epoch + 1)}), flush=True)
            time.sleep(0.01)
        print(json.dumps({"loss": abs(x)}))
    """
    spec = load_spec(make_spec(
        tmp_path, script, {"command": f"{PYTHON} train.py"}, metric="loss", n_trials=5,
        pruner={"name": "median", "n_startup_trials": 1}, parameters={"x": "interval(-2, 2)"},
    ))
    run_study(spec, progress=False)
    pruned = [t for t in trials(tmp_path) if t.state == TrialState.PRUNED]
    assert pruned and all(len(t.intermediate_values) < 200 for t in pruned)


def test_several_objectives_from_one_command(tmp_path: Path) -> None:
    script = """\
        import json, sys
        x = float(sys.argv[1].split("=")[1])
        print(json.dumps({"loss": x * x, "size": abs(x - 1)}))
    """
    spec = load_spec(make_spec(tmp_path, script, {"command": f"{PYTHON} train.py"},
                               direction=None, directions=["minimize", "minimize"],
                               metric=["loss", "size"], sampler="nsga2", n_trials=4,
                               parameters={"x": "interval(-2, 2)"}))
    result = run_study(spec, progress=False)
    assert result.best_value is None and result.best_trials
    for trial in trials(tmp_path):
        x = trial.params["x"]
        assert trial.values == [pytest.approx(x * x), pytest.approx(abs(x - 1))]
