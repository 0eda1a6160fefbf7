"""The names the GP blend takes from optuna._gp, and the prior it builds on them."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

pytest.importorskip("torch")

import torch
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tunepilot.samplers import _gp_internals as internals
from tunepilot.samplers._prior import Prior
from tunepilot.space import SearchSpace

SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "x": FloatDistribution(-2.0, 3.0),
    "layers": IntDistribution(1, 8),
    "width": IntDistribution(16, 512, log=True),
    "act": CategoricalDistribution(["relu", "tanh", "gelu"]),
}
CONFIGS = [
    {"lr": 3e-4, "x": 0.5, "layers": 3, "width": 64, "act": "relu"},
    {"lr": 1e-3, "x": -1.0, "layers": 6, "width": 256, "act": "gelu"},
]


@pytest.mark.parametrize(("module", "name"), internals.USED)
def test_every_private_name_the_gp_blend_uses_is_still_in_optuna(module, name):
    # Optuna promises nothing about optuna._gp between releases: an upgrade that moves
    # one of these fails here, by name, instead of inside a study.
    target = importlib.import_module(module)
    for part in name.split("."):
        assert hasattr(target, part), f"{module}.{name} is gone: adapt samplers/_gp_internals.py"
        target = getattr(target, part)


def test_the_torch_prior_on_the_gps_coordinates_is_the_numpy_prior():
    from optuna._gp.search_space import SearchSpace as GPSpace

    space = SearchSpace.from_optuna(SPACE)
    prior = Prior(space, CONFIGS, unknown=[set(), {"x"}], weights=[2.0, 1.0])
    gp_space = GPSpace(SPACE)
    rng = np.random.RandomState(0)
    points = prior.sample(rng, 50) + [dict(zip(SPACE, v)) for v in zip(
        [1e-5, 0.1], [3.0, -2.0], [1, 8], [16, 512], ["tanh", "relu"])]
    expected = prior.log_pdf(points)
    got = internals.TorchPrior(prior, gp_space, SPACE)(
        torch.from_numpy(internals.normalize(gp_space, points))).numpy()
    # The GP's coordinates stretch integer ranges by half a step each side; undone, the
    # torch prior is the same density, point for point.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_the_torch_prior_has_gradients_for_continuous_dimensions():
    from optuna._gp.search_space import SearchSpace as GPSpace

    space = SearchSpace.from_optuna(SPACE)
    gp_space = GPSpace(SPACE)
    log_prior = internals.TorchPrior(Prior(space, CONFIGS), gp_space, SPACE)
    x = torch.from_numpy(internals.normalize(gp_space, [CONFIGS[0]])[0] + 0.05).requires_grad_(True)
    log_prior(x).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad[0] != 0
