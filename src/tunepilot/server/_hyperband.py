"""Hyperband early termination with W&B's semantics.

At each band ``b`` (an iteration count) the threshold is the value at iteration
``b`` of the run ranked ``floor(n / eta)`` among the ``n`` runs, of any state, that
logged the metric at least ``b`` times (lower is better; values are negated for
``maximize``). A running run that has reached band ``b`` (its latest band) stops
when its metric is worse than that threshold: by default its best value so far is
compared; with ``strict: true`` its value at iteration ``b``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tunepilot.space import Hyperband


@dataclass(frozen=True)
class StopDecision:
    """Whether to stop a run, and the reason shown to the user."""

    stop: bool
    reason: str = ""


def _clean(history: Sequence[object], maximize: bool) -> list[float]:
    values = [
        float(v) for v in history
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]
    return [-v for v in values] if maximize else values


def should_stop(
    config: Hyperband,
    history: Sequence[object],
    all_histories: Sequence[Sequence[object]],
    *,
    maximize: bool,
) -> StopDecision:
    """Decide for one running run with ``history``, given every run's history (its own too)."""
    own = _clean(history, maximize)
    if not own:
        return StopDecision(False)
    others = [h for h in (_clean(x, maximize) for x in all_histories) if h]
    band, threshold = -1, math.inf
    for b in config.bands():
        if b > len(own):
            break
        reached = sorted(h[b - 1] for h in others if len(h) >= b)
        band = b
        threshold = reached[int(len(reached) / config.eta)] if reached else math.inf
    if band == -1:
        return StopDecision(False)
    value = own[band - 1] if config.strict else min(own)
    if value > threshold:
        shown = (-value, -threshold) if maximize else (value, threshold)
        return StopDecision(
            True,
            f"hyperband: at band {band} the metric {shown[0]:.6g} is worse than the "
            f"threshold {shown[1]:.6g}",
        )
    return StopDecision(False)
