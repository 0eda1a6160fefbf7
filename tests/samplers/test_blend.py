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
    assert {a["llm.blend_part"] for a in attrs} <= {"prior", "tpe", "gp", "random"}
    assert all(a["llm.beta"] >= 0 for a in attrs)
    assert {a["llm.blend_part"] for a in attrs[10:]} & {"tpe", "gp", "prior"}
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
    from tunepilot.space import SearchSpace

    source = sampler._blender.sources["llm"]
    prior = source.prior(SearchSpace.from_optuna(SPACE), 0.1)
    assert prior is not None and sampler.stats.as_dict()["repaired_params"] > 0
    # Every clamped value, and nothing else, is marked unknown: no kernel sits on a bound
    # (a proposal with every value clamped says nothing, and is left out).
    assert any(source.unknown)
    expected = np.array([[n not in unknown for n in SPACE] for unknown in source.unknown
                         if set(SPACE) - unknown])
    assert (prior.known == expected).all()
    drawn = np.array([[prior.space[n].to_unit(s[n]) for n in SPACE]
                      for s in prior.sample(np.random.RandomState(0), 1000)])
    near_bounds = float(((drawn < 0.05) | (drawn > 0.95)).mean())
    assert near_bounds < 0.2, near_bounds


def _study_with(parts_values: list[tuple[str, float]]) -> optuna.Study:
    study = optuna.create_study()
    for part, value in parts_values:
        study.add_trial(optuna.trial.create_trial(
            params={"x0": 0.0}, distributions={"x0": SPACE["x0"]}, value=value,
            user_attrs={"llm.blend_part": part}))
    return study


def test_trust_must_be_earned_advice_that_neither_wins_nor_loses_gets_no_weight():
    from tunepilot.samplers._blend import Blender
    from tunepilot.space import SearchSpace

    blender = Blender(beta=10.0, epsilon=0.1, n_startup_trials=10, seed=0)
    blender.add(SearchSpace.from_optuna(SPACE), [OPTIMUM], 0)

    def beta(study: optuna.Study) -> float:
        return blender.weight(blender.trusts(study)["llm"])

    assert beta(_study_with([])) == 10.0  # the benefit of the doubt
    # The prior's trials tie with the others (AUC ½, z = 0): no weight.
    ties = _study_with([("prior", 1.0), ("random", 1.0)] * 6)
    assert beta(ties) == 0.0
    # Winning by chance's margin is not enough: 2 of 3 comparisons won, 3 against 3
    # (AUC 2/3, z ≈ 0.65) earns nothing either.
    lucky = _study_with([("prior", 1.0), ("prior", 2.0), ("prior", 2.8),
                         ("random", 1.5), ("random", 2.5), ("random", 3.0)])
    assert blender.trusts(lucky)["llm"].auc == pytest.approx(6 / 9)
    assert beta(lucky) == 0.0
    # Every comparison won, 6 against 6: z = ½ / sqrt(13 / 432) ≈ 2.88, β ≈ 0.94 β₀.
    wins6 = _study_with([("prior", 0.1 * i) for i in range(6)] + [("random", 5.0 + i) for i in range(6)])
    assert beta(wins6) == pytest.approx(10.0 * (0.5 / (13 / 432) ** 0.5 - 1) / 2)
    # ... and 12 against 12 earns more than β₀; losing advice is switched off.
    wins = _study_with([("prior", 0.1 * i) for i in range(12)] + [("random", 5.0 + i) for i in range(12)])
    assert beta(wins) > 10.0
    losses = _study_with([("prior", 5.0 + i) for i in range(6)] + [("random", 0.1 * i) for i in range(6)])
    assert beta(losses) == 0.0


def _untrusted(trials: list[optuna.trial.FrozenTrial]) -> bool:
    """β = 0: the prior's trials have been compared and do not beat chance by a standard error."""
    from tunepilot.samplers._blend import trust

    trusted = trust([t for t in trials if t.state == optuna.trial.TrialState.COMPLETE],
                    optuna.study.StudyDirection.MINIMIZE)
    return trusted.compared and trusted.z <= 1


def flat(trial: optuna.Trial) -> float:
    """An objective on which every configuration ties, as degenerate models do."""
    sphere(trial)
    return 1.0


@pytest.mark.parametrize(
    ("centre", "objective"),
    [(OPTIMUM, sphere), (WORST, sphere), (OPTIMUM, flat)],
    ids=["informative", "misleading", "ties"],
)
def test_startup_trials_come_from_the_prior_only_while_it_is_trusted(centre, objective):
    untrusted_seen, prior_draws = 0, 0
    seeds = 12
    for seed in range(seeds):
        study = optuna.create_study(sampler=blend(ControlledPrior(centre, 0.05, seed=seed), seed))
        study.optimize(objective, n_trials=10)
        parts = [t.user_attrs["llm.blend_part"] for t in study.trials]
        # The advice gets the first trial on trust, and the next is uniform, to compare it.
        assert parts[:2] == ["prior", "random"], (seed, parts)
        for i, part in enumerate(parts):
            if _untrusted(study.trials[:i]):
                untrusted_seen += 1
                assert part == "random", (seed, i, parts)
        prior_draws += parts.count("prior")
    if objective is flat or centre is WORST:
        # Advice that loses, or only ties, has earned nothing: it costs the one trial it
        # got on trust, the rest of the startup is uniform (and β = 0, plain TPE, after it).
        assert prior_draws == seeds and untrusted_seen > seeds * 10 / 2, (untrusted_seen, prior_draws)
    else:
        # Good advice keeps winning and earns more of the startup. Only one win, one trial
        # against one, is z = 1, not yet trusted: the third trial is uniform.
        assert untrusted_seen <= seeds and prior_draws >= seeds * 2, (untrusted_seen, prior_draws)


def test_the_trial_on_trust_is_one_trial_with_parallel_workers_too():
    from tunepilot.samplers._blend import Blender
    from tunepilot.space import SearchSpace

    # Workers that sample at once see no prior trial yet (a trial's part is stored only
    # after it is sampled): only the first of them may take the trial on trust.
    blender = Blender(beta=10.0, epsilon=0.1, n_startup_trials=10, seed=0)
    blender.add(SearchSpace.from_optuna(SPACE), [OPTIMUM], 0)
    study = optuna.create_study()
    running = [study._storage.get_trial(study._storage.create_new_trial(study._study_id))
               for _ in range(4)]
    parts = [blender.sample(study, t, SPACE)[1] for t in running]
    assert parts == ["prior", "random", "random", "random"]
    # A worker in another process shares the study, not the blender: it sees the stored part.
    other = Blender(beta=10.0, epsilon=0.1, n_startup_trials=10, seed=1)
    other.add(SearchSpace.from_optuna(SPACE), [OPTIMUM], 0)
    study._storage.set_trial_user_attr(running[0]._trial_id, "llm.blend_part", "prior")
    fresh = study._storage.get_trial(study._storage.create_new_trial(study._study_id))
    assert other.sample(study, fresh, SPACE)[1] == "random"


def test_prior_draws_do_not_replay_the_random_startup_trials():
    # The prior's uniform draws (its ε component, or values a clamp made unknown) come
    # from a random stream of their own: seeded like TPE's random startup, they repeated
    # its draws, and the blend evaluated the same configuration twice.
    repeats = []
    for seed in range(20):
        sampler = blend(ControlledPrior(OPTIMUM, 0.05, seed=seed), seed, prior_epsilon=0.95)
        study = optuna.create_study(sampler=sampler)
        study.optimize(sphere, n_trials=10)
        configs = [tuple(t.params.values()) for t in study.trials]
        repeats += [(seed, i) for i, c in enumerate(configs) if c in configs[:i]]
    assert repeats == []


def test_with_no_weight_on_the_advice_the_blend_is_exactly_tpe():
    # β₀ = 0: the prior never draws a trial nor weighs on the acquisition, so the blend
    # must make TPE's own choices, trial for trial (Optuna's default TPE, same seed).
    for seed in range(3):
        ours = optuna.create_study(sampler=blend(ControlledPrior(OPTIMUM, 0.05, seed=seed), seed,
                                                 beta=0.0, base="tpe"))
        ours.optimize(sphere, n_trials=15)
        tpe = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        tpe.optimize(sphere, n_trials=15)
        assert [t.params for t in ours.trials] == [t.params for t in tpe.trials]
        assert {t.user_attrs["llm.blend_part"] for t in ours.trials} == {"random", "tpe"}


def test_the_advice_listed_first_weighs_most_in_the_prior():
    from tunepilot.samplers._blend import Blender
    from tunepilot.space import SearchSpace

    space = SearchSpace.from_optuna(SPACE)
    first, last = {n: -3.0 for n in SPACE}, {n: 3.0 for n in SPACE}
    ranked = [first, {n: -0.5 for n in SPACE}, {n: 0.5 for n in SPACE}, last]  # best first
    blender = Blender(beta=10.0, epsilon=0.1, n_startup_trials=10, seed=0)
    blender.add(space, ranked, 0)
    prior = blender.sources["llm"].prior(space, 0.1)
    assert prior is not None
    assert list(prior.weights) == pytest.approx([0.4, 0.3, 0.2, 0.1])
    # Placed symmetrically, the first and the last differ only by their rank.
    at_first, at_last = prior.log_pdf([first, last])
    assert at_first > at_last + 1
    draws = prior.sample(np.random.RandomState(0), 2000, uniform=False)
    assert np.mean([d["x0"] < 0 for d in draws]) > 0.6
    assert prior.mode(np.random.RandomState(0)) == first
