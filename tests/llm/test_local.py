"""The embedded model, run for real by llama.cpp."""

from __future__ import annotations

import json

import pytest

from tunepilot.exceptions import LLMConfigError, LLMTimeoutError
from tunepilot.llm import LocalBackend, embedded_model_path, make_backend
from tunepilot.llm import _local
from tunepilot.llm._local import free_cores

SCHEMA = {
    "type": "object",
    "properties": {
        "configurations": {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {
                "type": "object",
                "properties": {
                    "lr": {"type": "number", "minimum": 0.0001, "maximum": 0.1},
                    "optimizer": {"enum": ["adam", "sgd"]},
                },
                "required": ["lr", "optimizer"],
                "additionalProperties": False,
            },
        },
        "rationale": {"type": "string", "maxLength": 80},
    },
    "required": ["configurations", "rationale"],
    "additionalProperties": False,
}
MESSAGES = [
    {"role": "system", "content": "You choose hyperparameters. Answer with JSON only."},
    {"role": "user", "content": "Propose 2 configurations of lr (0.0001 to 0.1) and optimizer."},
]

pytestmark = pytest.mark.local_llm


def test_embedded_model_ships_with_the_package():
    path = embedded_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_embedded_model_answers_json_in_the_requested_shape():
    answer = LocalBackend().complete(MESSAGES, schema=SCHEMA, seed=1, max_tokens=256)
    data = answer.json()
    assert len(data["configurations"]) == 2
    for config in data["configurations"]:
        assert set(config) == {"lr", "optimizer"}
        assert isinstance(config["lr"], (int, float))
        assert config["optimizer"] in ("adam", "sgd")
    assert answer.usage.prompt_tokens > 20 and answer.usage.completion_tokens > 5
    assert answer.usage.cost_usd == 0.0
    assert answer.latency_s > 0


def test_grammar_strings_refuse_the_control_characters_that_json_forbids():
    # llama-cpp-python's converter allows them ([^"\\]); a raw newline in the
    # rationale then made the whole answer unparseable.
    rules = [line for line in _local.json_schema_gbnf(json.dumps(SCHEMA)).splitlines()
             if line.startswith("char ::=")]
    assert rules == [r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] '
                     r'[0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])']


def test_same_seed_gives_the_same_answer():
    backend = LocalBackend()
    first = backend.complete(MESSAGES, schema=SCHEMA, seed=3, temperature=0.8)
    second = backend.complete(MESSAGES, schema=SCHEMA, seed=3, temperature=0.8)
    assert first.text == second.text


def test_model_is_loaded_once_per_process():
    LocalBackend().complete(MESSAGES, schema=SCHEMA, seed=1, max_tokens=64)
    loaded = dict(_local._models)
    make_backend("local").complete(MESSAGES, schema=SCHEMA, seed=2, max_tokens=64)
    assert _local._models == loaded


def test_generation_stops_at_the_timeout():
    backend = LocalBackend(timeout=0.001)
    with pytest.raises(LLMTimeoutError, match="longer than"):
        backend.complete(MESSAGES, schema=SCHEMA, seed=1, max_tokens=256)


def test_missing_model_file_is_a_config_error(tmp_path):
    with pytest.raises(LLMConfigError, match="model file not found"):
        make_backend(f"local:{tmp_path / 'nope.gguf'}").complete(MESSAGES, schema=SCHEMA)


def test_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.setenv("TUNEPILOT_LLM_THREADS", "3")
    assert free_cores() == 3
    monkeypatch.setenv("TUNEPILOT_LLM_THREADS", "many")
    with pytest.raises(LLMConfigError, match="whole number"):
        free_cores()
    monkeypatch.delenv("TUNEPILOT_LLM_THREADS")
    assert 1 <= free_cores() <= 64


def test_every_number_the_model_writes_lies_in_its_range():
    # The old describe() lines, on which this model answered 30 for max_features, 49 for
    # min_samples_leaf and 0.999 for learning_rate_init: the grammar now keeps it in range.
    ranges = {"max_features": (0.01, 0.99), "min_samples_leaf": (0.01, 0.49),
              "learning_rate_init": (1e-5, 0.1), "gamma": (1e-4, 1e-3),
              "power_t": (-1.0, 1.0), "hidden_layer_sizes": (50, 200)}
    item = {
        "type": "object",
        "properties": {name: {"type": "integer" if isinstance(low, int) else "number",
                              "minimum": low, "maximum": high}
                       for name, (low, high) in ranges.items()},
        "required": list(ranges),
        "additionalProperties": False,
    }
    schema = {**SCHEMA, "properties": {**SCHEMA["properties"], "configurations": {
        "type": "array", "minItems": 3, "maxItems": 3, "items": item}}}
    lines = [f"- {name}: {'int' if isinstance(low, int) else 'float'} in [{low:g}, {high:g}]"
             for name, (low, high) in ranges.items()]
    messages = [MESSAGES[0], {"role": "user", "content": "Propose 3 configurations of:\n"
                              + "\n".join(lines)}]
    backend = LocalBackend()
    for seed in (0, 1):
        data = backend.complete(messages, schema=schema, seed=seed, max_tokens=400).json()
        for config in data["configurations"]:
            for name, (low, high) in ranges.items():
                assert low <= config[name] <= high, (seed, name, config[name])
                assert isinstance(config[name], int) or not isinstance(low, int)
