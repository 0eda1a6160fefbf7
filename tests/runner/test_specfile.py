"""Spec files: several studies, defaults, ${oc.env:...}, overrides, and errors with line numbers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tunepilot.exceptions import SpecError
from tunepilot.runner import CommandSpec, PrunerSpec, SamplerSpec, load_spec, load_studies
from tunepilot.space import CategoricalParam, FloatParam, IntParam

PHASES = """\
objective: train:objective
direction: maximize
n_trials: 30
seed: 0
parameters:
  lr: tag(log, interval(1e-5, 1e-1))
  layers: range(1,4)
  opt: {values: [adam, sgd]}
studies:
  - name: foundation
  - name: reward
    pruner: {name: median, n_warmup_steps: 3}
    n_trials: 10
  - name: finetune
    sampler: {name: nsga2, population_size: 8}
    directions: [maximize, minimize]
    metric: [accuracy, latency]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error(tmp_path: Path, text: str, **kwargs: object) -> str:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_studies(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message.removeprefix(f"{path}: ")


def test_studies_inherit_the_top_level_keys_and_override_them(tmp_path: Path) -> None:
    foundation, reward, finetune = load_studies(write(tmp_path, PHASES))
    assert [s.name for s in (foundation, reward, finetune)] == ["foundation", "reward", "finetune"]
    assert list(foundation.parameters.values()) == [
        FloatParam("lr", 1e-5, 0.1, log=True), IntParam("layers", 1, 3),
        CategoricalParam("opt", ("adam", "sgd")),
    ]
    assert (foundation.n_trials, foundation.pruner, foundation.study_directions) == (
        30, PrunerSpec(name="none"), ("maximize",))
    assert (reward.n_trials, reward.pruner) == (
        10, PrunerSpec(name="median", options={"n_warmup_steps": 3}))
    assert finetune.study_directions == ("maximize", "minimize")
    assert finetune.sampler == SamplerSpec(name="nsga2", options={"population_size": 8})
    assert all(s.source == tmp_path / "spec.yaml" and s.seed == 0 for s in (reward, finetune))


def test_one_study_is_chosen_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, PHASES)
    assert load_spec(path, study="reward").name == "reward"
    assert [s.name for s in load_studies(path, only="finetune")] == ["finetune"]
    with pytest.raises(SpecError, match="no study named 'rewards'; the file holds foundation, "
                                        "reward, finetune"):
        load_spec(path, study="rewards")
    with pytest.raises(SpecError, match="the file holds 3 studies"):
        load_spec(path)


def test_overrides_change_every_study_in_hydra_syntax(tmp_path: Path) -> None:
    studies = load_studies(write(tmp_path, PHASES), overrides=[
        "n_trials=5", "sampler.n_startup_trials=2", "parameters.lr=interval(0.1, 0.2)",
        "storage=sqlite:///other.db", "seed=null",
    ], only="foundation")
    spec = studies[0]
    assert (spec.n_trials, spec.storage, spec.seed) == (5, "sqlite:///other.db", None)
    assert spec.sampler == SamplerSpec(name="tpe", options={"n_startup_trials": 2})
    assert spec.parameters["lr"] == FloatParam("lr", 0.1, 0.2)


def test_environment_variables_are_interpolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TP_TEST_DB", "sqlite:///from-env.db")
    monkeypatch.delenv("TP_TEST_UNSET", raising=False)
    spec = load_spec(write(tmp_path, """\
        name: a
        objective: train:objective
        direction: minimize
        n_trials: 2
        storage: ${oc.env:TP_TEST_DB}
        sampler: {name: tpe, n_startup_trials: "${oc.decode:${oc.env:TP_TEST_UNSET,3}}"}
        parameters:
          x: interval(0, 1)
    """))
    assert spec.storage == "sqlite:///from-env.db"
    assert spec.sampler.options == {"n_startup_trials": 3}


def test_an_unset_environment_variable_names_the_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TP_TEST_UNSET", raising=False)
    message = error(tmp_path, PHASES.replace("seed: 0", "seed: ${oc.env:TP_TEST_UNSET}"))
    assert message == ("line 4: seed: the environment variable TP_TEST_UNSET is not set; "
                       "export it, or give a default: ${oc.env:TP_TEST_UNSET,default}")


def test_a_command_objective(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, """\
        name: cmd
        objective: {command: python train.py --epochs 3, metrics_file: out.json, timeout: 60}
        metric: val_loss
        direction: minimize
        timeout: 600
        parameters:
          - lr=tag(log, interval(1e-4, 1e-1))
    """))
    assert spec.objective == CommandSpec(command="python train.py --epochs 3",
                                         metrics_file="out.json", timeout=60)
    assert (spec.n_trials, spec.timeout, spec.metric) == (None, 600, "val_loss")


# --- the invalid specs the issue lists: one line each, naming the line and the field -------

@pytest.mark.parametrize(("change", "expected"), [
    # unknown sampler
    (("tpe", "bayes"), "line 6: studies[0].sampler.name: Input should be 'llm', 'blend'"),
    # bad bounds
    (("interval(1e-5, 1e-1)", "interval(1e-1, 1e-5)"),
     "line 8: studies[0].parameters: lr: low (0.1) must not exceed high (1e-05)"),
    # missing objective
    (("    objective: train:objective\n", ""),
     "line 2: studies[0].objective: missing; add 'module:function'"),
    # bad override grammar
    (("tag(log, interval(1e-5, 1e-1))", "tag(log, interval(1e-5, 1e-1)"),
     "line 8: studies[0].parameters: lr: cannot parse 'lr=tag(log, interval(1e-5, 1e-1)': no "
     "viable"),
    # unknown field
    (("    n_trials: 4", "    n_trial: 4"),
     "line 5: studies[0].n_trial: unknown field; did you mean 'n_trials'?"),
])
def test_invalid_specs_give_one_line_naming_line_and_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = """\
        studies:
          - name: only
            objective: train:objective
            direction: minimize
            n_trials: 4
            sampler: tpe
            parameters:
              lr: tag(log, interval(1e-5, 1e-1))
    """
    message = error(tmp_path, textwrap.dedent(text).replace(*change))
    assert message.startswith(expected), message


def test_an_error_in_a_shared_default_is_reported_once(tmp_path: Path) -> None:
    message = error(tmp_path, PHASES.replace("n_trials: 30", "n_trials: 0"))
    # reward sets its own n_trials; the other two inherit the bad one.
    assert message == ("line 3: n_trials: Input should be greater than 0; use a whole number "
                       "of trials greater than 0, e.g. 20 (or a timeout in seconds)")


def test_problems_in_several_studies_are_all_listed(tmp_path: Path) -> None:
    message = error(tmp_path, PHASES.replace("n_trials: 10", "n_trials: ten")
                    .replace("metric: [accuracy, latency]", "metrics: [accuracy, latency]"))
    first, second = message.split("; line ")
    assert first.startswith("line 13: studies[1].n_trials: Input should be a valid integer")
    assert second.startswith("17: studies[2].metrics: unknown field; did you mean 'metric'?")


@pytest.mark.parametrize(("text", "expected"), [
    ("studies: []\n", "line 1: studies: expected a list of studies"),
    ("studies: [3]\n", "line 1: studies[0]: expected a mapping with a name, got int"),
    ("name: x\nstudies: [{name: a}]\n", "line 1: name: give each study its own name"),
    ("studies:\n  - name: a\n  - name: a\n",
     "line 3: studies[1].name: 'a' is also the name of studies[0]"),
    ("name: a\nname: b\n", "line 2: name: the key appears twice; keep one"),
])
def test_the_file_structure_is_checked(tmp_path: Path, text: str, expected: str) -> None:
    assert error(tmp_path, text).startswith(expected)


def test_several_directions_need_a_sampler_for_them(tmp_path: Path) -> None:
    message = error(tmp_path, PHASES.replace("{name: nsga2, population_size: 8}", "llm"))
    assert message.startswith("line 15: studies[2].sampler: the llm sampler tunes one objective")


def test_metric_keys_must_match_the_directions(tmp_path: Path) -> None:
    message = error(tmp_path, PHASES.replace("[accuracy, latency]", "[accuracy]"))
    assert "studies[2].metric: lists 1 keys for 2 direction(s)" in message


def test_direction_and_budget_are_required_with_their_alternatives(tmp_path: Path) -> None:
    message = error(tmp_path, """\
        name: a
        objective: m:f
        parameters: {x: 'interval(0, 1)'}
    """)
    assert message == ("line 1: direction: missing; add 'minimize' or 'maximize' (or "
                       "directions: [...] for several objectives)")
    message = error(tmp_path, """\
        name: a
        objective: m:f
        direction: minimize
        parameters: {x: 'interval(0, 1)'}
    """)
    assert message.startswith("line 1: n_trials: missing; add a whole number of trials")


def test_an_unquoted_expression_in_flow_style_gets_a_hint(tmp_path: Path) -> None:
    message = error(tmp_path, """\
        name: a
        objective: m:f
        direction: minimize
        n_trials: 3
        parameters: {x: interval(0, 1)}
    """)
    assert message.startswith("line 5: parameters: x: cannot parse 'x=interval(0'")
    assert message.endswith("YAML splits a value at each comma, so quote the expression or "
                            "write it on its own line")


def test_a_bad_command_line_override_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, PHASES)
    with pytest.raises(SpecError, match=r"override 'n_trials=\(': .*write key=value"):
        load_studies(path, overrides=["n_trials=("])
    with pytest.raises(SpecError, match=r"a sweep belongs under parameters, e.g. "
                                        r"parameters.lr=interval\(0,1\)"):
        load_studies(path, overrides=["lr=interval(0,1)"])
    with pytest.raises(SpecError, match=r"n_trials \(from the command line\): Input should be "
                                        "greater than 0"):
        load_studies(path, overrides=["n_trials=0"], only="foundation")
