"""Beliefs: a prior per parameter, checked against the space; priors written on parameters."""

from __future__ import annotations

from typing import Any

import pytest

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space import (
    Belief,
    CategoricalParam,
    FloatParam,
    IntParam,
    SearchSpace,
    parse_beliefs,
    space_from_config,
    split_priors,
)

SPACE = SearchSpace([
    FloatParam("lr", 1e-5, 1e-1, log=True),
    FloatParam("dropout", 0.0, 0.5, step=0.1),
    IntParam("layers", 1, 8),
    CategoricalParam("optimizer", ("adam", "sgd")),
])


def test_each_form_of_a_belief_reads_the_same() -> None:
    beliefs = parse_beliefs(SPACE, {
        "lr": 3e-4,
        "layers": {"value": 4, "confidence": "high"},
        "optimizer": {"prior": "sgd", "confidence": "low"},
        "dropout": Belief(0.2, "medium"),
    })
    assert beliefs == {
        "lr": Belief(3e-4, "medium"),
        "layers": Belief(4, "high"),
        "optimizer": Belief("sgd", "low"),
        "dropout": Belief(0.2, "medium"),
    }


def test_numbers_are_read_as_the_parameter_takes_them() -> None:
    beliefs = parse_beliefs(SPACE, {"lr": "3e-4", "layers": 4.0, "dropout": 0.23})
    # YAML 1.1 reads 3e-4 as text; an int parameter's belief is an int; a step snaps.
    assert beliefs["lr"].value == 3e-4 and isinstance(beliefs["lr"].value, float)
    assert beliefs["layers"].value == 4 and isinstance(beliefs["layers"].value, int)
    assert beliefs["dropout"].value == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("beliefs", "message"),
    [
        ({"momentum": 0.9}, (r"^momentum: a prior for a parameter the space does not have "
                             r"\(parameters: lr, dropout, layers, optimizer\)$")),
        ({"lr": 0.5}, (r"^lr: prior 0.5 is outside the parameter's range "
                       r"\(float in \[1e-05, 0.1\], log scale\)$")),
        ({"layers": 9}, r"^layers: prior 9 is outside the parameter's range \(int in \[1, 8\]\)"),
        ({"layers": 2.5}, r"^layers: prior 2.5 is not an integer"),
        ({"lr": "fast"}, r"^lr: prior must be a number, got 'fast'$"),
        ({"lr": True}, r"^lr: prior must be a finite number, got True$"),
        ({"lr": float("nan")}, r"^lr: prior must be a finite number"),
        ({"optimizer": "rmsprop"}, (r"^optimizer: prior 'rmsprop' is not one of the choices "
                                    r"\['adam', 'sgd'\]$")),
        ({"lr": {"value": 1e-3, "confidence": "sure"}},
         r"^lr: confidence must be one of low, medium, high, got 'sure'$"),
        ({"lr": {"confidence": "high"}}, r"^lr: a confidence without a value"),
        ({"lr": {"value": 1e-3, "weight": 2}}, r"^lr: unknown prior field 'weight'"),
    ],
)
def test_a_bad_belief_names_its_parameter_and_the_problem(
    beliefs: dict[str, Any], message: str
) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        parse_beliefs(SPACE, beliefs)


def test_a_belief_with_an_unknown_confidence_cannot_be_made() -> None:
    with pytest.raises(SearchSpaceError, match="confidence must be one of low, medium, high"):
        Belief(1.0, "certain")  # type: ignore[arg-type]


def test_split_priors_takes_the_belief_keys_out_of_both_forms() -> None:
    parameters = {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True, "prior": "3e-4",
               "confidence": "high"},
        "kernel": {"values": ["rbf", "linear"], "prior": "rbf"},
        "optimizer": {"parameters": {"momentum": {"min": 0.0, "max": 0.99, "prior": 0.9}}},
        "layers": "range(1, 4)",
    }
    definitions, priors = split_priors(parameters)
    assert priors == {
        "lr": {"value": "3e-4", "confidence": "high"},
        "kernel": {"value": "rbf"},
        "optimizer.momentum": {"value": 0.9},
    }
    assert definitions["lr"] == {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}
    assert definitions["layers"] == "range(1, 4)"
    assert "prior" in parameters["lr"], "the caller's mapping is left as it was"
    space = space_from_config({k: v for k, v in definitions.items() if k != "layers"})
    assert parse_beliefs(space, priors) == {
        "lr": Belief(3e-4, "high"), "kernel": Belief("rbf"),
        "optimizer.momentum": Belief(0.9),
    }


def test_split_priors_leaves_other_forms_alone() -> None:
    assert split_priors(SPACE) == (SPACE, {})
    overrides = ["lr=tag(log, interval(1e-5, 1e-1))"]
    assert split_priors(overrides) == (overrides, {})
    assert split_priors({"lr": {"type": "float", "low": 0, "high": 1}}) == (
        {"lr": {"type": "float", "low": 0, "high": 1}}, {})
