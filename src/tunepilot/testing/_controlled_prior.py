"""ControlledPrior: a backend that answers from a fixed distribution, for πBO-style experiments."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from typing import Any

from tunepilot.llm import Completion, Message, Usage
from tunepilot.testing._fake_llm import _config_schema


class ControlledPrior:
    """Proposes configurations drawn around ``center`` instead of asking a model.

    This is not a language model. It exists for the controlled-prior experiments of
    the πBO protocol: centred on a task's best-known region it plays an
    *informative* adviser, centred on its worst-known region a *misleading* one.
    Results obtained with it must always be labelled as controlled priors.

    Numeric values are drawn with a Gaussian of standard deviation ``spread`` in
    the parameter's unit interval (in log space for log-scaled parameters, which it
    recognises from the schema's ``description``), clipped to the bounds; a
    categorical value keeps the centre's choice with probability ``1 - spread``.

    Args:
        center: a value for every parameter.
        spread: relative spread in (0, 1].
        seed: seed of the generator.

    Example:
        .. code-block:: python

            from tunepilot import LLMSampler
            from tunepilot.testing import ControlledPrior

            advice = ControlledPrior({"x": 0.3, "kernel": "rbf"}, spread=0.1, seed=0)
            sampler = LLMSampler(advice, mode="blend", seed=0)
    """

    def __init__(self, center: Mapping[str, Any], spread: float = 0.1, seed: int | None = None) -> None:
        if not 0 < spread <= 1:
            raise ValueError(f"spread must be in (0, 1], got {spread}")
        self.center = dict(center)
        self.spread = spread
        self.seed = seed
        self.name = "controlled-prior"
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
        config_schema, count = _config_schema(schema)
        props = config_schema.get("properties", {})
        missing = set(props) - set(self.center)
        if missing:
            raise ValueError(f"the center has no value for {sorted(missing)}")
        configs = [{n: self._draw(n, p) for n, p in props.items()} for _ in range(count)]
        text = json.dumps({"configurations": configs, "rationale": "controlled prior"})
        return Completion(text=text, usage=Usage(), model=self.name)

    def _draw(self, name: str, prop: dict[str, Any]) -> Any:
        center = self.center[name]
        if "enum" in prop:
            choices = prop["enum"]
            if len(choices) > 1 and self._rng.random() < self.spread:
                return self._rng.choice([c for c in choices if c != center] or choices)
            return center
        low, high = float(prop["minimum"]), float(prop["maximum"])
        log = "log scale" in prop.get("description", "") and low > 0
        to_unit = (lambda v: math.log(v)) if log else (lambda v: v)
        lo, hi = to_unit(low), to_unit(high)
        u = (to_unit(float(center)) - lo) / (hi - lo) if hi > lo else 0.5
        u = min(max(u + self._rng.gauss(0.0, self.spread), 0.0), 1.0)
        value = lo + u * (hi - lo)
        value = math.exp(value) if log else value
        if prop.get("type") == "integer":
            return int(round(min(max(value, low), high)))
        return min(max(value, low), high)
