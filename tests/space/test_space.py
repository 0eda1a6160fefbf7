"""SearchSpace: Optuna round trips, membership, repair of untrusted configurations, schema."""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space import CategoricalParam, FloatParam, IntParam, Param, Repaired, SearchSpace


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace([
        FloatParam("lr", 1e-5, 1e-1, log=True),
        IntParam("layers", 1, 8),
        FloatParam("dropout", 0.0, 0.5, step=0.1),
        CategoricalParam("optimizer", ("adam", "sgd")),
    ])


GOOD = {"lr": 1e-3, "layers": 4, "dropout": 0.2, "optimizer": "adam"}


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(SearchSpaceError, match=r"^parameter 'lr' is defined twice$"):
        SearchSpace([FloatParam("lr", 0.0, 1.0), IntParam("lr", 0, 1)])


def test_space_is_an_ordered_mapping(space: SearchSpace) -> None:
    assert list(space) == ["lr", "layers", "dropout", "optimizer"]
    assert len(space) == 4
    assert space["layers"] == IntParam("layers", 1, 8)
    assert "momentum" not in space
    with pytest.raises(KeyError):
        space["momentum"]


def test_optuna_round_trip_keeps_order_and_equality(space: SearchSpace) -> None:
    distributions = space.to_optuna()
    assert list(distributions) == ["lr", "layers", "dropout", "optimizer"]
    assert distributions == {
        "lr": FloatDistribution(1e-5, 1e-1, log=True),
        "layers": IntDistribution(1, 8),
        "dropout": FloatDistribution(0.0, 0.5, step=0.1),
        "optimizer": CategoricalDistribution(("adam", "sgd")),
    }
    again = SearchSpace.from_optuna(distributions)
    assert again == space
    assert hash(again) == hash(space)
    assert list(again) == list(space)


def test_equality_depends_on_order() -> None:
    a, b = FloatParam("a", 0.0, 1.0), IntParam("b", 0, 3)
    assert SearchSpace([a, b]) != SearchSpace([b, a])
    assert SearchSpace([a, b]) == SearchSpace([a, b])
    assert SearchSpace([a]) != {"a": a}


def test_from_optuna_keeps_the_order_it_is_given() -> None:
    distributions = {"z": IntDistribution(0, 3), "a": FloatDistribution(0.0, 1.0)}
    assert list(SearchSpace.from_optuna(distributions)) == ["z", "a"]


def test_contains_requires_exactly_the_spaces_keys(space: SearchSpace) -> None:
    assert space.contains(GOOD)
    assert space.contains({**GOOD, "dropout": 0.30000000000000004})
    assert not space.contains({k: v for k, v in GOOD.items() if k != "lr"})
    assert not space.contains({**GOOD, "momentum": 0.9})
    assert not space.contains({**GOOD, "layers": 9})
    assert not space.contains({**GOOD, "layers": 4.5})
    assert not space.contains({**GOOD, "optimizer": "Adam"})
    assert not space.contains({})


def test_repair_reports_each_change_per_parameter(space: SearchSpace) -> None:
    fixed = space.repair({"lr": "0.5", "layers": 3.6, "dropout": 0.27, "optimizer": "SGD"})
    assert fixed == Repaired(
        values={"lr": 1e-1, "layers": 4, "dropout": pytest.approx(0.3), "optimizer": "sgd"},
        repairs={
            "lr": ["coerced", "clamped"],
            "layers": ["snapped"],
            "dropout": ["snapped"],
            "optimizer": ["coerced"],
        },
    )
    assert fixed.values is not None and space.contains(fixed.values)


def test_repair_leaves_a_valid_configuration_alone(space: SearchSpace) -> None:
    assert space.repair(GOOD) == Repaired(values=GOOD, repairs={}, errors=[])


def test_repair_ignores_unknown_keys(space: SearchSpace) -> None:
    fixed = space.repair({**GOOD, "momentum": 0.9, "why": "a hunch"})
    assert fixed.values == GOOD
    assert fixed.errors == []


def test_repair_returns_one_error_per_missing_or_invalid_parameter(space: SearchSpace) -> None:
    fixed = space.repair({"lr": float("nan"), "layers": [4], "optimizer": "adamw", "extra": 1})
    assert fixed.values is None
    assert fixed.errors == [
        "lr: expected a finite number, got nan",
        "layers: expected a number, got list",
        "dropout: missing",
        "optimizer: 'adamw' is not one of ['adam', 'sgd']",
    ]


def test_repair_of_something_other_than_an_object(space: SearchSpace) -> None:
    for config in ([GOOD], "lr=0.1", None, 3):
        fixed = space.repair(config)
        assert fixed.values is None
        assert fixed.errors == [f"expected an object, got {type(config).__name__}"]


def test_docstring_example_holds() -> None:
    doc = SearchSpace.__doc__ or ""
    code = textwrap.dedent(doc.split(".. code-block:: python", 1)[1])
    assert "assert fixed.values ==" in code
    exec(compile(code, "<SearchSpace docstring>", "exec"), {})


def test_json_schema_structure(space: SearchSpace) -> None:
    schema = space.json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema == {
        "type": "object",
        "properties": {
            "lr": {"type": "number", "minimum": 1e-5, "maximum": 1e-1,
                   "description": "log scale from 1e-5 to 0.1: a value such as 1e-3"},
            "layers": {"type": "integer", "minimum": 1, "maximum": 8,
                       "description": "a whole number from 1 to 8"},
            "dropout": {"type": "number", "minimum": 0.0, "maximum": 0.5,
                        "description": "a fraction from 0 to 0.5, not a count or a percentage, "
                                       "in steps of 0.1"},
            "optimizer": {"enum": ["adam", "sgd"], "description": 'one of "adam", "sgd"'},
        },
        "required": ["lr", "layers", "dropout", "optimizer"],
        "additionalProperties": False,
    }


@pytest.mark.parametrize(
    ("config", "valid"),
    [
        (GOOD, True),
        ({**GOOD, "lr": 1e-1}, True),
        ({**GOOD, "lr": 1.0}, False),
        ({**GOOD, "layers": 2.5}, False),
        ({**GOOD, "layers": "4"}, False),
        ({**GOOD, "optimizer": "adamw"}, False),
        ({**GOOD, "momentum": 0.9}, False),
        ({k: v for k, v in GOOD.items() if k != "dropout"}, False),
    ],
)
def test_json_schema_validates_configurations(
    space: SearchSpace, config: dict[str, Any], valid: bool
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = space.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert jsonschema.Draft202012Validator(schema).is_valid(config) is valid


def test_describe_has_one_line_per_parameter(space: SearchSpace) -> None:
    assert space.describe() == [
        "lr: float in [1e-05, 0.1], log scale",
        "layers: int in [1, 8]",
        "dropout: float in [0, 0.5], step 0.1",
        'optimizer: one of "adam", "sgd"',
    ]


def test_explain_has_one_line_per_parameter_for_a_model(space: SearchSpace) -> None:
    assert space.explain() == [
        "lr: log scale from 1e-5 to 0.1: a value such as 1e-3",
        "layers: a whole number from 1 to 8",
        "dropout: a fraction from 0 to 0.5, not a count or a percentage, in steps of 0.1",
        'optimizer: one of "adam", "sgd"',
    ]


# --- property: repair never raises and only returns configurations inside the space -------

_STEPS = [Decimal("0.1"), Decimal("0.25"), Decimal("0.001"), Decimal("0.5"), Decimal("2")]


@st.composite
def float_params(draw: st.DrawFn, name: str) -> FloatParam:
    kind = draw(st.sampled_from(["linear", "log", "step"]))
    if kind == "log":
        low = draw(st.floats(1e-8, 1e6))
        return FloatParam(name, low, low * draw(st.floats(1.0, 1e6)), log=True)
    if kind == "step":
        # Bounds on the decimal grid, as a user would write them (0.1, 0.3, ...).
        step = draw(st.sampled_from(_STEPS))
        start = draw(st.integers(-1000, 1000))
        count = draw(st.integers(0, 50))
        return FloatParam(
            name, float(start * step), float((start + count) * step), step=float(step)
        )
    low = draw(st.floats(-1e9, 1e9))
    return FloatParam(name, low, low + draw(st.floats(0.0, 1e9)))


@st.composite
def int_params(draw: st.DrawFn, name: str) -> IntParam:
    if draw(st.booleans()):
        low = draw(st.integers(1, 10_000))
        return IntParam(name, low, low + draw(st.integers(0, 10**6)), log=True)
    # Optuna compares ints through floats, so keep bounds where floats are exact.
    low = draw(st.integers(-(2**52), 2**52))
    step = draw(st.integers(1, 7))
    return IntParam(name, low, low + step * draw(st.integers(0, 1000)), step=step)


_CHOICES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)


@st.composite
def categorical_params(draw: st.DrawFn, name: str) -> CategoricalParam:
    return CategoricalParam(name, tuple(draw(st.lists(_CHOICES, min_size=1, max_size=5))))


@st.composite
def spaces(draw: st.DrawFn) -> SearchSpace:
    names = draw(st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=4, unique=True))
    params: list[Param] = [
        draw(st.one_of(float_params(n), int_params(n), categorical_params(n))) for n in names
    ]
    return SearchSpace(params)


_JSONISH = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**70, -(2**70), 10**400, -(10**400), 2**53 + 1]),
    st.floats(),
    st.text(max_size=8),
    st.floats().map(repr),
    st.integers().map(str),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[SearchSpace, dict[str, Any]]:
    space = draw(spaces())
    config: dict[str, Any] = {}
    for name, param in space.items():
        if draw(st.integers(0, 9)) == 0:
            continue  # missing
        if isinstance(param, CategoricalParam) and draw(st.booleans()):
            choice = draw(st.sampled_from(param.choices))
            config[name] = draw(st.sampled_from([choice, str(choice), str(choice).upper()]))
        else:
            config[name] = draw(_JSONISH)
    if draw(st.booleans()):
        config[draw(st.text(max_size=4))] = draw(_JSONISH)  # unknown key, maybe a real one
    return space, config


@example(case=(SearchSpace([FloatParam("drop", 0.0, 0.3, step=0.1)]), {"drop": 0.3}))
@example(case=(SearchSpace([FloatParam("drop", 0.0, 0.3, step=0.1)]), {"drop": 7}))
@example(case=(SearchSpace([FloatParam("x", 0.0, 1.0)]), {"x": 10**400}))
@example(case=(SearchSpace([IntParam("n", 0, 10)]), {"n": -(10**400)}))
@example(case=(SearchSpace([CategoricalParam("k", ("1", 1, True))]), {"k": "TRUE"}))
@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_repair_never_raises_and_returns_values_inside_the_space(
    case: tuple[SearchSpace, dict[str, Any]],
) -> None:
    space, config = case
    fixed = space.repair(config)
    if fixed.values is None:
        assert fixed.errors
        return
    assert fixed.errors == []
    assert space.contains(fixed.values)
    for name, distribution in space.to_optuna().items():
        value = fixed.values[name]
        assert distribution._contains(distribution.to_internal_repr(value)), (name, value)
