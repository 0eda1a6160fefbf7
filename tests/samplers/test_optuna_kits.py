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


@pytest.fixture(autouse=True)
def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


class _LLMSampler:
    @pytest.fixture(params=list(CONFIGURATIONS))
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], LLMSampler]:
        options: dict[str, Any] = CONFIGURATIONS[request.param]
        return lambda: LLMSampler(FakeLLM("valid", seed=0), seed=0, **options)


class TestBasic(_LLMSampler, BasicSamplerTestCase):
    pass


class TestRelative(_LLMSampler, RelativeSamplerTestCase):
    pass


class TestSingleOnly(_LLMSampler, SingleOnlySamplerTestCase):
    pass
