"""FakeLLM: a scripted stand-in for a language model, for tests that inject faults."""

from __future__ import annotations

import json
import random
from typing import Any, Literal

from tunepilot.exceptions import LLMServerError, LLMTimeoutError
from tunepilot.llm import Completion, Message, Usage

Mode = Literal["valid", "random", "adversarial"]


def _config_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The schema of one configuration inside a response schema, and how many are asked for."""
    configurations = schema.get("properties", {}).get("configurations")
    if configurations is None:
        return schema, 1
    return configurations.get("items", {}), int(configurations.get("minItems", 1))


class FakeLLM:
    """A backend that answers from a seeded random generator instead of a model.

    Args:
        mode: ``"valid"`` answers with configurations inside the schema's bounds;
            ``"random"`` with well-formed JSON whose values ignore the bounds (a careless
            model); ``"adversarial"`` with hostile output: malformed or truncated JSON,
            wrong types, out-of-range values, unknown categories, NaN and Infinity,
            huge numbers, deep nesting, very large bodies, and raised timeouts and
            server errors.
        seed: seed of the generator.

    Every call is recorded in ``calls`` as ``(messages, schema)``.

    Example:
        .. code-block:: python

            import optuna
            from tunepilot import LLMSampler
            from tunepilot.testing import FakeLLM

            sampler = LLMSampler(FakeLLM(mode="adversarial", seed=0), seed=0)
            study = optuna.create_study(sampler=sampler)
            study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=10)
    """

    def __init__(self, mode: Mode = "valid", seed: int | None = None) -> None:
        if mode not in ("valid", "random", "adversarial"):
            raise ValueError(f"mode must be 'valid', 'random' or 'adversarial', got {mode!r}")
        self.mode = mode
        self.seed = seed
        self.name = f"fake-{mode}"
        self.calls: list[tuple[list[Message], dict[str, Any]]] = []
        self._rng = random.Random(seed)

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any],
        temperature: float = 0.7,
        seed: int | None = None,
        max_tokens: int = 512,
    ) -> Completion:
        self.calls.append((messages, schema))
        config_schema, count = _config_schema(schema)
        if self.mode == "adversarial":
            text = self._adversarial(config_schema, count)
        else:
            configs = [self._config(config_schema, careless=self.mode == "random") for _ in range(count)]
            text = json.dumps({"configurations": configs, "rationale": f"{self.mode} proposal"})
        prompt_chars = sum(len(m.get("content", "")) for m in messages)
        return Completion(
            text=text,
            usage=Usage(prompt_chars // 4, len(text) // 4, 0.0),
            model=self.name,
        )

    def _value(self, prop: dict[str, Any], careless: bool) -> Any:
        rng = self._rng
        if "enum" in prop:
            if careless and rng.random() < 0.1:
                return "not-a-choice"
            return rng.choice(prop["enum"])
        low, high = prop.get("minimum", 0.0), prop.get("maximum", 1.0)
        if careless:
            width = (high - low) or 1.0
            low, high = low - width, high + width
        if prop.get("type") == "integer":
            return rng.randint(int(low), int(high))
        return rng.uniform(low, high)

    def _config(self, config_schema: dict[str, Any], careless: bool) -> dict[str, Any]:
        props = config_schema.get("properties", {})
        return {name: self._value(prop, careless) for name, prop in props.items()}

    def _adversarial(self, config_schema: dict[str, Any], count: int) -> str:
        rng = self._rng
        names = list(config_schema.get("properties", {})) or ["x"]
        good = json.dumps(
            {"configurations": [self._config(config_schema, careless=True) for _ in range(count)]}
        )
        name = rng.choice(names)
        attack = rng.randrange(20)
        if attack == 0:
            raise LLMTimeoutError("fake timeout")
        if attack == 1:
            raise LLMServerError("fake HTTP 500")
        bad_values: list[Any] = [
            "NaN", "Infinity", "-Infinity", "1e999", '"12abc"', "true", "null", "[1, 2]",
            '{"value": 3}', '"__import__(\'os\').system(\'echo pwned\')"', "9" * 5000,
            "-" + "9" * 400, "1e-400", '"rbf"', '""',
        ]
        bodies = [
            good[: rng.randrange(len(good))],  # truncated
            "",
            "I think you should try a learning rate of 0.01.",
            "[" * 100_000 + "]" * 100_000,  # deeper than the parser allows
            json.dumps({"configurations": [{n: "x" * 300_000 for n in names}]}),  # huge body
            json.dumps([1, 2, 3]),
            json.dumps({"configurations": "all of them"}),
            json.dumps({"configurations": [None, 5, "x"]}),
            json.dumps({"configurations": []}),
            json.dumps({"configs": json.loads(good)["configurations"]}),
            json.dumps({"configurations": [{n: 0 for n in names[:-1]}]}),  # a missing parameter
            json.dumps({"configurations": [{**{n: 0 for n in names}, "extra": 1}]}),
            "```json\n" + good + "\n```",
            good.replace("{", "{'", 1),
            '{"configurations": [{%s}]}' % ", ".join(  # every parameter, one of them hostile
                f'"{n}": {rng.choice(bad_values) if n == name else "0"}' for n in names
            ),
            good,
        ]
        text = rng.choice(bodies)
        if rng.random() < 0.3 and text == good:
            config = json.loads(good)
            config["configurations"][0][name] = rng.choice(
                [float("nan"), float("inf"), -1e308, 1e308, "abc", [], {}, True, None, 2**70]
            )
            text = json.dumps(config)  # json.dumps writes NaN and Infinity literals
        return text
