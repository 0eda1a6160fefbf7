"""LLMSampler end to end over real HTTP, through LiteLLM, against an OpenAI-compatible server."""

from __future__ import annotations

import json

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution

from tunepilot import LLMSampler, SearchSpace
from tunepilot.testing import FakeOpenAIServer

SPACE = {"C": FloatDistribution(1e-3, 1e3, log=True), "kernel": CategoricalDistribution(["rbf", "linear"])}


def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("C", 1e-3, 1e3, log=True) + (trial.suggest_categorical("kernel", ["rbf", "linear"]) == "rbf")


def answer(body: dict) -> str:
    n = len([m for m in body["messages"] if m["role"] == "user"])
    return json.dumps({"configurations": [{"C": 10.0 * n, "kernel": "linear"}], "rationale": "try linear"})


def test_sampler_through_litellm_with_a_500_and_a_bad_answer(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeOpenAIServer(responder=answer) as server:
        server.push_status(500)
        server.push_json("this is not JSON")
        sampler = LLMSampler(
            "openai/test-model", mode="llm", safeguard=False, api_base=server.base_url,
            search_space=SPACE, seed=0, timeout=5,
        )
        sampler.backend.sleep = lambda seconds: None  # type: ignore[attr-defined]
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=2)
        requests = list(server.requests)
    first = study.trials[0]
    assert first.user_attrs["llm.source"] == "llm"
    assert first.user_attrs["llm.rationale"] == "try linear"
    assert first.user_attrs["llm.prompt_tokens"] > 0
    # 500 retried, then an invalid answer repaired by a second user turn.
    assert len(requests) == 4
    assert requests[0]["model"] == "test-model"
    assert requests[0]["response_format"]["type"] in ("json_schema", "json_object")
    assert "could not be used" in requests[2]["messages"][-1]["content"]
    assert all(SearchSpace.from_optuna(SPACE).contains(t.params) for t in study.trials)
    assert sampler.stats.repair_round_trips == 1 and sampler.stats.fallback_trials == 0
