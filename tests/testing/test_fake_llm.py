from __future__ import annotations

import json

import pytest

from tunepilot.exceptions import LLMError, LLMOutputError
from tunepilot.samplers._response import response_schema
from tunepilot.space import CategoricalParam, FloatParam, IntParam, SearchSpace
from tunepilot.testing import FakeLLM

SPACE = SearchSpace([FloatParam("lr", 0.001, 0.1), IntParam("depth", 2, 8), CategoricalParam("act", ("relu", "tanh"))])
SCHEMA = response_schema(SPACE, 3)
MESSAGES = [{"role": "user", "content": "propose"}]


def test_valid_mode_answers_inside_the_bounds_with_the_requested_count():
    fake = FakeLLM("valid", seed=0)
    for _ in range(50):
        data = fake.complete(MESSAGES, schema=SCHEMA).json()
        assert len(data["configurations"]) == 3
        assert all(SPACE.contains(config) for config in data["configurations"])
    assert len(fake.calls) == 50


def test_random_mode_is_well_formed_but_ignores_bounds():
    fake = FakeLLM("random", seed=0)
    configs = [c for _ in range(50) for c in fake.complete(MESSAGES, schema=SCHEMA).json()["configurations"]]
    assert all(set(c) == set(SPACE) for c in configs)
    assert any(not SPACE.contains(c) for c in configs)


def test_adversarial_mode_produces_every_kind_of_hostile_answer():
    fake = FakeLLM("adversarial", seed=0)
    raised = unparsable = parsed_outside = 0
    for _ in range(400):
        try:
            completion = fake.complete(MESSAGES, schema=SCHEMA)
        except LLMError:
            raised += 1
            continue
        try:
            data = completion.json()
        except LLMOutputError:
            unparsable += 1
            continue
        configs = data.get("configurations") if isinstance(data, dict) else None
        if not (isinstance(configs, list) and configs and all(isinstance(c, dict) and SPACE.contains(c) for c in configs)):
            parsed_outside += 1
    assert raised > 10 and unparsable > 50 and parsed_outside > 50


def test_same_seed_same_answers():
    def answers(seed: int) -> list[str]:
        fake = FakeLLM("random", seed=seed)
        return [fake.complete(MESSAGES, schema=SCHEMA).text for _ in range(5)]

    assert answers(1) == answers(1)
    assert answers(1) != answers(2)


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        FakeLLM("sloppy")  # type: ignore[arg-type]


def test_answers_are_json_text_not_objects():
    text = FakeLLM("valid", seed=0).complete(MESSAGES, schema=SCHEMA).text
    assert isinstance(json.loads(text), dict)
