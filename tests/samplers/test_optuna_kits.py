"""Optuna's own test kits for sampler authors, run against LLMSampler.

``optuna.testing.pytest_samplers`` is what Optuna checks its samplers with: every
distribution, conditional and dynamic spaces, NaN objectives, fixed parameters,
relative sampling with Python-typed values. LLMSampler runs them in both modes and,
in blend mode, on both bases, with ``n_startup_trials=0`` as Optuna's suites set it for
TPE and GP, and a fake model that answers inside the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
import pytest
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)

from tunepilot import LLMSampler
from tunepilot.testing import FakeLLM

pytest.importorskip("torch")

CONFIGURATIONS = {
    "llm": {"mode": "llm"},
    "blend-tpe": {"mode": "blend", "base": "tpe", "n_startup_trials": 0},
    "blend-gp": {"mode": "blend", "base": "gp", "n_startup_trials": 0},
}
#: The kit's numerical relative test crosses 6 distributions with 6 (36 cases). The
#: GP's cases take 10–80 s each here (its q-batch acquisition over up to ten running
#: trials), so the GP base runs every distribution once, each paired with the next.
_NUMERIC = [
    FloatDistribution(-1.0, 1.0),
    FloatDistribution(1e-7, 1.0, log=True),
    FloatDistribution(-10, 10, step=0.5),
    IntDistribution(3, 10),
    IntDistribution(1, 100, log=True),
    IntDistribution(3, 9, step=2),
]
GP_PAIRS = [(x, _NUMERIC[(i + 1) % len(_NUMERIC)]) for i, x in enumerate(_NUMERIC)]


@pytest.fixture(autouse=True)
def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _make(name: str) -> Callable[[], LLMSampler]:
    options: dict[str, Any] = CONFIGURATIONS[name]
    return lambda: LLMSampler(FakeLLM("valid", seed=0), seed=0, **options)


class _EveryConfiguration:
    @pytest.fixture(params=list(CONFIGURATIONS))
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], LLMSampler]:
        return _make(request.param)


class _WithoutGP:
    @pytest.fixture(params=[n for n in CONFIGURATIONS if n != "blend-gp"])
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], LLMSampler]:
        return _make(request.param)


class TestBasic(_EveryConfiguration, BasicSamplerTestCase):
    pass


class TestRelative(_WithoutGP, RelativeSamplerTestCase):
    pass


class TestRelativeOnTheGP(RelativeSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], LLMSampler]:
        return _make("blend-gp")

    @pytest.mark.parametrize(("x_distribution", "y_distribution"), GP_PAIRS)
    def test_sample_relative_numerical(
        self, sampler: Callable[[], LLMSampler], x_distribution: BaseDistribution,
        y_distribution: BaseDistribution,
    ) -> None:
        super().test_sample_relative_numerical(sampler, x_distribution, y_distribution)


class TestSingleOnly(_EveryConfiguration, SingleOnlySamplerTestCase):
    pass
