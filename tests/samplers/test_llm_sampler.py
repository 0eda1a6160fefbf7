from __future__ import annotations

import json
import logging
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from tunepilot import LLMSampler, SearchSpace
from tunepilot.exceptions import LLMConfigError, LLMServerError, LLMTimeoutError
from tunepilot.llm import Completion, Usage
from tunepilot.testing import FakeLLM

SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "layers": IntDistribution(1, 9, step=2),
    "act": CategoricalDistribution(["relu", "tanh"]),
}


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    layers = trial.suggest_int("layers", 1, 9, step=2)
    act = trial.suggest_categorical("act", ["relu", "tanh"])
    return abs(lr - 1e-3) + layers / 10 + (act == "tanh")


class Scripted:
    """Answers with the given texts in turn, raising any exception in the list (a fault injector)."""

    name = "scripted"

    def __init__(self, answers: list[Any]) -> None:
        self.answers = list(answers)
        self.messages: list[list[dict[str, str]]] = []

    def complete(self, messages, *, schema, temperature=0.7, seed=None, max_tokens=512):
        self.messages.append(messages)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return Completion(text=text, usage=Usage(100, 20, 0.001), model="scripted", latency_s=0.5)


def good(lr: float = 1e-3, layers: int = 3, act: str = "relu", n: int = 1) -> dict[str, Any]:
    configs = [{"lr": lr * (i + 1), "layers": layers, "act": act} for i in range(n)]
    return {"configurations": configs, "rationale": "close to the best so far"}


def llm_mode(model: Any, **kwargs: Any) -> LLMSampler:
    """The sampler in pure-LLM mode, the subject of this module, every trial the model's
    (the safeguard that hands trials to the fallback is tested in test_guard.py)."""
    return LLMSampler(model, mode="llm", safeguard=kwargs.pop("safeguard", False), **kwargs)


def study_with(sampler: LLMSampler, direction: str = "minimize") -> optuna.Study:
    return optuna.create_study(sampler=sampler, direction=direction)


def test_llm_trial_records_attributes_a_user_can_audit():
    backend = Scripted([good()])
    sampler = llm_mode(backend, search_space=SPACE, seed=0)
    study = study_with(sampler)
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.params == {"lr": 1e-3, "layers": 3, "act": "relu"}
    attrs = trial.user_attrs
    assert attrs["llm.source"] == "llm"
    assert attrs["llm.rationale"] == "close to the best so far"
    assert (attrs["llm.prompt_tokens"], attrs["llm.completion_tokens"]) == (100, 20)
    assert attrs["llm.cost_usd"] == pytest.approx(0.001)
    assert attrs["llm.latency_s"] == pytest.approx(0.5)
    assert attrs["llm.repairs"] == []
    assert len(attrs["llm.prompt_hash"]) == 16
    assert sampler.stats.llm_trials == 1 and sampler.stats.fallback_trials == 0


def test_out_of_range_and_off_step_values_are_clamped_snapped_and_recorded():
    backend = Scripted([{"configurations": [{"lr": 5.0, "layers": 4, "act": "TANH"}], "rationale": ""}])
    sampler = llm_mode(backend, search_space=SPACE, seed=0)
    study = study_with(sampler)
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.params["lr"] == 1e-1
    assert trial.params["layers"] in (3, 5)
    assert trial.params["act"] == "tanh"
    assert trial.user_attrs["llm.repairs"] == ["act", "layers", "lr"]
    assert "lr: clamped" in trial.user_attrs["llm.repair_details"]
    assert sampler.stats.repaired_params == 3


def test_invalid_answer_gets_one_repair_round_trip():
    backend = Scripted(["not json at all", good(lr=2e-3)])
    sampler = llm_mode(backend, search_space=SPACE, seed=0)
    study = study_with(sampler)
    study.optimize(objective, n_trials=1)
    assert study.trials[0].user_attrs["llm.source"] == "llm"
    assert study.trials[0].params["lr"] == pytest.approx(2e-3)
    assert len(backend.messages) == 2
    followup = backend.messages[1]
    assert followup[-2] == {"role": "assistant", "content": "not json at all"}
    assert "could not be used" in followup[-1]["content"]
    assert sampler.stats.repair_round_trips == 1 and sampler.stats.invalid_responses == 1
    # Both calls' tokens are charged to the trial.
    assert study.trials[0].user_attrs["llm.prompt_tokens"] == 200


def test_still_invalid_after_repair_falls_back_and_is_counted(caplog):
    backend = Scripted(['{"configurations": [{"lr": NaN, "layers": 1, "act": "relu"}]}'])
    sampler = llm_mode(backend, search_space=SPACE, seed=0)
    study = study_with(sampler)
    with caplog.at_level(logging.WARNING, logger="tunepilot"):
        study.optimize(objective, n_trials=2)
    assert [t.user_attrs["llm.source"] for t in study.trials] == ["fallback", "fallback"]
    assert study.trials[0].user_attrs["llm.fallback_reason"].startswith("invalid_output")
    assert sampler.stats.fallback_trials == 2
    assert sampler.stats.fallback_reasons == {"invalid_output": 2}
    assert sum("fallback sampler used" in r.getMessage() for r in caplog.records) == 2
    assert all(SearchSpace.from_optuna(SPACE).contains(t.params) for t in study.trials)


@pytest.mark.parametrize("error", [LLMTimeoutError("slow"), LLMServerError("HTTP 500")])
def test_backend_errors_fall_back(error):
    sampler = llm_mode(Scripted([error]), search_space=SPACE, seed=0)
    study = study_with(sampler)
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["llm.source"] == "fallback"
    assert str(error) in trial.user_attrs["llm.fallback_reason"]


def test_repeated_failures_back_off_then_try_again():
    backend = Scripted([LLMServerError("down")])
    sampler = llm_mode(backend, search_space=SPACE, seed=0)
    study = study_with(sampler)
    study.optimize(objective, n_trials=6)
    # Three failed calls, one trial skipped, a fourth failed call, two trials skipped.
    assert len(backend.messages) == 4
    assert sampler.stats.fallback_reasons == {"llm_error": 4, "backing_off": 2}
    assert [t.user_attrs["llm.source"] for t in study.trials] == ["fallback"] * 6


def test_configuration_errors_are_raised_not_hidden():
    sampler = llm_mode(Scripted([LLMConfigError("set OPENAI_API_KEY")]), search_space=SPACE)
    study = study_with(sampler)
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        study.optimize(objective, n_trials=1)


def test_define_by_run_first_trial_uses_fallback_then_llm():
    sampler = llm_mode(FakeLLM("valid", seed=0), seed=0)
    study = study_with(sampler)
    study.optimize(objective, n_trials=3)
    sources = [t.user_attrs["llm.source"] for t in study.trials]
    assert sources == ["fallback", "llm", "llm"]
    assert "search_space=" in study.trials[0].user_attrs["llm.fallback_reason"]
    assert sampler.stats.fallback_reasons == {"space_unknown": 1}


def test_prompt_describes_the_space_direction_history_and_failures():
    backend = FakeLLM("valid", seed=0)
    sampler = llm_mode(
        backend, search_space=SPACE, description="Tune a small MLP on MNIST.", seed=0
    )
    study = study_with(sampler, direction="maximize")

    def flaky(trial: optuna.Trial) -> float:
        value = objective(trial)
        if trial.number == 2:
            trial.set_user_attr("fail_reason", "CUDA out of memory")
            raise RuntimeError("boom")
        return value

    study.optimize(flaky, n_trials=5, catch=(RuntimeError,))
    prompt = backend.calls[-1][0][1]["content"]
    assert "Tune a small MLP on MNIST." in prompt
    assert "maximize" in prompt
    assert "lr: log scale from 1e-5 to 0.1: a value such as 1e-3" in prompt
    assert "layers: a whole number from 1 to 9, in steps of 2" in prompt
    assert 'act: one of "relu", "tanh"' in prompt
    assert "CUDA out of memory" in prompt
    best = max((t for t in study.trials if t.value is not None), key=lambda t: t.value)
    assert f"#{best.number} value=" in prompt.split("Best trials")[1].splitlines()[1]


def test_duplicates_of_past_trials_are_moved_and_recorded():
    backend = Scripted([good(lr=1e-3)])
    sampler = llm_mode(backend, search_space=SPACE, seed=0)
    study = study_with(sampler)
    study.optimize(objective, n_trials=5)
    keys = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(keys) == 5
    assert all(t.user_attrs["llm.source"] == "llm" for t in study.trials)
    assert all("deduplicated" in t.user_attrs["llm.repair_details"] for t in study.trials[1:])


def test_batch_is_spread_over_trials_and_charged_once():
    backend = Scripted([good(n=4)])
    sampler = llm_mode(backend, search_space=SPACE, batch_size=4, seed=0)
    study = study_with(sampler)
    study.optimize(objective, n_trials=4)
    assert len(backend.messages) == 1
    assert [t.params["lr"] for t in study.trials] == pytest.approx([1e-3, 2e-3, 3e-3, 4e-3])
    assert {t.user_attrs["llm.call_trial"] for t in study.trials} == {0}
    assert sum(t.user_attrs["llm.prompt_tokens"] for t in study.trials) == 100
    assert sampler.stats.llm_trials == 4


def test_threads_take_distinct_configurations_from_batches():
    sampler = llm_mode(FakeLLM("valid", seed=1), search_space=SPACE, batch_size=4, seed=0)
    study = study_with(sampler)
    study.optimize(objective, n_trials=40, n_jobs=4)
    assert len(study.trials) >= 40
    keys = [tuple(sorted(t.params.items())) for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(keys) == len(set(keys))


def test_seeded_run_is_replayed_from_the_response_cache(tmp_path):
    def run(backend: Any) -> list[dict[str, Any]]:
        sampler = llm_mode(backend, search_space=SPACE, seed=7, cache_dir=tmp_path / "cache")
        study = study_with(sampler)
        study.optimize(objective, n_trials=8)
        return [t.params for t in study.trials]

    first = run(FakeLLM("random", seed=3))
    # Same model name, but it can only fail: every answer must come from the cache.
    failing = Scripted([LLMServerError("the cache should have answered")])
    failing.name = "fake-random"
    replayed = run(failing)
    assert failing.messages == []
    assert replayed == first


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"temperature": 3.0}, "temperature"),
        ({"timeout": 0}, "timeout"),
        ({"max_prompt_tokens": 10}, "max_prompt_tokens"),
    ],
)
def test_bad_arguments_are_refused_with_the_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        llm_mode(FakeLLM(), **kwargs)


def test_unknown_model_type_is_a_config_error():
    sampler = llm_mode(42, search_space=SPACE)  # type: ignore[arg-type]
    with pytest.raises(LLMConfigError, match="model string or a Backend"):
        study_with(sampler).optimize(objective, n_trials=1)


def test_llm_mode_on_the_embedded_model_warns_that_it_searches_worse_than_random(caplog):
    with caplog.at_level(logging.WARNING, logger="tunepilot"):
        LLMSampler("local", mode="blend")
        LLMSampler(FakeLLM("valid"), mode="llm", safeguard=False)
        # With the safeguard, a weak model's trials go to the fallback sampler.
        LLMSampler("local", mode="llm")
        assert not caplog.records
        LLMSampler("local", mode="llm", safeguard=False)  # the model loads lazily
    [record] = caplog.records
    assert "worse than random search" in record.getMessage()
    assert "mode='blend'" in record.getMessage()


def test_a_secret_in_a_models_error_does_not_reach_the_trial_or_the_log(caplog):
    # The provider's error quotes a URL with a password, as a misconfigured proxy's does.
    leak = "connection to postgresql://train:hunter2secret@db.internal/x refused"
    sampler = llm_mode(Scripted([LLMServerError(leak)]), search_space=SPACE, seed=0)
    study = study_with(sampler)
    with caplog.at_level(logging.WARNING, logger="tunepilot"):
        study.optimize(objective, n_trials=1)
    reason = study.trials[0].user_attrs["llm.fallback_reason"]
    assert "hunter2secret" not in reason and "postgresql://train:***@" in reason
    assert "hunter2secret" not in caplog.text
