"""Parameters: construction errors, membership, repair of untrusted values, unit scaling."""

from __future__ import annotations

from typing import Any

import pytest
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space import CategoricalParam, FloatParam, IntParam, Param
from tunepilot.space._params import InvalidValue, param_from_distribution

# --- construction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FloatParam("lr", 1.0, 0.5), r"^lr: low \(1.0\) must not exceed high \(0.5\)$"),
        (lambda: IntParam("layers", 8, 1), r"^layers: low \(8\) must not exceed high \(1\)$"),
        (lambda: FloatParam("lr", 0.0, 1.0, log=True), r"^lr: a log-scaled range needs low > 0"),
        (lambda: FloatParam("lr", -1.0, 1.0, log=True), r"needs low > 0, got -1.0"),
        (lambda: IntParam("units", 0, 64, log=True), r"^units: a log-scaled int range needs low >= 1"),
        (lambda: IntParam("units", 1, 64, log=True, step=2), r"needs low >= 1 and step 1"),
        (lambda: FloatParam("lr", 0.1, 1.0, log=True, step=0.1), r"^lr: step and log cannot be"),
        (lambda: FloatParam("drop", 0.0, 1.0, step=0.0), r"^drop: step must be > 0, got 0.0"),
        (lambda: FloatParam("drop", 0.0, 1.0, step=-0.1), r"step must be > 0"),
        (lambda: IntParam("batch", 0, 10, step=0), r"^batch: step must be >= 1, got 0"),
        (lambda: IntParam("batch", 0, 2.5), r"^batch: high must be an integer, got 2.5"),  # type: ignore[arg-type]
        (lambda: IntParam("batch", True, 4), r"^batch: low must be an integer, got True"),
        (lambda: FloatParam("x", float("nan"), 1.0), r"^x: low must be a finite number, got nan"),
        (lambda: FloatParam("x", 0.0, float("inf")), r"^x: high must be a finite number, got inf"),
        (lambda: FloatParam("x", "0", 1.0), r"^x: low must be a finite number, got '0'"),  # type: ignore[arg-type]
        (lambda: CategoricalParam("kernel", ()), r"^kernel: a categorical parameter needs at least one"),
        (
            lambda: CategoricalParam("kernel", ("rbf", ["poly", 3])),  # type: ignore[arg-type]
            r"^kernel: choices must be None, bool, int, float or str; got list",
        ),
        (
            lambda: CategoricalParam("kernel", ({"name": "rbf"},)),  # type: ignore[arg-type]
            r"got dict",
        ),
    ],
)
def test_invalid_definitions_raise_a_message_naming_the_parameter(make: Any, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        make()


def test_int_step_that_does_not_divide_the_range_suggests_the_right_high() -> None:
    with pytest.raises(SearchSpaceError, match=r"must be a multiple of step \(3\); set high to 9$"):
        IntParam("units", 0, 10, step=3)
    assert IntParam("units", 0, 9, step=3).high == 9


def test_float_step_that_does_not_divide_the_range_is_rejected_like_an_int_step() -> None:
    # Optuna would warn and silently shrink the range to [0, 0.9], so the space and the
    # distribution handed to Optuna would disagree about whether 1.0 can be tried.
    with pytest.raises(SearchSpaceError, match=r"multiple of step.*0\.9"):
        FloatParam("drop", 0.0, 1.0, step=0.3)


@pytest.mark.parametrize(
    ("low", "high", "step"),
    [(0.0, 0.3, 0.1), (0.1, 0.3, 0.1), (-100.0, -99.8, 0.1), (0.0, 1.0, 0.05),
     (1e-3, 1e-2, 1e-3), (0.5, 0.5, 0.1), (0.0, 64.0, 2.0)],
)
def test_float_step_on_a_decimal_grid_is_accepted(low: float, high: float, step: float) -> None:
    param = FloatParam("drop", low, high, step=step)
    assert param.to_distribution() == FloatDistribution(low, high, step=step)
    assert param.contains(high)
    assert param.contains(low)


def test_categorical_choices_given_as_a_list_are_stored_as_a_tuple() -> None:
    param = CategoricalParam("kernel", ["rbf", "linear"])  # type: ignore[arg-type]
    assert param.choices == ("rbf", "linear")
    assert param == CategoricalParam("kernel", ("rbf", "linear"))
    hash(param)


# --- contains -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "inside"),
    [
        (0.0, True),
        (1.0, True),
        (0.5, True),
        (1, True),
        (-1e-12, False),
        (1.0000001, False),
        (float("nan"), False),
        (float("inf"), False),
        (True, False),
        (False, False),
        ("0.5", False),
        (None, False),
        ([0.5], False),
    ],
)
def test_float_contains_checks_bounds_and_type(value: Any, inside: bool) -> None:
    assert FloatParam("x", 0.0, 1.0).contains(value) is inside


def test_float_contains_accepts_grid_points_with_float_error() -> None:
    param = FloatParam("drop", 0.0, 1.0, step=0.1)
    assert 0.1 * 3 == 0.30000000000000004
    assert param.contains(0.30000000000000004)
    assert param.contains(0.3)
    assert param.contains(1.0)
    assert not param.contains(0.35)
    assert not param.contains(0.31)


@pytest.mark.parametrize(
    ("value", "inside"),
    [(0, True), (4, True), (10, True), (5, False), (4.5, False), (12, False), (-2, False),
     (True, False), ("4", False), (None, False), (float("nan"), False), (float("inf"), False)],
)
def test_int_contains_checks_bounds_step_and_type(value: Any, inside: bool) -> None:
    assert IntParam("units", 0, 10, step=2).contains(value) is inside


def test_huge_integers_are_outside_numeric_ranges_rather_than_an_error() -> None:
    # JSON allows integers of up to 4300 digits; 10**400 does not fit in a float.
    assert FloatParam("x", 0.0, 1.0).contains(10**400) is False
    assert IntParam("n", 0, 10).contains(10**400) is False
    assert IntParam("n", 0, 10).contains(2**70) is False


def test_categorical_contains_matches_kind_as_well_as_value() -> None:
    flags = CategoricalParam("flag", (True, False))
    assert flags.contains(True)
    assert not flags.contains(1)
    assert not flags.contains("true")

    numbers = CategoricalParam("n", (1, 2))
    assert numbers.contains(1)
    assert numbers.contains(1.0)
    assert not numbers.contains(True)
    assert not numbers.contains("1")

    texts = CategoricalParam("kernel", ("rbf", "linear"))
    assert texts.contains("rbf")
    assert not texts.contains("RBF")
    assert not texts.contains(None)

    nullable = CategoricalParam("depth", (None, 3))
    assert nullable.contains(None)
    assert not nullable.contains("None")


# --- repair -------------------------------------------------------------------------------


def test_float_repair_clamps_out_of_range_values() -> None:
    param = FloatParam("lr", 1e-3, 1.0, log=True)
    assert param.repair(5) == (1.0, ["clamped"])
    assert param.repair(0.0) == (1e-3, ["clamped"])
    assert param.repair(0.01) == (0.01, [])
    assert type(param.repair(1)[0]) is float


def test_float_repair_snaps_to_the_step() -> None:
    param = FloatParam("drop", 0.0, 1.0, step=0.25)
    assert param.repair(0.3) == (0.25, ["snapped"])
    assert param.repair(0.4) == (0.5, ["snapped"])
    assert param.repair(0.5) == (0.5, [])
    assert param.repair(7) == (1.0, ["clamped"])


def test_float_repair_does_not_report_float_error_as_a_snap() -> None:
    value, repairs = FloatParam("drop", 0.0, 1.0, step=0.1).repair(0.30000000000000004)
    assert repairs == []
    assert value == pytest.approx(0.3)


def test_float_repair_of_the_top_grid_point_stays_inside_the_range() -> None:
    # 3 * 0.1 == 0.30000000000000004 > 0.3: snapping must not step past high.
    param = FloatParam("drop", 0.0, 0.3, step=0.1)
    for raw in (0.3, 0.29, 5.0):
        value, _ = param.repair(raw)
        assert param.contains(value), (raw, value)
        assert param.to_distribution()._contains(value)


def test_int_repair_rounds_snaps_and_clamps() -> None:
    param = IntParam("units", 0, 10, step=2)
    assert param.repair(7.2) == (8, ["snapped"])
    assert param.repair(5.9) == (6, ["snapped"])
    assert param.repair(4) == (4, [])
    assert param.repair(4.0) == (4, [])
    assert type(param.repair(4.0)[0]) is int
    assert param.repair(-3) == (0, ["clamped"])
    assert param.repair(11) == (10, ["clamped"])
    assert IntParam("units", 0, 9, step=3).repair(100) == (9, ["clamped"])


def test_int_repair_is_exact_beyond_float_precision() -> None:
    # A seed range: 2**54 - 1 has no exact float, so float arithmetic changes it.
    param = IntParam("seed", 0, 2**54 - 1)
    assert param.repair(2**54 - 1) == (2**54 - 1, [])
    assert param.repair(2**53 + 1) == (2**53 + 1, [])
    assert param.contains(param.repair(2**60)[0])


@pytest.mark.parametrize(
    ("param", "raw", "expected"),
    [
        (FloatParam("lr", 0.0, 1.0), "0.5", (0.5, ["coerced"])),
        (FloatParam("lr", 0.0, 1.0), " 1e-3 ", (0.001, ["coerced"])),
        (FloatParam("lr", 0.0, 1000.0), "5000", (1000.0, ["coerced", "clamped"])),
        (IntParam("units", 0, 100), " 7 ", (7, ["coerced"])),
        (IntParam("units", 0, 100), "+7", (7, ["coerced"])),
        (IntParam("units", 0, 100), "1e1", (10, ["coerced"])),
        (IntParam("units", 0, 100), "7.6", (8, ["coerced", "snapped"])),
    ],
)
def test_numeric_text_is_coerced(param: Param, raw: str, expected: tuple[Any, list[str]]) -> None:
    assert param.repair(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [float("nan"), float("inf"), float("-inf"), None, [0.5], {"value": 0.5}, True, False,
     "", "abc", "nan", "inf", "-Infinity", "1e400", "0.5.1", "9" * 5000],
)
@pytest.mark.parametrize("param", [FloatParam("lr", 0.0, 1.0), IntParam("lr", 0, 10)])
def test_unrepairable_numbers_raise_invalid_value_naming_the_parameter(
    param: Param, raw: Any
) -> None:
    with pytest.raises(InvalidValue, match=r"^lr: expected a (finite )?number"):
        param.repair(raw)


def test_invalid_text_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidValue) as info:
        FloatParam("lr", 0.0, 1.0).repair("x" * 10_000)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("huge", [2**70, -(2**70), 10**400, "9" * 400])
def test_huge_integers_are_clamped(huge: Any) -> None:
    float_value, float_repairs = FloatParam("lr", 0.0, 1.0).repair(huge)
    int_value, int_repairs = IntParam("units", 0, 10).repair(huge)
    negative = not isinstance(huge, str) and huge < 0
    assert float_value == (0.0 if negative else 1.0)
    assert int_value == (0 if negative else 10)
    assert "clamped" in float_repairs
    assert "clamped" in int_repairs


def test_categorical_repair_matches_case_and_whitespace_insensitively() -> None:
    param = CategoricalParam("kernel", ("rbf", "linear", "Poly"))
    assert param.repair("rbf") == ("rbf", [])
    assert param.repair("RBF") == ("rbf", ["coerced"])
    assert param.repair(" Linear ") == ("linear", ["coerced"])
    assert param.repair("poly") == ("Poly", ["coerced"])


def test_categorical_repair_returns_the_choice_itself() -> None:
    value, repairs = CategoricalParam("n", (1, 2)).repair(1.0)
    assert (value, repairs) == (1, [])
    assert type(value) is int


@pytest.mark.parametrize(
    ("choices", "raw", "message"),
    [
        (("rbf", "linear"), "sigmoid", r"^kernel: 'sigmoid' is not one of \['rbf', 'linear'\]$"),
        (("rbf", "linear"), None, r"^kernel: None is not one of"),
        (("rbf", "linear"), ["rbf"], r"^kernel: \['rbf'\] is not one of"),
        ((0, 1), True, r"^kernel: True is not one of \[0, 1\]"),
        ((0, 1), 2, r"^kernel: 2 is not one of"),
        (("a", "A"), " a ", r"^kernel: ' a ' is not one of"),  # ambiguous: never guess
    ],
)
def test_categorical_repair_rejects_unknown_categories(
    choices: tuple[Any, ...], raw: Any, message: str
) -> None:
    with pytest.raises(InvalidValue, match=message):
        CategoricalParam("kernel", choices).repair(raw)


# --- unit scaling -------------------------------------------------------------------------


def test_to_unit_is_linear_or_logarithmic() -> None:
    assert FloatParam("x", 0.0, 10.0).to_unit(2.5) == pytest.approx(0.25)
    log = FloatParam("C", 1e-3, 1e3, log=True)
    assert log.to_unit(1e-3) == pytest.approx(0.0)
    assert log.to_unit(1.0) == pytest.approx(0.5)
    assert log.to_unit(1e3) == pytest.approx(1.0)
    assert IntParam("units", 1, 1024, log=True).to_unit(32) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("param", "values"),
    [
        (FloatParam("x", -5.0, 5.0), [-5.0, -1.25, 0.0, 3.3, 5.0]),
        (FloatParam("C", 1e-3, 1e3, log=True), [1e-3, 0.02, 1.0, 77.0, 1e3]),
        (IntParam("units", 1, 1024, log=True), [1, 2, 32, 1000, 1024]),
        (IntParam("units", 0, 10, step=2), [0, 4, 10]),
        (FloatParam("drop", 0.0, 0.5, step=0.1), [0.0, 0.2, 0.5]),
    ],
)
def test_from_unit_inverts_to_unit(param: Param, values: list[float]) -> None:
    assert not isinstance(param, CategoricalParam)
    for value in values:
        assert param.from_unit(param.to_unit(value)) == pytest.approx(value, rel=1e-9)


def test_from_unit_clamps_and_snaps_into_the_space() -> None:
    log = FloatParam("C", 1e-3, 1e3, log=True)
    assert log.from_unit(0.0) == pytest.approx(1e-3)
    assert log.from_unit(-3.0) == pytest.approx(1e-3)
    assert log.from_unit(1.0) <= 1e3
    assert log.from_unit(7.0) == pytest.approx(1e3)
    assert IntParam("units", 0, 10, step=2).from_unit(0.33) == 4
    assert IntParam("units", 1, 1024, log=True).from_unit(0.5) == 32


def test_a_single_point_range_maps_to_the_middle_and_back() -> None:
    param = FloatParam("x", 2.0, 2.0)
    assert param.to_unit(2.0) == 0.5
    assert param.from_unit(0.9) == 2.0


# --- Optuna distributions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "distribution"),
    [
        (FloatParam("x", -1.0, 1.0), FloatDistribution(-1.0, 1.0)),
        (FloatParam("C", 1e-3, 1e3, log=True), FloatDistribution(1e-3, 1e3, log=True)),
        (FloatParam("drop", 0.0, 0.5, step=0.1), FloatDistribution(0.0, 0.5, step=0.1)),
        (IntParam("units", 0, 10), IntDistribution(0, 10)),
        (IntParam("units", 0, 12, step=4), IntDistribution(0, 12, step=4)),
        (IntParam("units", 1, 1024, log=True), IntDistribution(1, 1024, log=True)),
        (CategoricalParam("k", ("rbf", None, 3, 0.5, True)),
         CategoricalDistribution(("rbf", None, 3, 0.5, True))),
    ],
)
def test_to_distribution_round_trips(param: Param, distribution: Any) -> None:
    assert param.to_distribution() == distribution
    assert param_from_distribution(param.name, param.to_distribution()) == param


class _Normal(BaseDistribution):
    """A distribution tunepilot cannot express: unbounded."""

    def to_internal_repr(self, param_value_in_external_repr: Any) -> float:
        return float(param_value_in_external_repr)

    def single(self) -> bool:
        return False

    def _contains(self, param_value_in_internal_repr: float) -> bool:
        return True


def test_unsupported_distribution_is_a_search_space_error() -> None:
    with pytest.raises(SearchSpaceError, match=r"^x: unsupported distribution _Normal$"):
        param_from_distribution("x", _Normal())


# --- description --------------------------------------------------------------------------


def test_describe_names_type_range_scale_and_step() -> None:
    assert FloatParam("C", 1e-3, 1e3, log=True).describe() == "float in [0.001, 1000], log scale"
    assert FloatParam("drop", 0.0, 0.5, step=0.1).describe() == "float in [0, 0.5], step 0.1"
    assert IntParam("units", 1, 1024, log=True).describe() == "int in [1, 1024], log scale"
    assert IntParam("units", 0, 12, step=4).describe() == "int in [0, 12], step 4"
    assert IntParam("units", 0, 12).describe() == "int in [0, 12]"
    assert (
        CategoricalParam("k", ("rbf", None, True, 3, 0.5)).describe()
        == 'one of "rbf", null, true, 3, 0.5'
    )


@pytest.mark.parametrize(
    ("param", "text"),
    [
        (FloatParam("max_features", 0.01, 0.99),
         "a fraction from 0.01 to 0.99, not a count or a percentage"),
        (FloatParam("drop", 0.0, 0.5, step=0.1),
         "a fraction from 0 to 0.5, not a count or a percentage, in steps of 0.1"),
        (FloatParam("x", -5.0, 10.0), "a decimal number from -5 to 10"),
        (FloatParam("lr", 1e-5, 0.1, log=True), "log scale from 1e-5 to 0.1: a value such as 1e-3"),
        (FloatParam("gamma", 1e-4, 1e-3, log=True),
         "log scale from 0.0001 to 0.001: a value such as 3e-4"),
        (FloatParam("C", 1.0, 1000.0, log=True), "log scale from 1 to 1000: a value such as 30"),
        (FloatParam("alpha", 1e-5, 10.0, log=True), "log scale from 1e-5 to 10: a value such as 0.01"),
        (FloatParam("narrow", 0.56, 0.58, log=True),
         "log scale from 0.56 to 0.58: a value such as 0.57"),
        (IntParam("units", 50, 200), "a whole number from 50 to 200"),
        (IntParam("units", 1, 1024, log=True), "a whole number from 1 to 1024, log scale"),
        (IntParam("units", 0, 12, step=4), "a whole number from 0 to 12, in steps of 4"),
        (CategoricalParam("k", ("rbf", None)), 'one of "rbf", null'),
    ],
)
def test_explain_says_the_scale_in_plain_words(param: Param, text: str) -> None:
    assert param.explain() == text


@pytest.mark.parametrize("bounds", [(1e-5, 0.1), (1e-4, 1e-3), (0.56, 0.58), (3e-9, 4e-9), (2.0, 3e6)])
def test_the_example_of_a_log_range_lies_inside_it(bounds: tuple[float, float]) -> None:
    example = FloatParam("x", *bounds, log=True).explain().rpartition("such as ")[2]
    assert bounds[0] <= float(example) <= bounds[1]


def test_json_schema_per_parameter() -> None:
    assert FloatParam("x", 0.0, 1.0).json_schema() == {
        "type": "number", "minimum": 0.0, "maximum": 1.0,
    }
    assert IntParam("n", 1, 8).json_schema() == {"type": "integer", "minimum": 1, "maximum": 8}
    assert CategoricalParam("k", ("a", None)).json_schema() == {"enum": ["a", None]}
