"""Search spaces in Hydra's override grammar: what each expression becomes, and the errors."""

from __future__ import annotations

import pytest

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    SearchSpace,
    param_from_override,
    space_from_overrides,
)


@pytest.mark.parametrize(("override", "param"), [
    ("lr=tag(log, interval(1e-5, 1e-1))", FloatParam("lr", 1e-5, 0.1, log=True)),
    ("x=interval(0, 1)", FloatParam("x", 0.0, 1.0)),
    ("n=int(interval(1, 100))", IntParam("n", 1, 100)),
    ("batch=tag(log, int(interval(8, 512)))", IntParam("batch", 8, 512, log=True)),
    # Hydra's range excludes the stop, as in its basic sweeper and in Python.
    ("layers=range(1,4)", IntParam("layers", 1, 3)),
    ("units=range(16, 257, 16)", IntParam("units", 16, 256, step=16)),
    ("down=range(5, 1, -1)", IntParam("down", 2, 5)),
    ("wd=range(0.0, 0.5, 0.1)", FloatParam("wd", 0.0, 0.4, step=0.1)),
    ("opt=choice(adam, sgd)", CategoricalParam("opt", ("adam", "sgd"))),
    ("act=relu,tanh", CategoricalParam("act", ("relu", "tanh"))),
    ("mixed=choice(1, 2.5, true, 'a b')", CategoricalParam("mixed", (1, 2.5, True, "a b"))),
    ("epochs=10", CategoricalParam("epochs", (10,))),
])
def test_each_expression_becomes_the_parameter_a_sweep_would_cover(
    override: str, param: object
) -> None:
    assert param_from_override(override) == param


def test_float_range_bounds_are_exact_decimals() -> None:
    # Hydra's own iteration gives 0.30000000000000004 for the third value of this range.
    param = param_from_override("p=range(0.1, 0.5, 0.1)")
    assert param == FloatParam("p", 0.1, 0.4, step=0.1)


def test_space_from_a_list_or_a_mapping_keeps_the_order() -> None:
    expected = SearchSpace([FloatParam("lr", 1e-4, 1e-2, log=True), IntParam("layers", 1, 3)])
    assert space_from_overrides(
        ["lr=tag(log, interval(1e-4, 1e-2))", "layers=range(1,4)"]) == expected
    assert space_from_overrides(
        {"lr": "tag(log, interval(1e-4, 1e-2))", "layers": "range(1,4)"}) == expected


def test_dotted_keys_name_the_parameter() -> None:
    assert list(space_from_overrides(["model.lr=interval(0, 1)"])) == ["model.lr"]


@pytest.mark.parametrize(("override", "message"), [
    ("lr=tag(log, interval(1e-5)", "lr: cannot parse 'lr=tag(log, interval(1e-5)': no viable "
     "alternative"),
    ("lr interval(1,2)", "cannot parse"),
    ("x=interval(a, b)", "x: cannot parse 'x=interval(a, b)': TypeError while evaluating"),
    ("x=interval(2, 1)", "x: low (2.0) must not exceed high (1.0)"),
    ("x=tag(log, interval(0, 1))", "x: a log-scaled range needs low > 0"),
    ("x=tag(lg, interval(1, 2))", "x: unknown tag 'lg'; the one tag tunepilot reads is 'log'"),
    ("x=tag(log, choice(1, 2))", "x: tag(log, ...) applies to interval() only"),
    ("x=range(3, 3)", "x: range(3, 3, 1) is empty; the stop is excluded"),
    ("x=shuffle(range(1, 4))", "x: shuffle() has no meaning for a sampler"),
    ("x=glob(*)", "x: glob() is not supported"),
    ("x=choice([1, 2], [3])", "x: choices must be numbers, strings or booleans, got list"),
])
def test_bad_expressions_name_the_parameter_and_the_problem(override: str, message: str) -> None:
    with pytest.raises(SearchSpaceError) as info:
        param_from_override(override)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(SearchSpaceError, match="at least one override"):
        space_from_overrides([])
