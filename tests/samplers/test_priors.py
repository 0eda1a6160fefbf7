"""Priors without a language model: the user's beliefs and earlier studies, each trusted
on its own evidence, recorded on every trial they shape."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from tunepilot import LLMSampler
from tunepilot.exceptions import LLMConfigError, SearchSpaceError
from tunepilot.samplers import StudyRef
from tunepilot.space import Belief
from tunepilot.testing import ControlledPrior

SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "x": FloatDistribution(-5.0, 5.0),
    "act": CategoricalDistribution(["relu", "tanh", "gelu"]),
}
BEST = {"lr": 3e-3, "x": 1.5, "act": "gelu"}


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    x = trial.suggest_float("x", -5.0, 5.0)
    act = trial.suggest_categorical("act", ["relu", "tanh", "gelu"])
    return float((np.log10(lr) - np.log10(3e-3)) ** 2 + (x - 1.5) ** 2 + (act != "gelu"))


@pytest.fixture(autouse=True)
def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def run(sampler: optuna.samplers.BaseSampler, n: int, **study: object) -> optuna.Study:
    s = optuna.create_study(sampler=sampler, **study)  # type: ignore[arg-type]
    s.optimize(objective, n_trials=n)
    return s


def test_a_user_prior_needs_no_model_and_is_recorded_on_the_trials_it_shapes():
    sampler = LLMSampler(None, prior={"lr": Belief(3e-3, "high"), "act": "gelu"},
                         search_space=SPACE, seed=0, base="tpe")
    study = run(sampler, 14)
    attrs = [t.user_attrs for t in study.trials]
    assert attrs[0]["llm.blend_part"] == "prior" and attrs[0]["llm.prior_source"] == "user"
    # The beliefs are tried as they stand first; the parameter without one is drawn.
    assert study.trials[0].params["lr"] == pytest.approx(3e-3) and study.trials[0].params["act"] == "gelu"
    assert attrs[0]["llm.prior_sources"] == ["user"]
    assert {a["llm.source"] for a in attrs} == {"blend"}
    assert sampler.stats.calls == 0  # no model was asked
    assert all(set(a["llm.betas"]) == {"user"} for a in attrs)
    shaped = [a for a in attrs[10:] if a["llm.prior_sources"]]
    assert all(a["llm.prior_sources"] == ["user"] for a in shaped)


def test_a_good_user_prior_finds_the_optimum_sooner_than_the_search_without_it():
    # Near the optimum, not on it: the believed configuration is tried first as it
    # stands (0.28 here), and the search goes on around it.
    good = {"lr": Belief(2e-3, "high"), "x": Belief(1.0, "medium"), "act": Belief("gelu", "high")}
    ours = [run(LLMSampler(None, prior=good, search_space=SPACE, seed=s, base="tpe"), 10).best_value
            for s in range(4)]
    tpe = [run(optuna.samplers.TPESampler(seed=s), 10).best_value for s in range(4)]
    assert np.mean(ours) < 0.5 * np.mean(tpe), (ours, tpe)


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"lr": 2.0}, "lr: prior 2.0 is outside"),
        ({"act": "swish"}, "act: prior 'swish' is not one of the choices"),
        ({"depth": 3}, "depth: a prior for a parameter the space does not have"),
        ({"x": {"value": 1.0, "confidence": "total"}}, "x: confidence must be one of"),
    ],
)
def test_a_bad_prior_is_refused_naming_the_parameter(prior, message):
    with pytest.raises(SearchSpaceError, match=message):
        LLMSampler(None, prior=prior, search_space=SPACE)


def test_a_prior_needs_the_blend_and_a_space_and_no_model_needs_a_prior():
    with pytest.raises(ValueError, match="mode='blend'"):
        LLMSampler(None, mode="llm", prior={"x": 1.0}, search_space=SPACE)
    with pytest.raises(ValueError, match="search_space="):
        LLMSampler(None, prior={"x": 1.0})
    sampler = LLMSampler(None, prior={"x": 1.0}, search_space=SPACE, seed=0)
    with pytest.raises(LLMConfigError, match="model=None"):
        sampler.backend  # noqa: B018


def test_without_a_model_or_a_prior_the_blend_is_its_base_quietly(caplog):
    sampler = LLMSampler(None, search_space=SPACE, seed=0, base="tpe", n_startup_trials=4)
    with caplog.at_level("WARNING", logger="tunepilot"):
        study = run(sampler, 8)
    assert not caplog.records and sampler.stats.fallback_trials == 0
    attrs = [t.user_attrs for t in study.trials]
    assert [a["llm.blend_part"] for a in attrs] == ["random"] * 4 + ["tpe"] * 4
    assert all(a["llm.prior_sources"] == [] and a["llm.base"] == "tpe" for a in attrs)


def test_each_source_earns_its_own_weight():
    # A good user prior and misleading model advice in one study: the user's trials win
    # and keep weight, the model's lose and get none.
    worst = {"lr": 1e-5, "x": -5.0, "act": "relu"}
    sampler = LLMSampler(ControlledPrior(worst, 0.05, seed=0), search_space=SPACE, seed=0,
                         prior={"lr": Belief(3e-3, "high"), "x": 1.5, "act": "gelu"}, base="tpe")
    study = run(sampler, 20)
    first = [t.user_attrs.get("llm.prior_source") for t in study.trials[:2]]
    assert first == ["user", "llm"]  # one trial on trust each, the user's first
    betas = study.trials[-1].user_attrs["llm.betas"]
    assert betas["llm"] == 0.0 and betas["user"] > 0.0, betas


def test_prior_from_an_earlier_study_in_the_same_storage(tmp_path):
    url = f"sqlite:///{tmp_path / 'phases.db'}"
    first = optuna.create_study(study_name="foundation", storage=url,
                                sampler=optuna.samplers.TPESampler(seed=0))
    first.optimize(objective, n_trials=30)
    sampler = LLMSampler(None, prior_from="foundation", search_space=SPACE, seed=1, base="tpe")
    second = optuna.create_study(study_name="finetune", storage=url, sampler=sampler)
    second.optimize(objective, n_trials=5)
    attrs = second.trials[0].user_attrs
    assert attrs["llm.prior_source"] == "study" and attrs["llm.prior_sources"] == ["study"]
    # Its first trial is the earlier study's best trial, as it stands.
    assert second.trials[0].params == first.best_params


def test_prior_from_a_study_that_does_not_exist_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'phases.db'}"
    sampler = LLMSampler(None, prior_from=StudyRef("nope", storage=url), search_space=SPACE)
    study = optuna.create_study(sampler=sampler)
    with pytest.raises(SearchSpaceError, match="no study named 'nope'"):
        study.optimize(objective, n_trials=1)
