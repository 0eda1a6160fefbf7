"""Canary rollouts: a gate per step that passes, fails, or is inconclusive and holds.

A gate compares the candidate with the concurrent baseline (the segment's leader,
which serves the rest of the traffic at the same time):

- **fail** when the candidate breaks a constraint, its quality is inferior by more
  than the margin, or its error rate is worse by more than ``error_margin``;
- **inconclusive** when the step brought fewer than ``min_step_samples`` new calls
  for the candidate, when its traffic has stopped (no call for five mean gaps, and at
  least a minute: calls made before traffic stopped never pass a gate after it), or
  when a test has too few points or cannot decide;
- **pass** only when quality and errors are both shown non-inferior: at the earlier
  steps with posterior probability ``step_confidence``, at the last with ``confidence``.

Quality is judged over the analysis window up to now (late feedback keeps arriving
for calls already made); the new-call count is taken from whole buckets that began
after the step started, so calls from before the step never count for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tunepilot.online._analyzers import compare_errors, compare_quality, constraint_breaches
from tunepilot.online._config import AppConfig
from tunepilot.online._decisions import Rollout
from tunepilot.online._windows import Stats

__all__ = ["GateVerdict", "judge"]


@dataclass(frozen=True)
class GateVerdict:
    """A gate's verdict with its reason and evidence."""

    verdict: Literal["pass", "fail", "inconclusive"]
    reason: str
    evidence: dict[str, Any]


#: A gate passes only if the candidate's newest call is at most this many mean gaps
#: between its calls old (and at least a minute): traffic that stopped is no evidence.
QUIET_GAPS = 5.0


def judge(rollout: Rollout, app: AppConfig, *, candidate: Stats, baseline: Stats,
          step_calls: int, quiet_s: float = 0.0, step_s: float | None = None) -> GateVerdict:
    """Judge the current step of ``rollout``.

    Args:
        rollout: the rollout whose step is judged.
        app: the application (policy and constraints).
        candidate: the candidate's window statistics, with latency sketches.
        baseline: the leader's statistics over the same window.
        step_calls: the candidate's calls since the step started.
        quiet_s: seconds since the candidate's newest call.
        step_s: seconds since the step started (with ``step_calls``, the mean gap
            between calls that ``quiet_s`` is measured against).

    Example:
        >>> from tunepilot.online._config import Variant
        >>> app = AppConfig(name="a", baseline="x", variants=[Variant(id="x", model="m"),
        ...                 Variant(id="y", model="m")])
        >>> r = Rollout(app="a", segment="*", candidate="y", baseline="x", steps=[0.5, 1.0],
        ...             started_at=0.0, step_started_at=0.0, updated_at=0.0, decision_id="d")
        >>> judge(r, app, candidate=Stats(), baseline=Stats(), step_calls=0).verdict
        'inconclusive'
    """
    policy = app.policy
    # At 5% of the traffic a window holds little quality data: the earlier gates ask
    # for "no harm seen" at a lower posterior probability, the last one for the full
    # confidence the promotion needed, on the data the larger shares brought.
    last = rollout.step >= len(rollout.steps) - 2
    needed = policy.confidence if last else policy.step_confidence
    quality = compare_quality(candidate, baseline, margin=policy.margin,
                              confidence=needed, min_samples=policy.min_samples)
    errors = compare_errors(candidate, baseline, margin=policy.error_margin,
                            confidence=policy.confidence, min_samples=policy.min_samples)
    breaches = constraint_breaches(candidate, app.constraints, confidence=policy.confidence,
                                   min_samples=policy.min_samples)
    evidence: dict[str, Any] = {
        "step": rollout.step, "fraction": rollout.fraction, "step_calls": step_calls,
        "min_step_samples": policy.min_step_samples, "confidence_needed": needed,
        "quality": quality.evidence(), "error_rate": errors.evidence(),
        "candidate": candidate.summary(), "baseline": baseline.summary(),
        "candidate_latency_p95_ms": candidate.quantile(0.95) if candidate.latency_n else None,
        "baseline_latency_p95_ms": baseline.quantile(0.95) if baseline.latency_n else None,
        "breaches": breaches,
    }
    if breaches:
        return GateVerdict("fail", "constraint breached: " + "; ".join(breaches), evidence)
    if quality.verdict == "inferior":
        return GateVerdict("fail", f"quality inferior (delta {100 * (quality.delta or 0):+.1f} "
                           f"points, P={quality.p_inferior:.3f})", evidence)
    if errors.verdict == "inferior":
        return GateVerdict("fail", f"error rate {candidate.error_rate:.3%} against "
                           f"{baseline.error_rate:.3%}", evidence)
    if step_calls < policy.min_step_samples:
        return GateVerdict("inconclusive", f"{step_calls} new calls in this step, "
                           f"{policy.min_step_samples} needed", evidence)
    gap = (step_s if step_s is not None else policy.gate_interval_s) / max(step_calls, 1)
    limit = max(60.0, QUIET_GAPS * gap)
    evidence["quiet_s"] = quiet_s
    if quiet_s > limit:
        return GateVerdict("inconclusive", f"no call for the candidate in the last {quiet_s:.0f} s "
                           f"(more than {limit:.0f} s): its traffic stopped", evidence)
    if quality.verdict not in ("non_inferior", "better"):
        return GateVerdict("inconclusive", f"quality undecided ({quality.candidate_n} and "
                           f"{quality.baseline_n} points, P(non-inferior)="
                           f"{quality.p_non_inferior if quality.p_non_inferior is not None else 0:.3f})",
                           evidence)
    if errors.verdict != "non_inferior":
        return GateVerdict("inconclusive", "error rate undecided", evidence)
    return GateVerdict("pass", f"quality non-inferior (P={quality.p_non_inferior:.3f}), "
                       "errors non-inferior, constraints kept", evidence)
