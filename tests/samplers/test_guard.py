"""llm mode's safeguard: a weak model loses its trials to the base, a strong one keeps them."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution

from tunepilot import LLMSampler
from tunepilot.testing import ControlledPrior

D = 3
SPACE = {f"x{i}": FloatDistribution(-5.0, 5.0) for i in range(D)}
OPTIMUM = {f"x{i}": 1.0 + i for i in range(D)}
WORST = {f"x{i}": -5.0 for i in range(D)}


def sphere(trial: optuna.Trial) -> float:
    return sum((trial.suggest_float(n, -5.0, 5.0) - OPTIMUM[n]) ** 2 for n in SPACE)


@pytest.fixture(autouse=True)
def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def run(centre: dict[str, float], seed: int, n: int = 30) -> optuna.Study:
    sampler = LLMSampler(ControlledPrior(centre, 0.05, seed=seed), mode="llm", search_space=SPACE,
                         seed=seed)
    study = optuna.create_study(sampler=sampler)
    study.optimize(sphere, n_trials=n)
    return study


def sources(study: optuna.Study) -> list[str]:
    return [t.user_attrs["llm.source"] for t in study.trials]


@pytest.mark.parametrize("seed", range(3))
def test_a_model_that_loses_keeps_only_the_floor_of_the_trials(seed):
    study = run(WORST, seed)
    got = sources(study)
    # The first trial on trust, the second the base's to compare it; after that the
    # losing model gets one trial in ten.
    assert got[:2] == ["llm", "base"], got
    assert got.count("llm") <= 1 + 30 // 10, got
    assert all(0 < t.user_attrs["llm.model_share"] <= 0.1 for t in study.trials[2:])
    # What the base found is what random search and TPE would: the model's losing
    # advice did not drag the study down.
    tpe = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    tpe.optimize(sphere, n_trials=30)
    assert study.best_value < 4 * tpe.best_value + 2.0, (study.best_value, tpe.best_value)


@pytest.mark.parametrize("seed", range(3))
def test_a_model_that_wins_keeps_control(seed):
    study = run(OPTIMUM, seed)
    got = sources(study)
    assert got[:2] == ["llm", "base"], got
    # Once its trials beat the base's by two standard errors of chance, it takes them all.
    assert got[-10:].count("llm") >= 9, got
    assert got.count("llm") >= 20, got


def test_without_the_safeguard_every_trial_is_the_models():
    sampler = LLMSampler(ControlledPrior(WORST, 0.05, seed=0), mode="llm", search_space=SPACE,
                         seed=0, safeguard=False)
    study = optuna.create_study(sampler=sampler)
    study.optimize(sphere, n_trials=6)
    assert sources(study) == ["llm"] * 6
