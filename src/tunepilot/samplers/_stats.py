"""Counters of what an LLMSampler did: calls, fallbacks, repairs, tokens, cost."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

from tunepilot.llm import Usage


@dataclass
class LLMStats:
    """What one :class:`~tunepilot.LLMSampler` did in this process.

    Attributes:
        calls: LLM requests sent, repair round trips included.
        proposals: configurations the LLM proposed that fit the space after repair.
        llm_trials: trials that ran an LLM configuration (llm mode).
        blend_trials: trials chosen by the blend of the priors and its base (blend mode).
        base_trials: trials the safeguard handed to the base sampler because the model's
            trials did not beat it (llm mode).
        fallback_trials: trials the fallback sampler chose; why, in ``fallback_reasons``.
        invalid_responses: answers with at least one unusable configuration.
        repair_round_trips: follow-up requests that asked the model to fix its answer.
        repaired_params: parameter values clamped, snapped, coerced or deduplicated.
        prompt_tokens, completion_tokens, cost_usd: summed over all calls.
    """

    calls: int = 0
    proposals: int = 0
    llm_trials: int = 0
    blend_trials: int = 0
    base_trials: int = 0
    fallback_trials: int = 0
    invalid_responses: int = 0
    repair_round_trips: int = 0
    repaired_params: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    fallback_reasons: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_usage(self, usage: Usage) -> None:
        with self._lock:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
            self.cost_usd += usage.cost_usd

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def fallback(self, reason: str) -> None:
        with self._lock:
            self.fallback_trials += 1
            self.fallback_reasons[reason] += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}
            data["fallback_reasons"] = dict(self.fallback_reasons)
        return data
