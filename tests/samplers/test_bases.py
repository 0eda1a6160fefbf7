"""Which base the blend builds on: GP or TPE, chosen per study, recorded per trial."""

from __future__ import annotations

import datetime

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from tunepilot import LLMSampler
from tunepilot.samplers import _bases
from tunepilot.testing import ControlledPrior

pytest.importorskip("torch")

SPACE = {"x": FloatDistribution(-5, 5), "y": FloatDistribution(-5, 5)}


@pytest.fixture(autouse=True)
def quiet():
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def quadratic(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", -5, 5) ** 2 + (trial.suggest_float("y", -5, 5) - 1) ** 2


def bases(study: optuna.Study) -> list[str | None]:
    return [t.user_attrs.get("llm.base") for t in study.trials]


def test_auto_takes_the_gp_on_a_fixed_numeric_space():
    sampler = LLMSampler(ControlledPrior({"x": 0.0, "y": 1.0}, 0.1, seed=0), search_space=SPACE,
                         seed=0, n_startup_trials=5)
    study = optuna.create_study(sampler=sampler)
    study.optimize(quadratic, n_trials=12)
    assert set(bases(study)[5:]) == {"gp"}
    assert {t.user_attrs["llm.blend_part"] for t in study.trials[5:]} <= {"gp", "prior"}


@pytest.mark.parametrize("base", ["gp", "tpe"])
def test_a_fixed_base_is_used_and_recorded(base):
    sampler = LLMSampler(ControlledPrior({"x": 0.0, "y": 1.0}, 0.1, seed=0), search_space=SPACE,
                         seed=0, n_startup_trials=5, base=base)
    study = optuna.create_study(sampler=sampler)
    study.optimize(quadratic, n_trials=8)
    assert set(bases(study)) == {base}


def test_auto_takes_tpe_for_many_categorical_combinations():
    space = {f"c{i}": CategoricalDistribution(["a", "b", "c", "d"]) for i in range(3)}

    def objective(trial: optuna.Trial) -> float:
        return sum(trial.suggest_categorical(n, ["a", "b", "c", "d"]) == "b" for n in space)

    sampler = LLMSampler(ControlledPrior({n: "b" for n in space}, 0.1, seed=0),
                         search_space=space, seed=0, n_startup_trials=4)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(objective, n_trials=6)
    assert bases(study)[4:] == ["tpe", "tpe"]


def test_auto_leaves_the_gp_when_it_costs_more_than_its_share_of_the_objective(monkeypatch):
    # A GP step of 3 s, longer than MIN_GP_SECONDS and a quarter of the objective's
    # time: the study goes on with TPE, for good. The clock is the fault injected here.
    clock = iter(3.0 * i for i in range(10_000))
    monkeypatch.setattr(_bases, "_now", lambda: next(clock))  # every step: 3 s
    sampler = LLMSampler(ControlledPrior({"x": 0.0, "y": 1.0}, 0.1, seed=0), search_space=SPACE,
                         seed=0, n_startup_trials=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(quadratic, n_trials=12)
    assert bases(study)[3:6] == ["gp", "gp", "gp"]
    assert set(bases(study)[7:]) == {"tpe"}


def test_auto_keeps_the_gp_while_the_objective_is_slow_next_to_it(monkeypatch):
    clock = iter(3.0 * i for i in range(10_000))
    monkeypatch.setattr(_bases, "_now", lambda: next(clock))  # every step: 3 s
    sampler = LLMSampler(ControlledPrior({"x": 0.0, "y": 1.0}, 0.1, seed=0), search_space=SPACE,
                         seed=0, n_startup_trials=3)
    study = optuna.create_study(sampler=sampler)
    start = datetime.datetime(2026, 1, 1)
    for i in range(6):  # earlier trials that took 20 s each: a GP step of 3 s is 15% of that
        study.add_trial(optuna.trial.FrozenTrial(
            number=i, state=optuna.trial.TrialState.COMPLETE, value=float(10 - i),
            datetime_start=start, datetime_complete=start + datetime.timedelta(seconds=20),
            params={"x": i - 2.5, "y": 0.5 * i}, distributions=SPACE, user_attrs={},
            system_attrs={}, intermediate_values={}, trial_id=i))
    study.optimize(quadratic, n_trials=4)
    assert bases(study)[6:] == ["gp"] * 4


def test_base_gp_without_torch_says_what_to_install(monkeypatch):
    monkeypatch.setattr(_bases, "torch_available", lambda: False)
    with pytest.raises(ValueError, match="pip install torch"):
        LLMSampler(None, prior={"x": 0.0}, search_space=SPACE, base="gp")
    sampler = LLMSampler(None, prior={"x": 0.0}, search_space=SPACE, base="auto", seed=0,
                         n_startup_trials=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(quadratic, n_trials=5)
    assert set(bases(study)) == {"tpe"}
