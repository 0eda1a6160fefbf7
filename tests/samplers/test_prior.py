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


def test_density_integrates_to_one_over_the_space():
    space = SearchSpace([FloatParam("x", 0.0, 1.0), CategoricalParam("c", ("a", "b"))])
    prior = Prior(space, [{"x": 0.02, "c": "a"}, {"x": 0.5, "c": "b"}], epsilon=0.2)
    grid = np.linspace(0, 1, 4001)
    total = sum(
        np.trapezoid(np.exp(prior.log_pdf([{"x": float(x), "c": c} for x in grid])), grid)
        for c in ("a", "b")
    )
    assert total == pytest.approx(1.0, rel=1e-3)


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
