from __future__ import annotations

import math

import numpy as np
import pytest

from tunepilot.samplers._prior import Prior
from tunepilot.space import CategoricalParam, FloatParam, IntParam, SearchSpace

SPACE = SearchSpace([
    FloatParam("lr", 1e-5, 1e-1, log=True),
    IntParam("depth", 1, 16),
    CategoricalParam("act", ("relu", "tanh", "gelu")),
])
PROPOSALS = [{"lr": 1e-3, "depth": 4, "act": "relu"}, {"lr": 2e-3, "depth": 5, "act": "relu"}]


def test_density_peaks_at_the_proposals_and_never_reaches_zero():
    prior = Prior(SPACE, PROPOSALS, epsilon=0.1)
    near, far = prior.log_pdf([{"lr": 1.5e-3, "depth": 4, "act": "relu"}, {"lr": 0.09, "depth": 16, "act": "gelu"}])
    assert near > far
    assert far >= math.log(0.1 / 3) - 1e-9


SMALL = SearchSpace([FloatParam("x", 0.0, 1.0), CategoricalParam("c", ("a", "b"))])


def total_mass(prior: Prior) -> float:
    """∫ π over SMALL: the x axis on a fine grid, summed over both choices of c."""
    grid = np.linspace(0, 1, 4001)
    return float(sum(
        np.trapezoid(np.exp(prior.log_pdf([{"x": float(x), "c": c} for x in grid])), grid)
        for c in ("a", "b")
    ))


def test_density_integrates_to_one_over_the_space():
    prior = Prior(SMALL, [{"x": 0.02, "c": "a"}, {"x": 0.5, "c": "b"}], epsilon=0.2)
    assert total_mass(prior) == pytest.approx(1.0, rel=1e-3)


def test_samples_stay_inside_the_space_and_follow_the_proposals():
    prior = Prior(SPACE, PROPOSALS, epsilon=0.1)
    samples = prior.sample(np.random.RandomState(0), 500)
    assert all(SPACE.contains(s) for s in samples)
    near = [s for s in samples if 3e-4 < s["lr"] < 1e-2]
    assert len(near) > 0.7 * len(samples)
    assert sum(s["act"] == "relu" for s in samples) > 0.6 * len(samples)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least one proposal"):
        Prior(SPACE, [])
    with pytest.raises(ValueError, match="epsilon"):
        Prior(SPACE, PROPOSALS, epsilon=0.0)


def test_a_clamped_value_leaves_its_dimension_uniform():
    space = SearchSpace([FloatParam("x", 0.0, 1.0), FloatParam("y", 0.0, 1.0), CategoricalParam("c", ("a", "b"))])
    # The model said y=40 and c="a" on some other scale; both were clamped into range.
    proposals = [{"x": 0.3, "y": 1.0, "c": "a"}]
    trusting = Prior(space, proposals, epsilon=0.1)
    prior = Prior(space, proposals, epsilon=0.1, unknown=[{"y", "c"}])
    at_bound, inside = {"x": 0.3, "y": 1.0, "c": "a"}, {"x": 0.3, "y": 0.5, "c": "b"}
    assert trusting.log_pdf([at_bound])[0] > trusting.log_pdf([inside])[0] + 2
    # Flat in y and c, still peaked in x.
    assert prior.log_pdf([at_bound])[0] == pytest.approx(prior.log_pdf([inside])[0])
    assert prior.log_pdf([inside])[0] > prior.log_pdf([{"x": 0.9, "y": 0.5, "c": "b"}])[0] + 2
    samples = prior.sample(np.random.RandomState(0), 2000)
    ys = np.array([s["y"] for s in samples])
    assert 0.45 < ys.mean() < 0.55 and (ys > 0.9).mean() < 0.15
    assert 0.4 < np.mean([s["c"] == "a" for s in samples]) < 0.6
    assert np.mean([abs(s["x"] - 0.3) < 0.25 for s in samples]) > 0.85


def test_the_density_with_unknown_values_still_integrates_to_one():
    prior = Prior(SMALL, [{"x": 1.0, "c": "a"}, {"x": 0.4, "c": "b"}], epsilon=0.2, unknown=[{"x"}, {"c"}])
    assert total_mass(prior) == pytest.approx(1.0, rel=1e-3)


def test_unknown_must_match_the_proposals():
    with pytest.raises(ValueError, match="unknown has 1 entries for 2 proposals"):
        Prior(SPACE, PROPOSALS, unknown=[{"lr"}])


def test_kernel_only_draws_leave_out_the_uniform_mass():
    prior = Prior(SMALL, [{"x": 0.5, "c": "a"}], epsilon=0.5, bandwidth=0.03)
    rng = np.random.RandomState(0)
    far = [abs(s["x"] - 0.5) > 0.2 for s in prior.sample(rng, 400)]
    assert 0.25 < np.mean(far) < 0.55  # the ε half, about 60% of it far from the centre
    assert not any(abs(s["x"] - 0.5) > 0.2 for s in prior.sample(rng, 400, uniform=False))
