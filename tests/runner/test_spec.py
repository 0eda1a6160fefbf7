"""The YAML study spec: what loads, and what a user is told when it does not."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tunepilot.exceptions import SpecError
from tunepilot.runner import SamplerSpec, StudySpec, load_spec
from tunepilot.space import CategoricalParam, FloatParam, IntParam

VALID = """\
name: demo
objective: train:objective
direction: maximize
n_trials: 12
seed: 3
storage: sqlite:///demo.db
sampler:
  name: llm
  model: local
  description: A small network on MNIST.
  batch_size: 2
parameters:
  lr: {type: float, low: 1e-5, high: 1e-1, log: true}
  layers: {type: int, low: 1, high: 4}
  act: {type: categorical, choices: [relu, tanh]}
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def spec_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    return message


def test_valid_spec_loads_every_field(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    spec = load_spec(path)
    assert (spec.name, spec.objective, spec.direction) == ("demo", "train:objective", "maximize")
    assert (spec.n_trials, spec.seed, spec.storage) == (12, 3, "sqlite:///demo.db")
    assert spec.sampler == SamplerSpec(
        name="llm",
        options={"model": "local", "description": "A small network on MNIST.", "batch_size": 2},
    )
    # YAML reads 1e-5 as text; the bound still arrives as a number.
    assert list(spec.parameters.values()) == [
        FloatParam("lr", 1e-5, 1e-1, log=True),
        IntParam("layers", 1, 4),
        CategoricalParam("act", ("relu", "tanh")),
    ]
    assert spec.source == path
    assert spec.base_dir == tmp_path


def test_defaults_for_optional_fields(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, """\
        name: demo
        objective: train:objective
        direction: minimize
        n_trials: 5
        parameters: {x: {type: float, low: 0, high: 1}}
    """))
    assert spec.storage == "sqlite:///tunepilot.db"
    assert spec.seed is None
    assert spec.sampler == SamplerSpec(name="tpe")


def test_sampler_may_be_a_bare_name(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, """\
        name: demo
        objective: train:objective
        direction: minimize
        n_trials: 5
        sampler: random
        parameters: {x: {type: float, low: 0, high: 1}}
    """))
    assert spec.sampler == SamplerSpec(name="random", options={})


def test_wandb_style_parameters_are_accepted(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, """\
        name: demo
        objective: train:objective
        direction: minimize
        n_trials: 5
        parameters:
          lr: {min: 0.0001, max: 0.1, distribution: log_uniform_values}
          batch: {values: [16, 32]}
    """))
    assert spec.parameters["lr"] == FloatParam("lr", 1e-4, 0.1, log=True)
    assert spec.parameters["batch"] == CategoricalParam("batch", (16, 32))


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.yaml: no such file"):
        load_spec(tmp_path / "nope.yaml")


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    message = spec_error(tmp_path, "name: demo\nparameters: {x: [1, 2\n")
    assert "not valid YAML at line" in message


def test_a_list_instead_of_a_mapping_is_refused(tmp_path: Path) -> None:
    assert "expected a mapping" in spec_error(tmp_path, "- name: demo\n")


def test_missing_field_says_what_to_add(tmp_path: Path) -> None:
    message = spec_error(tmp_path, VALID.replace("objective: train:objective\n", ""))
    assert "objective: missing; add 'module:function'" in message


def test_misspelt_field_gets_a_suggestion(tmp_path: Path) -> None:
    message = spec_error(tmp_path, VALID.replace("n_trials:", "n_trial:"))
    assert "line 4: n_trial: unknown field; did you mean 'n_trials'?" in message


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "true", "'20'"])
def test_n_trials_must_be_a_positive_whole_number(tmp_path: Path, value: str) -> None:
    message = spec_error(tmp_path, VALID.replace("n_trials: 12", f"n_trials: {value}"))
    assert message.split(": ", 1)[1].startswith("line 4: n_trials: ")


def test_direction_lists_the_choices(tmp_path: Path) -> None:
    message = spec_error(tmp_path, VALID.replace("direction: maximize", "direction: max"))
    assert "direction: " in message and "'minimize' or 'maximize'" in message


def test_objective_must_name_module_and_function(tmp_path: Path) -> None:
    message = spec_error(tmp_path, VALID.replace("train:objective", "train.py"))
    assert "objective: 'train.py' is not 'module:function'" in message


def test_bad_parameter_becomes_a_spec_error_naming_it(tmp_path: Path) -> None:
    message = spec_error(tmp_path, VALID.replace("high: 4", "high: 0"))
    assert "parameters: layers: low (1) must not exceed high (0)" in message


def test_unknown_sampler_lists_the_known_ones(tmp_path: Path) -> None:
    message = spec_error(tmp_path, VALID.replace("name: llm", "name: bayes"))
    assert "sampler.name:" in message
    for name in ("llm", "tpe", "random", "gp", "cmaes", "qmc"):
        assert f"'{name}'" in message


def test_sampler_mapping_without_name(tmp_path: Path) -> None:
    message = spec_error(tmp_path, VALID.replace("  name: llm\n", ""))
    assert "sampler.name: missing" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = spec_error(
        tmp_path, VALID.replace("direction: maximize", "direction: up").replace("12", "0")
    )
    assert "direction: " in message and "n_trials: " in message


def test_replace_validates_and_keeps_the_source(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    spec = load_spec(path).replace(n_trials=3, seed=None)
    assert (spec.n_trials, spec.seed, spec.source) == (3, None, path)
    with pytest.raises(SpecError, match=r"spec\.yaml: n_trials: Input should be greater than 0"):
        spec.replace(n_trials=0)


def test_from_mapping_without_a_file_names_the_spec() -> None:
    with pytest.raises(SpecError, match=r"^spec: name: missing"):
        StudySpec.from_mapping({
            "objective": "m:f", "direction": "minimize", "n_trials": 1,
            "parameters": {"x": {"type": "float", "low": 0, "high": 1}},
        })
