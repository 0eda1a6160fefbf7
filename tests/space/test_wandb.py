"""W&B sweep parameters: every distribution, defaults, nesting, grids, and sweep configs."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space import SweepConfig, WandbSpace


def one(spec: dict[str, Any]) -> Any:
    return WandbSpace.from_parameters({"p": spec}).params[0]


def values(spec: dict[str, Any], us: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> list[Any]:
    param = one(spec)
    return [param.to_value(u) for u in us]


@pytest.mark.parametrize(
    ("spec", "internal", "checks"),
    [
        ({"value": 7}, None, {None: 7}),
        ({"values": ["a", "b"]}, CategoricalDistribution(["a", "b"]), {"b": "b"}),
        ({"values": [[1, 2], [3]]}, CategoricalDistribution([0, 1]), {1: [3]}),
        ({"min": 1, "max": 5}, IntDistribution(1, 5), {3: 3}),
        ({"min": 0.0, "max": 2}, FloatDistribution(0.0, 2.0), {1.5: 1.5}),
        ({"distribution": "q_uniform", "min": 0, "max": 10, "q": 4}, FloatDistribution(0, 10),
         {5.9: 4, 6.1: 8}),
        ({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25},
         FloatDistribution(0, 1), {0.3: 0.25}),
        ({"distribution": "log_uniform_values", "min": 1e-4, "max": 1},
         FloatDistribution(1e-4, 1, log=True), {0.01: 0.01}),
        ({"distribution": "q_log_uniform_values", "min": 1, "max": 1000, "q": 10},
         FloatDistribution(1, 1000, log=True), {123.0: 120}),
        ({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1},
         FloatDistribution(0.01, 1, log=True), {0.1: 0.1}),
        ({"distribution": "log_uniform", "min": 0, "max": 2}, FloatDistribution(0, 2),
         {1.0: math.e}),
        ({"distribution": "q_log_uniform", "min": 0, "max": 5, "q": 2}, FloatDistribution(0, 5),
         {math.log(9): 10}),
        ({"distribution": "inv_log_uniform", "min": 0, "max": 3}, FloatDistribution(0, 3),
         {1.0: math.exp(-1)}),
    ],
)
def test_each_bounded_distribution(spec: dict[str, Any], internal: Any,
                                   checks: dict[Any, Any]) -> None:
    param = one(spec)
    assert param.internal() == internal
    for given, expected in checks.items():
        assert param.to_value(given) == pytest.approx(expected)
        assert type(param.to_value(given)) is type(expected)


def test_normal_family_maps_a_quantile_through_the_inverse_cdf() -> None:
    assert one({"distribution": "normal"}).internal() == FloatDistribution(0, 1)
    normal = values({"distribution": "normal", "mu": 2, "sigma": 3})
    assert normal[2] == pytest.approx(2.0)
    assert normal[1] == pytest.approx(statistics.NormalDist(2, 3).inv_cdf(0.25))
    assert math.isfinite(normal[0]) and math.isfinite(normal[-1])  # quantiles clipped
    assert values({"distribution": "q_normal", "sigma": 10, "q": 5})[1] == -5
    assert values({"distribution": "log_normal"})[2] == pytest.approx(1.0)
    assert values({"distribution": "q_log_normal", "mu": 3, "q": 1})[2] == round(math.exp(3))


def test_beta_family_uses_scipy() -> None:
    from scipy import stats

    assert values({"distribution": "beta", "a": 2, "b": 5})[1] == pytest.approx(
        stats.beta.ppf(0.25, 2, 5))
    assert values({"distribution": "q_beta", "q": 0.1})[1] == pytest.approx(0.2)


def test_probabilities_pick_values_by_cumulative_share() -> None:
    param = one({"values": ["rare", "common", "never"], "probabilities": [0.1, 0.9, 0.0]})
    assert param.internal() == FloatDistribution(0, 1)
    assert [param.to_value(u) for u in (0.05, 0.1, 0.99, 1.0)] == ["rare", "common",
                                                                   "common", "common"]


def test_nested_parameters_build_a_nested_config() -> None:
    space = WandbSpace.from_parameters({
        "optimizer": {"parameters": {"lr": {"min": 0.1, "max": 1.0},
                                     "kind": {"value": "adam"}}},
        "epochs": {"value": 3},
    })
    assert list(space.distributions()) == ["optimizer.lr"]
    assert space.config_from_internal({"optimizer.lr": 0.5}) == {
        "optimizer": {"lr": 0.5, "kind": "adam"}, "epochs": 3}


def test_grid_walks_every_combination_once_in_order() -> None:
    space = WandbSpace.from_parameters({
        "a": {"values": [1, 2, 3]}, "b": {"min": 0, "max": 2}, "c": {"value": "x"},
        "q": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.5},
    })
    assert space.grid_size == 27
    configs = [space.config_from_internal(p) for p in space.grid_points()]
    assert len({str(c) for c in configs}) == 27
    assert configs[0] == {"a": 1, "b": 0, "c": "x", "q": 0}
    with pytest.raises(IndexError):
        space.grid_point(27)


def test_grids_of_huge_ranges_stay_lazy() -> None:
    space = WandbSpace.from_parameters({"seed": {"min": 0, "max": 10**12}})
    assert space.grid_size == 10**12 + 1
    assert space.grid_point(10**12) == {"seed": 10**12}


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"distribution": "zipf"}, "unknown distribution 'zipf'"),
        ({"min": 1}, "give 'values', 'value', 'min' and 'max'"),
        ({"min": 2, "max": 1}, "must not exceed"),
        ({"distribution": "log_uniform_values", "min": 0, "max": 1}, "needs min > 0"),
        ({"distribution": "log_uniform", "min": 1e-5, "max": 1000}, "did you mean log_uniform_values"),
        ({"values": [1, 2], "probabilities": [0.5, 0.6]}, "sum to 1"),
        ({"distribution": "normal", "sigma": 0}, "sigma must be > 0"),
        ({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0}, "q must be > 0"),
        ({"values": []}, "non-empty list"),
        ({"min": 0, "max": 1, "typo": 1}, "unknown keys ['typo']"),
    ],
)
def test_bad_parameters_say_what_to_change(spec: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SearchSpaceError) as raised:
        WandbSpace.from_parameters({"p": spec})
    assert str(raised.value).startswith("p: ") and fragment in str(raised.value)


def test_grid_refuses_continuous_parameters() -> None:
    with pytest.raises(SearchSpaceError, match="grid sweep cannot enumerate the uniform"):
        WandbSpace.from_parameters({"x": {"min": 0.0, "max": 1.0}}).grid_size  # noqa: B018


def test_sweep_config_defaults_and_validation() -> None:
    config = SweepConfig.parse({"method": "random", "parameters": {"x": {"values": [1]}},
                                "metric": {"name": "acc"}, "entity": "kept"})
    assert config.direction == "minimize" and config.model_extra == {"entity": "kept"}
    hb = SweepConfig.parse({"method": "random", "metric": {"name": "l"},
                            "parameters": {"x": {"values": [1]}},
                            "early_terminate": {"type": "hyperband", "min_iter": 1}})
    assert hb.early_terminate is not None and hb.early_terminate.eta == 3
    assert hb.early_terminate.strict is False
    with pytest.raises(SearchSpaceError, match="method 'bayes' needs a 'metric'"):
        SweepConfig.parse({"method": "bayes", "parameters": {"x": {"values": [1]}}})
    with pytest.raises(SearchSpaceError, match="needs 's'"):
        SweepConfig.parse({"method": "random", "metric": {"name": "l"},
                           "parameters": {"x": {"values": [1]}},
                           "early_terminate": {"type": "hyperband", "max_iter": 27}})


# --- priors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "prior"),
    [
        ({"values": ["a", "b"]}, "b"),
        ({"values": [[1, 2], [3]]}, [3]),
        ({"values": [1, 2.5]}, 1.0),
        ({"min": 1, "max": 9}, 4),
        ({"min": 0.0, "max": 1.0}, 0.3),
        ({"distribution": "q_uniform", "min": 0, "max": 10, "q": 2}, 4),
        ({"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1}, 3e-4),
        ({"distribution": "inv_log_uniform_values", "min": 1e-5, "max": 1e-1}, 3e-4),
        ({"distribution": "log_uniform", "min": -10, "max": 0}, 0.01),
        ({"distribution": "inv_log_uniform", "min": 0, "max": 10}, 0.01),
        ({"distribution": "normal", "mu": 2, "sigma": 3}, 5.0),
        ({"distribution": "log_normal", "mu": 0, "sigma": 1}, 2.0),
        ({"distribution": "beta", "a": 2, "b": 5}, 0.3),
    ],
)
def test_a_prior_is_the_internal_value_the_run_would_receive_it_from(
    spec: dict[str, Any], prior: Any
) -> None:
    space = WandbSpace.from_parameters({"p": {**spec, "prior": prior, "confidence": "high"}})
    belief = space.beliefs()["p"]
    assert belief.confidence == "high"
    assert space.search_space()["p"].contains(belief.value)
    received = space.params[0].to_value(belief.value)
    if isinstance(prior, float):
        assert received == pytest.approx(prior, rel=1e-9)
    else:
        assert received == prior


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"min": 0.0, "max": 1.0, "prior": 2.0},
         "parameters.p.prior: 2.0 is outside the range [0.0, 1.0]"),
        ({"distribution": "log_uniform", "min": -10, "max": 0, "prior": 2.0},
         "parameters.p.prior: 2.0 is outside the range [4.5399929762484854e-05, 1.0]"),
        ({"min": 1, "max": 9, "prior": 2.5}, "parameters.p.prior: 2.5 is not an integer"),
        ({"min": 0.0, "max": 1.0, "prior": "high"},
         "parameters.p.prior: must be a finite number, got 'high'"),
        ({"values": ["a", "b"], "prior": "c"},
         "parameters.p.prior: 'c' is not one of the values ['a', 'b']"),
        ({"values": ["a", "b"], "probabilities": [0.5, 0.5], "prior": "a"},
         "'probabilities' already weigh the values"),
        ({"value": 3, "prior": 3}, "parameters.p.prior: a constant is not searched"),
        ({"distribution": "log_normal", "prior": -1.0}, "-1.0 must be > 0 for log_normal"),
        ({"distribution": "beta", "prior": 1.5}, "1.5 is outside [0, 1]"),
        ({"min": 0.0, "max": 1.0, "prior": 0.5, "confidence": "sure"},
         "parameters.p.confidence: must be one of low, medium, high, got 'sure'"),
        ({"min": 0.0, "max": 1.0, "confidence": "high"},
         "parameters.p.confidence: a confidence without a prior"),
    ],
)
def test_a_bad_prior_names_its_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SearchSpaceError) as raised:
        WandbSpace.from_parameters({"p": spec})
    assert message in str(raised.value)


def test_nested_priors_are_kept_by_dotted_name() -> None:
    space = WandbSpace.from_parameters({"optimizer": {"parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1, "prior": 1e-3},
        "name": {"values": ["adam", "sgd"]},
    }}})
    assert list(space.beliefs()) == ["optimizer.lr"]
    assert space.beliefs()["optimizer.lr"].value == pytest.approx(1e-3)


def test_blend_sweeps_take_priors_and_earlier_sweeps() -> None:
    config = SweepConfig.parse({
        "method": "blend", "metric": {"name": "loss"}, "prior_from": "abc123",
        "parameters": {"lr": {"min": 0.001, "max": 0.1, "prior": 0.01}},
    })
    assert config.prior_from == ["abc123"]
    assert config.beliefs["lr"].value == 0.01
    listed = SweepConfig.parse({"method": "blend", "metric": {"name": "loss"},
                                "prior_from": ["a1", "b2"], "parameters": {"x": {"values": [1]}}})
    assert listed.prior_from == ["a1", "b2"] and listed.beliefs == {}


@pytest.mark.parametrize("method", ["random", "grid", "bayes", "llm"])
def test_other_methods_refuse_priors_naming_the_field(method: str) -> None:
    base = {"method": method, "metric": {"name": "loss"}}
    with pytest.raises(SearchSpaceError, match=rf"^parameters.x.prior: method '{method}' "
                                               "cannot use a prior; set method: blend$"):
        SweepConfig.parse({**base, "parameters": {"x": {"values": [1, 2], "prior": 2}}})
    with pytest.raises(SearchSpaceError, match=rf"^prior_from: method '{method}' cannot start "
                                               "from earlier sweeps; set method: blend$"):
        SweepConfig.parse({**base, "prior_from": "abc123",
                           "parameters": {"x": {"values": [1, 2]}}})
