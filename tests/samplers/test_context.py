from __future__ import annotations

import math
import random

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from tunepilot import LLMSampler
from tunepilot.testing import FakeLLM

SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "depth": IntDistribution(1, 12),
    "booster": CategoricalDistribution(["gbtree", "dart"]),
}


def history(n_complete: int, seed: int = 0) -> optuna.Study:
    """A study with ``n_complete`` finished trials plus some failed and pruned ones."""
    study = optuna.create_study(direction="minimize")
    rng = random.Random(seed)
    for i in range(n_complete):
        params = {
            "lr": 10 ** rng.uniform(-5, -1),
            "depth": rng.randint(1, 12),
            "booster": rng.choice(["gbtree", "dart"]),
        }
        study.add_trial(create_trial(params=params, distributions=SPACE, value=math.sin(i) + 2))
        if i % 10 == 9:
            study.add_trial(
                create_trial(
                    params=params, distributions=SPACE, state=TrialState.FAIL,
                    user_attrs={"fail_reason": "ValueError: depth too large for the data"},
                )
            )
            study.add_trial(
                create_trial(
                    params=params, distributions=SPACE, state=TrialState.PRUNED,
                    intermediate_values={0: 3.0, 1: 2.9},
                )
            )
    return study


def prompt_for(study: optuna.Study, **kwargs) -> tuple[str, FakeLLM]:
    backend = FakeLLM("valid", seed=0)
    study.sampler = LLMSampler(backend, mode="llm", search_space=SPACE, seed=0, **kwargs)
    study.ask(SPACE)
    return backend.calls[0][0][1]["content"], backend


def test_prompt_shows_best_recent_failed_and_pruned_trials():
    study = history(50)
    prompt, _ = prompt_for(study)
    best = sorted(t.value for t in study.trials if t.value is not None)[:5]
    best_section = prompt.split("Best trials, best first:\n")[1].split("Most recent")[0]
    assert [float(line.split("value=")[1].split(":")[0]) for line in best_section.splitlines()] == (
        pytest.approx(best, rel=1e-5)
    )
    assert "Most recent other trials:" in prompt
    assert "failed: ValueError: depth too large for the data" in prompt
    assert "pruned at step 1 (value 2.9)" in prompt
    assert "50 complete, 5 failed, 5 pruned" in prompt


def test_prompt_says_each_scale_plainly_and_asks_for_the_best_first():
    prompt, backend = prompt_for(optuna.create_study(direction="minimize"), batch_size=4)
    assert "- lr: log scale from 1e-5 to 0.1: a value such as 1e-3\n" in prompt
    assert "- depth: a whole number from 1 to 12\n" in prompt
    assert '- booster: one of "gbtree", "dart"\n' in prompt
    assert "a list of 4 objects setting every parameter, the one you expect to do best first" in prompt
    schema = backend.calls[0][1]
    assert "best first" in schema["properties"]["configurations"]["description"]
    assert schema["properties"]["configurations"]["items"]["properties"]["depth"]["description"] == (
        "a whole number from 1 to 12")
    single, _ = prompt_for(optuna.create_study(direction="minimize"))
    assert "best first" not in single


def test_token_budget_shortens_the_lists():
    # Two studies: in one, the first sampler's trial would leave the next to the base
    # sampler (llm mode's safeguard: the model's trial must be compared first).
    full, _ = prompt_for(history(50))
    short, _ = prompt_for(history(50), max_prompt_tokens=250)
    assert len(short) // 4 <= 250 < len(full) // 4
    assert short.count("value=") < full.count("value=")
    assert "Parameters:" in short


def test_prompt_length_stays_flat_as_history_grows():
    small, _ = prompt_for(history(50))
    large, _ = prompt_for(history(1000))
    assert abs(len(large) - len(small)) / len(small) < 0.10


@pytest.mark.local_llm
def test_embedded_model_prompt_tokens_flat_from_50_to_1000_trials():
    tokens = {}
    for n in (50, 1000):
        study = history(n)
        study.sampler = LLMSampler("local", mode="llm", search_space=SPACE, seed=0)
        trial = study.ask(SPACE)
        tokens[n] = study._storage.get_trial(trial._trial_id).user_attrs["llm.prompt_tokens"]
    print(f"prompt tokens: {tokens}")
    assert tokens[50] > 200
    assert abs(tokens[1000] - tokens[50]) / tokens[50] <= 0.10
