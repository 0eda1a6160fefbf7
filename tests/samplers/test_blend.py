"""LLMSampler in blend mode: the LLM prior and TPE together."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution

from tunepilot import LLMSampler
from tunepilot.exceptions import LLMServerError
from tunepilot.testing import ControlledPrior, FakeLLM

D = 4
SPACE = {f"x{i}": FloatDistribution(-5.0, 5.0) for i in range(D)}
OPTIMUM = {f"x{i}": 1.5 - i for i in range(D)}
WORST = {f"x{i}": -4.5 if OPTIMUM[f"x{i}"] > 0 else 4.5 for i in range(D)}


def sphere(trial: optuna.Trial) -> float:
    return sum((trial.suggest_float(n, -5.0, 5.0) - OPTIMUM[n]) ** 2 for n in SPACE)


def best_after(sampler: optuna.samplers.BaseSampler, n: int) -> float:
    study = optuna.create_study(sampler=sampler)
    study.optimize(sphere, n_trials=n)
    return study.best_value


def blend(advice: Any, seed: int, **kwargs: Any) -> LLMSampler:
    return LLMSampler(advice, mode="blend", search_space=SPACE, seed=seed, **kwargs)


@pytest.fixture(autouse=True)
def quiet():
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def test_informative_advice_beats_tpe_early():
    seeds = range(4)
    ours = [best_after(blend(ControlledPrior(OPTIMUM, 0.05, seed=s), s), 10) for s in seeds]
    tpe = [best_after(optuna.samplers.TPESampler(seed=s), 10) for s in seeds]
    assert np.mean(ours) < 0.5 * np.mean(tpe), (ours, tpe)


def test_misleading_advice_is_distrusted_and_search_recovers():
    seeds = range(4)
    samplers = [blend(ControlledPrior(WORST, 0.05, seed=s), s) for s in seeds]
    studies = []
    for s, sampler in zip(seeds, samplers):
        study = optuna.create_study(sampler=sampler)
        study.optimize(sphere, n_trials=30)
        studies.append(study)
    tpe = [best_after(optuna.samplers.TPESampler(seed=s), 30) for s in seeds]
    final_betas = [s.trials[-1].user_attrs["llm.beta"] for s in studies]
    # β₀ is 10: bad advice is trusted far less than at the start.
    assert max(final_betas) < 5 and np.mean(final_betas) < 3, final_betas
    assert np.mean([s.best_value for s in studies]) < 2 * np.mean(tpe) + 1.0


def test_trials_record_source_part_and_beta():
    sampler = blend(FakeLLM("valid", seed=0), 0, refresh_every=5)
    study = optuna.create_study(sampler=sampler)
    study.optimize(sphere, n_trials=16)
    attrs = [t.user_attrs for t in study.trials]
    assert {a["llm.source"] for a in attrs} == {"blend"}
    assert {a["llm.blend_part"] for a in attrs} <= {"prior", "tpe", "random"}
    assert all(a["llm.beta"] >= 0 for a in attrs)
    assert "tpe" in {a["llm.blend_part"] for a in attrs[10:]} | {"prior"}
    # Called at trial 0, then after every 5 completed trials: trials 0, 5, 10, 15.
    callers = [t.number for t in study.trials if "llm.prompt_hash" in t.user_attrs]
    assert callers == [0, 5, 10, 15]
    assert all(t.user_attrs["llm.proposals"] == 4 for t in study.trials if t.number in callers)
    assert sampler.stats.blend_trials == 16 and sampler.stats.calls == 4


class Failing:
    name = "failing"

    def complete(self, messages, *, schema, temperature=0.7, seed=None, max_tokens=512):
        raise LLMServerError("the provider is down")


def test_without_any_advice_blend_is_counted_fallback_to_tpe(caplog):
    sampler = blend(Failing(), 0)
    with caplog.at_level(logging.WARNING, logger="tunepilot"):
        study = optuna.create_study(sampler=sampler)
        study.optimize(sphere, n_trials=5)
    assert [t.user_attrs["llm.source"] for t in study.trials] == ["fallback"] * 5
    assert sampler.stats.fallback_trials == 5
    assert sum(sampler.stats.fallback_reasons.values()) == 5


def test_a_failed_refresh_keeps_blending_with_the_earlier_prior():
    class FailsLater(FakeLLM):
        def complete(self, messages, **kwargs):
            if self.calls:
                raise LLMServerError("down after the first call")
            return super().complete(messages, **kwargs)

    sampler = blend(FailsLater("valid", seed=0), 0, refresh_every=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(sphere, n_trials=8)
    assert {t.user_attrs["llm.source"] for t in study.trials} == {"blend"}


def test_blend_refuses_a_fallback_sampler():
    with pytest.raises(ValueError, match="mode='llm'"):
        LLMSampler(FakeLLM(), mode="blend", fallback=optuna.samplers.RandomSampler())


def test_blend_is_the_default_mode():
    assert LLMSampler(FakeLLM()).mode == "blend"


def test_clamped_values_do_not_pull_the_prior_onto_the_bounds():
    # A careless model answers on the wrong scale; its values are clamped into range.
    sampler = blend(FakeLLM(mode="random", seed=3), 0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(sphere, n_trials=12)
    prior = sampler._blender.prior
    assert prior is not None and sampler.stats.as_dict()["repaired_params"] > 0
    at_bound = np.isclose(prior.centres, 0.0) | np.isclose(prior.centres, 1.0)
    # Every clamped value, and nothing else on a bound, is marked unknown.
    assert at_bound.any() and not prior.known[at_bound].any()
    assert prior.known[~at_bound].all()
    drawn = np.array([[prior.space[n].to_unit(s[n]) for n in SPACE]
                      for s in prior.sample(np.random.RandomState(0), 1000)])
    near_bounds = float(((drawn < 0.05) | (drawn > 0.95)).mean())
    assert near_bounds < 0.2, near_bounds


def _study_with(configs_values: list[tuple[dict[str, float], float]], version: int | None = 0) -> optuna.Study:
    study = optuna.create_study()
    attrs = {} if version is None else {"llm.prior_version": version}
    for params, value in configs_values:
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=SPACE, value=value, user_attrs=attrs))
    return study


def _blender_at(centre: dict[str, float]) -> Any:
    from tunepilot.samplers._blend import Blender
    from tunepilot.space import SearchSpace

    blender = Blender(beta=10.0, epsilon=0.1, n_startup_trials=10, seed=0)
    blender.add(SearchSpace.from_optuna(SPACE), [centre], n_complete=0)
    return blender


def _near(centre: dict[str, float], distance: float) -> dict[str, float]:
    return {n: float(np.clip(v + distance, -5.0, 5.0)) for n, v in centre.items()}


def test_trust_must_be_earned_advice_that_neither_wins_nor_loses_fades():
    blender = _blender_at(OPTIMUM)
    assert blender.beta(_study_with([])) == 10.0  # the benefit of the doubt
    # Results that the prior's ranking does not predict (all equal): β fades as the
    # evidence grows, β₀ / (1 + m/2), but is not switched off.
    ties = [_study_with([(_near(OPTIMUM, d), 1.0) for d in np.linspace(0.0, 3.0, n)]) for n in (6, 12, 24)]
    faded = [blender.beta(study) for study in ties]
    assert 10.0 > faded[0] > faded[1] > faded[2] > 0, faded
    assert faded[1] < 10.0 / 3, faded
    # Where π is flat (far from every proposal) it predicts nothing: no evidence,
    # whatever the results, and the benefit of the doubt stays.
    far = _study_with([({n: -5.0 + 0.01 * i for n in SPACE}, float(i)) for i in range(12)])
    assert blender.beta(far) == 10.0
    # Trials nearer the advice come out better: it earns more than β₀.
    good = _study_with([(_near(OPTIMUM, d), d) for d in np.linspace(0.0, 3.0, 12)])
    assert blender.beta(good) > 10.0
    # Ranked backwards: the advice is switched off.
    bad = _study_with([(_near(OPTIMUM, d), 10.0 - d) for d in np.linspace(0.0, 3.0, 12)])
    assert blender.beta(bad) == 0.0


def test_trust_counts_trials_the_prior_did_not_choose_and_only_under_their_own_prior():
    blender = _blender_at(WORST)
    # Random startup draws alone reveal misleading advice: the nearer WORST, the worse.
    draws = np.random.RandomState(0).uniform(-5.0, 5.0, (8, D))
    trials = [({n: float(x) for n, x in zip(SPACE, row)}, 0.0) for row in draws]
    trials = [(p, sum((p[n] - OPTIMUM[n]) ** 2 for n in SPACE)) for p, _ in trials]
    assert blender.beta(_study_with(trials)) == 0.0
    # A trial sampled before any prior (or under a prior this process never had) is no
    # evidence: it cannot be ranked under advice that did not exist when it ran.
    assert blender.beta(_study_with(trials, version=None)) == 10.0
    assert blender.beta(_study_with(trials, version=3)) == 10.0
    # A later prior does not re-rank trials sampled under an earlier one.
    from tunepilot.space import SearchSpace

    blender.add(SearchSpace.from_optuna(SPACE), [OPTIMUM], n_complete=8)
    assert blender.beta(_study_with(trials)) == 0.0

