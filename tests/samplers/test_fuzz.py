"""10,000 hostile answers through LLMSampler: nothing escapes, nothing outside the space is stored."""

from __future__ import annotations

import json
import logging
import math

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from tunepilot import LLMSampler, SearchSpace
from tunepilot.llm import Completion
from tunepilot.space import CategoricalParam, FloatParam, IntParam, Param
from tunepilot.testing import FakeLLM

TRIALS_PER_EXAMPLE = 50
EXAMPLES = 220


@st.composite
def params(draw: st.DrawFn, name: str) -> Param:
    kind = draw(st.sampled_from(["float", "log", "step", "int", "cat"]))
    if kind == "cat":
        choices = draw(
            st.lists(
                st.one_of(st.text(max_size=5), st.integers(-3, 3), st.booleans(), st.none()),
                min_size=1, max_size=4, unique_by=lambda c: (type(c), c),
            )
        )
        return CategoricalParam(name, tuple(choices))
    if kind == "int":
        low = draw(st.integers(-100, 100))
        step = draw(st.integers(1, 5))
        return IntParam(name, low, low + step * draw(st.integers(0, 20)), step=step)
    if kind == "step":
        step = draw(st.sampled_from([0.25, 0.5, 1.0]))
        low = step * draw(st.integers(-40, 40))
        return FloatParam(name, low, low + step * draw(st.integers(0, 40)), step=step)
    low = draw(st.floats(1e-6, 1e3) if kind == "log" else st.floats(-1e3, 1e3))
    return FloatParam(name, low, low + draw(st.floats(0, 1e3)), log=kind == "log")


@st.composite
def spaces(draw: st.DrawFn) -> SearchSpace:
    names = draw(st.lists(st.sampled_from(["lr", "depth", "kernel", "a.b", "x y", "C"]),
                          min_size=1, max_size=4, unique=True))
    return SearchSpace([draw(params(name)) for name in names])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


class Adversary:
    """Fault injector: Hypothesis-drawn bodies first, then FakeLLM's adversarial mode."""

    name = "adversary"

    def __init__(self, drawn: list[str], seed: int) -> None:
        self.drawn = drawn
        self.fake = FakeLLM("adversarial", seed=seed)
        self.answers = 0

    def complete(self, messages, *, schema, temperature=0.7, seed=None, max_tokens=512):
        self.answers += 1
        if self.drawn:
            return Completion(text=self.drawn.pop())
        return self.fake.complete(messages, schema=schema, temperature=temperature, seed=seed)


def drawn_bodies(space: SearchSpace) -> st.SearchStrategy[list[str]]:
    config = st.fixed_dictionaries({n: json_values for n in space}, optional={"extra": json_values})
    body = st.one_of(
        st.builds(lambda cs: json.dumps({"configurations": cs}), st.lists(config, max_size=3)),
        st.builds(lambda c: json.dumps({"configurations": c}), json_values),
        st.builds(json.dumps, json_values),
        st.text(max_size=200),
    )
    return st.lists(body, max_size=TRIALS_PER_EXAMPLE // 2)


@pytest.mark.slow
def test_hostile_answers_never_escape_and_never_leave_the_space(caplog):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # Through caplog, so the level is restored for the tests that follow.
    caplog.set_level(logging.ERROR, logger="tunepilot")
    answers_fed: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data(), space=spaces(), seed=st.integers(0, 2**32 - 1),
           batch_size=st.integers(1, 4), mode=st.sampled_from(["llm", "blend"]))
    def run(data: st.DataObject, space: SearchSpace, seed: int, batch_size: int, mode: str) -> None:
        backend = Adversary(data.draw(drawn_bodies(space)), seed)
        sampler = LLMSampler(
            backend, mode=mode, search_space=space, batch_size=batch_size, seed=seed,
            # Blend mode calls the model every few trials only; calling it every trial
            # keeps the number of hostile answers per example comparable.
            refresh_every=1, n_startup_trials=3,
            # The GP base sees only priors built from validated proposals, as TPE does;
            # TPE keeps the examples fast.
            **({"base": "tpe"} if mode == "blend" else {}),
            fallback=optuna.samplers.RandomSampler(seed=seed) if mode == "llm" else None,
        )
        study = optuna.create_study(sampler=sampler)
        distributions = space.to_optuna()

        def objective(trial: optuna.Trial) -> float:
            values = [trial._suggest(n, d) for n, d in distributions.items()]
            return float(sum(hash(repr(v)) % 97 for v in values))

        # No `catch`: any exception escaping the sampler fails the test.
        study.optimize(objective, n_trials=TRIALS_PER_EXAMPLE)
        trials = study.get_trials(states=(TrialState.COMPLETE,))
        assert len(trials) >= TRIALS_PER_EXAMPLE
        for trial in trials:
            assert space.contains(trial.params), trial.params
            assert all(
                not (isinstance(v, float) and not math.isfinite(v)) for v in trial.params.values()
            )
        sources = [t.user_attrs.get("llm.source") for t in trials]
        stats = sampler.stats
        if all(d.single() for d in distributions.values()):
            # Optuna sets single-valued parameters itself and never asks the sampler.
            assert set(sources) == {None} and stats.calls == 0
            return
        assert sources.count("fallback") == stats.fallback_trials
        assert sum(stats.fallback_reasons.values()) == stats.fallback_trials
        assert sources.count("llm") == stats.llm_trials
        assert sources.count("blend") == stats.blend_trials
        assert sources.count("base") == stats.base_trials
        assert (stats.llm_trials + stats.blend_trials + stats.base_trials
                + stats.fallback_trials == len(trials))
        assert stats.calls == backend.answers
        answers_fed.append(backend.answers)

    run()
    print(f"hostile answers fed through the sampler: {sum(answers_fed)}")
    assert sum(answers_fed) >= 10_000, sum(answers_fed)
