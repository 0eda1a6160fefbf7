"""The prompt: rebuilt from the study before every LLM call, within a flat token budget.

The context holds the user's description, every parameter with its range in plain
words (a fraction, a whole number, a log scale with a value on it: small models
otherwise answer a count where the space wants a fraction), the direction, a progress
line, the best trials, the most recent ones, failed and pruned trials with their
reasons, and configurations still being evaluated. The model is asked to list its
configurations best first, which the blend's prior weighs. Each list has a fixed
length, so the prompt does not grow with the study; if it exceeds the token budget
the lists are shortened until it fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tunepilot._redact import redact
from tunepilot.llm import Message
from tunepilot.space import SearchSpace

SYSTEM_PROMPT = (
    "You are an expert in hyperparameter optimization. You choose the next configurations "
    "to evaluate for a machine learning objective. Use the results so far: refine around the "
    "best configurations, and also try promising regions that have not been tried. Every value "
    "must lie inside its range; log-scale parameters vary over orders of magnitude. Never repeat "
    "a configuration that was already tried. Answer with JSON only."
)

#: Shown in the prompt for a failed trial whose objective recorded no reason.
UNKNOWN_REASON = "no reason recorded"


@dataclass(frozen=True)
class ContextOptions:
    description: str | None
    count: int
    context_trials: int
    max_prompt_tokens: int


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _format_params(params: dict[str, Any], space: SearchSpace) -> str:
    return ", ".join(f"{n}={_format_value(params[n])}" for n in space if n in params)


def _fail_reason(trial: FrozenTrial) -> str:
    if trial.state == TrialState.PRUNED:
        if trial.intermediate_values:
            step = max(trial.intermediate_values)
            return f"pruned at step {step} (value {_format_value(trial.intermediate_values[step])})"
        return "pruned"
    reason = trial.user_attrs.get("fail_reason") or UNKNOWN_REASON
    # Redacted before it is cut: a cut could leave half a URL that no longer looks like one.
    return f"failed: {redact(str(reason))[:120]}"


def _pending_params(trial: FrozenTrial) -> dict[str, Any]:
    if trial.state == TrialState.WAITING:
        fixed = trial.system_attrs.get("fixed_params", {})
        return fixed if isinstance(fixed, dict) else {}
    return trial.params


def build_messages(
    study: Study,
    trials: Sequence[FrozenTrial],
    space: SearchSpace,
    options: ContextOptions,
    count_tokens: Callable[[str], int],
) -> list[Message]:
    """Build the chat messages for one call, asking for ``options.count`` configurations.

    ``trials`` are the study's trials other than the one being sampled.
    """
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    maximize = study.direction == StudyDirection.MAXIMIZE
    ranked = sorted(complete, key=lambda t: float(t.value or 0.0), reverse=maximize)
    failed = [t for t in trials if t.state in (TrialState.FAIL, TrialState.PRUNED)]
    pending = [
        t for t in trials
        if t.state in (TrialState.RUNNING, TrialState.WAITING) and _pending_params(t)
    ]

    k = options.context_trials
    while True:
        user = _user_prompt(
            space, options, maximize, trials, ranked, complete, failed, pending, k
        )
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
        ]
        if k == 0 or count_tokens(SYSTEM_PROMPT + user) <= options.max_prompt_tokens:
            return messages
        k -= 1


def _user_prompt(
    space: SearchSpace,
    options: ContextOptions,
    maximize: bool,
    trials: Sequence[FrozenTrial],
    ranked: list[FrozenTrial],
    complete: list[FrozenTrial],
    failed: list[FrozenTrial],
    pending: list[FrozenTrial],
    k: int,
) -> str:
    lines = [f"Task: {options.description.strip() if options.description else 'not described.'}"]
    lines.append(f"Goal: {'maximize' if maximize else 'minimize'} the objective value.")
    lines.append("Parameters:")
    lines += [f"- {line}" for line in space.explain()]
    counts = (
        f"{len(trials)} trials so far: {len(complete)} complete, "
        f"{sum(t.state == TrialState.FAIL for t in failed)} failed, "
        f"{sum(t.state == TrialState.PRUNED for t in failed)} pruned, {len(pending)} in progress."
    )
    lines.append(counts)
    best = ranked[:k]
    if best:
        lines.append("Best trials, best first:")
        lines += [f"#{t.number} value={_format_value(t.value)}: {_format_params(t.params, space)}" for t in best]
        shown = {t.number for t in best}
        recent = [t for t in reversed(complete) if t.number not in shown][:k]
        if recent:
            lines.append("Most recent other trials:")
            lines += [f"#{t.number} value={_format_value(t.value)}: {_format_params(t.params, space)}" for t in recent]
    failed_shown = failed[-min(k, 3):] if k else []
    if failed_shown:
        lines.append("Failed or pruned trials; avoid what caused them:")
        lines += [f"#{t.number} {_fail_reason(t)}: {_format_params(t.params, space)}" for t in failed_shown]
    pending_shown = pending[-k:] if k else []
    if pending_shown:
        lines.append("Being evaluated now; do not repeat:")
        lines += [f"#{t.number}: {_format_params(_pending_params(t), space)}" for t in pending_shown]
    noun = "configuration" if options.count == 1 else "configurations"
    order = ", the one you expect to do best first" if options.count > 1 else ""
    lines.append(
        f"Propose {options.count} new {noun}, each different from every trial above. Answer "
        f"with JSON: 'configurations', a list of {options.count} objects setting every "
        f"parameter{order}, and 'rationale', why you chose them, in a few words."
    )
    return "\n".join(lines)
