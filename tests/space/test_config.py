"""space_from_config: tunepilot's own form, W&B sweep parameters, and the errors users see."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    SearchSpace,
    space_from_config,
    space_from_wandb,
)

# --- tunepilot's own form -----------------------------------------------------------------


def test_own_form_builds_each_parameter_kind_in_order() -> None:
    space = space_from_config({
        "C": {"type": "float", "low": 0.001, "high": 1000, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
        "n_layers": {"type": "int", "low": 1, "high": 8},
        "units": {"type": "int", "low": 16, "high": 256, "step": 16},
        "width": {"type": "int", "low": 1, "high": 1024, "log": True},
        "kernel": {"type": "categorical", "choices": ["rbf", "linear", None, 3]},
    })
    assert space == SearchSpace([
        FloatParam("C", 0.001, 1000.0, log=True),
        FloatParam("dropout", 0.0, 0.5, step=0.1),
        IntParam("n_layers", 1, 8),
        IntParam("units", 16, 256, step=16),
        IntParam("width", 1, 1024, log=True),
        CategoricalParam("kernel", ("rbf", "linear", None, 3)),
    ])
    assert type(space["C"].high) is float  # type: ignore[union-attr]


def test_yaml_text_bounds_are_read_as_numbers() -> None:
    # PyYAML follows YAML 1.1, which reads 1e-3 (no dot) as a string.
    parameters = yaml.safe_load(
        """
        lr: {type: float, low: 1e-5, high: 1e-1, log: true}
        units: {type: int, low: 1e1, high: 1e3}
        """
    )
    assert parameters["lr"]["low"] == "1e-5"
    space = space_from_config(parameters)
    assert space["lr"] == FloatParam("lr", 1e-5, 1e-1, log=True)
    assert space["units"] == IntParam("units", 10, 1000)


def test_yaml_text_step_is_read_as_a_number() -> None:
    parameters = yaml.safe_load("lr: {type: float, low: 0, high: 0.01, step: 1e-3}")
    assert space_from_config(parameters)["lr"] == FloatParam("lr", 0.0, 0.01, step=0.001)


def test_int_bounds_keep_full_precision() -> None:
    space = space_from_config({"seed": {"type": "int", "low": 0, "high": 2**63 - 1}})
    assert space["seed"] == IntParam("seed", 0, 2**63 - 1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float", "min": 0, "max": 1}, r"^lr: unknown keys \['max', 'min'\]; allowed: "),
        ({"type": "double", "low": 0, "high": 1}, r"^lr: type must be float, int or categorical, got 'double'"),
        ({"type": "float", "low": 0}, r"^lr: missing 'high'$"),
        ({"type": "int", "high": 3}, r"^lr: missing 'low'$"),
        ({"type": "float", "low": "small", "high": 1}, r"^lr: low must be a number, got 'small'$"),
        ({"type": "float", "low": True, "high": 1}, r"^lr: low must be a number, got True$"),
        ({"type": "float", "low": [0], "high": 1}, r"^lr: low must be a number"),
        ({"type": "int", "low": 0.5, "high": 4}, r"^lr: low must be an integer, got 0.5$"),
        ({"type": "int", "low": 0, "high": "4.5"}, r"^lr: high must be an integer, got '4.5'$"),
        ({"type": "int", "low": 0, "high": 10, "step": 3}, r"^lr: .*set high to 9$"),
        ({"type": "float", "low": 1, "high": 0}, r"^lr: low \(1.0\) must not exceed high \(0.0\)$"),
        ({"type": "float", "low": 0, "high": 1, "log": True}, r"^lr: a log-scaled range needs low > 0"),
        ({"type": "categorical"}, r"^lr: categorical needs 'choices: \[...\]'$"),
        ({"type": "categorical", "choices": "rbf"}, r"^lr: categorical needs 'choices"),
        ({"type": "categorical", "choices": []}, r"^lr: a categorical parameter needs at least one"),
        ({"type": "categorical", "choices": [{"a": 1}]}, r"^lr: choices must be None, bool"),
    ],
)
def test_own_form_errors_name_the_parameter_and_the_fix(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        space_from_config({"lr": spec})


@pytest.mark.parametrize("step", [None, 2.5, "two", [2]])
def test_a_bad_int_step_is_a_search_space_error(step: Any) -> None:
    with pytest.raises(SearchSpaceError, match=r"^units: step"):
        space_from_config({"units": {"type": "int", "low": 0, "high": 10, "step": step}})


# --- W&B sweep parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"values": ["adam", "sgd"]}, CategoricalParam("p", ("adam", "sgd"))),
        ({"values": [32, 64, 128]}, CategoricalParam("p", (32, 64, 128))),
        ({"value": 0.9}, CategoricalParam("p", (0.9,))),
        ({"value": "adam", "distribution": "constant"}, CategoricalParam("p", ("adam",))),
        ({"values": [1, 2], "distribution": "categorical"}, CategoricalParam("p", (1, 2))),
        ({"min": 1, "max": 8}, IntParam("p", 1, 8)),
        ({"min": 0.0, "max": 0.5}, FloatParam("p", 0.0, 0.5)),
        ({"min": 0, "max": 0.5}, FloatParam("p", 0.0, 0.5)),
        ({"min": "1e-5", "max": "1e-1"}, FloatParam("p", 1e-5, 1e-1)),
        ({"min": 1, "max": 8, "distribution": "int_uniform"}, IntParam("p", 1, 8)),
        ({"min": 1, "max": 8, "distribution": "uniform"}, FloatParam("p", 1.0, 8.0)),
        ({"min": 0, "max": 10, "q": 3, "distribution": "q_uniform"}, IntParam("p", 0, 9, step=3)),
        ({"min": 0, "max": 10, "distribution": "q_uniform"}, IntParam("p", 0, 10)),
        ({"min": 0.0, "max": 1.0, "q": 0.25, "distribution": "q_uniform"},
         FloatParam("p", 0.0, 1.0, step=0.25)),
        ({"min": 0, "max": 1, "q": 0.3, "distribution": "q_uniform"},
         FloatParam("p", 0.0, 0.9, step=0.3)),
        ({"min": 1e-5, "max": 1e-1, "distribution": "log_uniform_values"},
         FloatParam("p", 1e-5, 1e-1, log=True)),
        ({"min": 1, "max": 256, "distribution": "q_log_uniform_values"},
         IntParam("p", 1, 256, log=True)),
        ({"min": 1, "max": 256, "q": 1, "distribution": "q_log_uniform_values"},
         IntParam("p", 1, 256, log=True)),
    ],
)
def test_wandb_forms(spec: dict[str, Any], expected: Any) -> None:
    space = space_from_wandb({"p": spec})
    assert space == SearchSpace([expected])
    assert space == space_from_config({"p": spec})


def test_wandb_log_uniform_bounds_are_natural_log_exponents() -> None:
    param = space_from_config({"lr": {"distribution": "log_uniform", "min": -9.2, "max": 0}})["lr"]
    assert isinstance(param, FloatParam)
    assert param.log
    assert param.low == pytest.approx(math.exp(-9.2))
    assert param.high == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("low", "high", "q"),
    [(0.0, 0.3, 0.1), (0.0, 0.7, 0.1), (0.1, 0.9, 0.1), (0.0, 0.5, 0.05)],
)
def test_wandb_q_uniform_keeps_a_max_that_lies_on_the_grid(low: float, high: float, q: float) -> None:
    param = space_from_config(
        {"dropout": {"distribution": "q_uniform", "min": low, "max": high, "q": q}}
    )["dropout"]
    assert isinstance(param, FloatParam)
    assert param.step == q
    assert param.high == pytest.approx(high)
    assert param.contains(high)


def test_wandb_sweep_from_yaml() -> None:
    sweep = yaml.safe_load(
        """
        parameters:
          lr: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}
          batch_size: {values: [16, 32, 64]}
          epochs: {value: 10}
          optimizer:
            parameters:
              name: {values: [adam, sgd]}
              momentum: {min: 0.0, max: 0.99}
        """
    )
    space = space_from_wandb(sweep["parameters"])
    assert list(space) == ["lr", "batch_size", "epochs", "optimizer.name", "optimizer.momentum"]
    assert space["lr"] == FloatParam("lr", 1e-5, 1e-1, log=True)
    assert space["optimizer.momentum"] == FloatParam("optimizer.momentum", 0.0, 0.99)


def test_nested_parameters_become_dotted_names_at_any_depth() -> None:
    space = space_from_config({
        "model": {"parameters": {
            "encoder": {"parameters": {"layers": {"min": 1, "max": 4}}},
            "act": {"type": "categorical", "choices": ["relu", "gelu"]},
        }},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    })
    assert list(space) == ["model.encoder.layers", "model.act", "lr"]
    assert space["model.encoder.layers"] == IntParam("model.encoder.layers", 1, 4)


def test_a_nested_name_that_clashes_with_a_dotted_one_is_rejected() -> None:
    with pytest.raises(SearchSpaceError, match=r"'opt.lr' is defined twice"):
        space_from_config({
            "opt.lr": {"min": 0.0, "max": 1.0},
            "opt": {"parameters": {"lr": {"min": 0.0, "max": 1.0}}},
        })


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"min": 0, "max": 1, "mean": 0.5}, r"^p: unknown keys \['mean'\]; use 'values'"),
        # W&B writes normal distributions with mu and sigma; say why they are refused.
        ({"distribution": "normal", "mu": 0, "sigma": 1}, r"^p: the unbounded distribution 'normal'"),
        ({"distribution": "normal"}, r"^p: the unbounded distribution 'normal' is not supported; give 'min' and 'max'"),
        ({"distribution": "log_normal", "min": 0, "max": 1}, r"unbounded distribution 'log_normal'"),
        ({"distribution": "q_normal"}, r"unbounded distribution 'q_normal'"),
        ({"distribution": "q_log_normal"}, r"unbounded distribution 'q_log_normal'"),
        ({"values": [1, 2], "probabilities": [0.5, 0.5]}, r"^p: 'probabilities' is not supported"),
        ({"min": 0}, r"^p: give 'values', 'value', or both 'min' and 'max'$"),
        ({"max": 1, "distribution": "uniform"}, r"^p: give 'values', 'value', or both 'min' and 'max'$"),
        ({}, r"^p: give 'values', 'value', or both"),
        ({"min": 0, "max": 1, "distribution": "beta"}, r"^p: unknown distribution 'beta'; supported: constant, categorical"),
        ({"values": []}, r"^p: 'values' must be a non-empty list$"),
        ({"values": "adam"}, r"^p: 'values' must be a non-empty list$"),
        ({"distribution": "categorical"}, r"^p: 'values' must be a non-empty list$"),
        ({"min": 0.5, "max": 4, "distribution": "int_uniform"}, r"^p: min must be an integer, got 0.5$"),
        ({"min": "low", "max": 1}, r"^p: min must be a number, got 'low'$"),
        ({"min": 1e-5, "max": 1e-1, "distribution": "q_log_uniform_values"},
         r"^p: q_log_uniform_values is supported for integer bounds with q: 1 only$"),
        ({"min": 0, "max": 1, "distribution": "log_uniform_values"}, r"^p: a log-scaled range needs low > 0"),
        ({"min": 2, "max": 1}, r"^p: low \(2\) must not exceed high \(1\)$"),
    ],
)
def test_wandb_errors_name_the_parameter_and_the_fix(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        space_from_wandb({"p": spec})


@pytest.mark.parametrize(
    "spec",
    [
        {"distribution": "constant"},  # no value
        {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0},
        {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": "a tenth"},
    ],
)
def test_malformed_wandb_definitions_are_search_space_errors(spec: dict[str, Any]) -> None:
    with pytest.raises(SearchSpaceError, match=r"^p: "):
        space_from_wandb({"p": spec})


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({}, r"^parameters must be a non-empty mapping of name to definition$"),
        ([{"lr": {"min": 0, "max": 1}}], r"^parameters must be a non-empty mapping"),
        (None, r"^parameters must be a non-empty mapping"),
        ({"lr": 0.1}, r"^lr: expected a mapping such as \{type: float, low: 0, high: 1\} or \{values: \[...\]\}, got 0.1$"),
        ({"lr": [0.1, 0.2]}, r"^lr: expected a mapping"),
        ({"opt": {"parameters": {"lr": "fast"}}}, r"^opt.lr: expected a mapping"),
    ],
)
def test_structural_errors(parameters: Any, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        space_from_config(parameters)


@pytest.mark.parametrize("nested", [{}, [], "lr", None])
def test_nested_parameters_must_be_a_non_empty_mapping(nested: Any) -> None:
    with pytest.raises(SearchSpaceError, match=r"^opt"):
        space_from_config({"opt": {"parameters": nested}})


def test_log_must_be_a_real_boolean():
    with pytest.raises(SearchSpaceError, match="log must be true or false"):
        space_from_config({"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": "false"}})
