"""Analyzers: performance, cost, quality, drift and anomalies over window statistics.

Each analyzer returns plain numbers (the evidence a decision stores) and, where it
tests something, a verdict. Quality comparisons are Bayesian: with a flat prior the
posterior of a mean is normal around the sample mean, so the posterior of the
difference of two means is normal too, and ``P(delta > -margin)`` is one ``ndtr``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

from tunepilot.online._config import Constraints
from tunepilot.online._windows import Stats

__all__ = [
    "Comparison",
    "DriftReport",
    "compare_errors",
    "compare_quality",
    "constraint_breaches",
    "drift",
    "performance",
    "psi",
    "robust_z",
]

#: Variance assumed for a quality score until a sample says otherwise; it keeps a
#: handful of identical scores from looking like certainty.
PRIOR_QUALITY_VAR = 0.01
#: A claimed quality gain is judged under a sceptical prior: gains are centred on 0
#: with this spread (2 points). Among many variants looked at again and again, one
#: will show +5 points on 50 scores by chance; the prior asks for more data first.
GAIN_PRIOR_SD = 0.02

Verdict = Literal["better", "non_inferior", "inferior", "inconclusive"]


@dataclass(frozen=True)
class Comparison:
    """A candidate's metric against a concurrent baseline's, with the test's numbers."""

    metric: str
    verdict: Verdict
    candidate_mean: float | None
    baseline_mean: float | None
    delta: float | None
    candidate_n: int
    baseline_n: int
    z: float | None
    p_non_inferior: float | None
    p_inferior: float | None
    p_better: float | None
    margin: float

    def evidence(self) -> dict[str, Any]:
        """The comparison as JSON-ready numbers."""
        return {f.name: _round(getattr(self, f.name)) for f in fields(self)}


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) and math.isfinite(value) else value


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def compare_quality(candidate: Stats, baseline: Stats, *, margin: float, confidence: float,
                    min_samples: int, min_gain: float = 0.0,
                    gain_confidence: float | None = None) -> Comparison:
    """Non-inferiority (and superiority) of the candidate's mean quality.

    Verdicts: ``better`` (``P(delta > min_gain) >= gain_confidence`` under a sceptical
    prior centred on no gain); ``non_inferior``
    (``P(delta > -margin) >= confidence`` and the estimate itself within half the
    margin); ``inferior`` (``P(delta < -0.75 margin) >= confidence``: surely worse than
    three quarters of the margin); else ``inconclusive``. Fewer than ``min_samples``
    quality points on either side is always ``inconclusive``. The tighter conditions
    keep a candidate whose true loss is near the margin from slipping through on one
    lucky look among many: it is refused once the data say it is clearly past them.

    Example:
        >>> a, b = Stats(), Stats()
        >>> for i in range(200):
        ...     a.add_quality(0.9 if i % 2 else 0.8); b.add_quality(0.9 if i % 2 else 0.8)
        >>> compare_quality(a, b, margin=0.02, confidence=0.95, min_samples=50).verdict
        'non_inferior'
    """
    nc, nb = candidate.quality_n, baseline.quality_n
    mc, mb = candidate.quality_mean, baseline.quality_mean
    if mc is None or mb is None or nc < 1 or nb < 1:
        return Comparison("quality", "inconclusive", mc, mb, None, nc, nb, None, None, None,
                          None, margin)
    # A variance estimated from few points is unreliable: pool towards the larger of
    # the two samples' variances and the prior.
    vc = candidate.quality_var if candidate.quality_var is not None else PRIOR_QUALITY_VAR
    vb = baseline.quality_var if baseline.quality_var is not None else PRIOR_QUALITY_VAR
    floor = max(vc, vb) if min(nc, nb) < 30 else 1e-6
    se = math.sqrt(max(vc, floor) / nc + max(vb, floor) / nb)
    delta = mc - mb
    se = max(se, 1e-9)
    p_non_inferior = _normal_cdf((delta + margin) / se)
    p_inferior = _normal_cdf((-0.75 * margin - delta) / se)
    shrink = GAIN_PRIOR_SD**2 / (GAIN_PRIOR_SD**2 + se * se)
    p_better = _normal_cdf((delta * shrink - min_gain) / (se * math.sqrt(shrink)))
    verdict: Verdict = "inconclusive"
    if min(nc, nb) >= min_samples:
        if gain_confidence is not None and p_better >= gain_confidence:
            verdict = "better"
        elif p_non_inferior >= confidence and delta >= -margin / 2:
            verdict = "non_inferior"
        elif p_inferior >= confidence:
            verdict = "inferior"
    return Comparison("quality", verdict, mc, mb, delta, nc, nb, delta / se, p_non_inferior,
                      p_inferior, p_better, margin)


def compare_errors(candidate: Stats, baseline: Stats, *, margin: float, confidence: float,
                   min_samples: int) -> Comparison:
    """Non-inferiority of the candidate's error rate (lower is better) over all calls."""
    nc, nb = candidate.calls, baseline.calls
    if nc < 1 or nb < 1:
        return Comparison("error_rate", "inconclusive", None, None, None, nc, nb, None, None,
                          None, None, margin)
    # Beta(1, 1) posteriors; their normal approximation is fine at the sizes gates use.
    pc = (candidate.errors + 1) / (nc + 2)
    pb = (baseline.errors + 1) / (nb + 2)
    se = math.sqrt(pc * (1 - pc) / (nc + 2) + pb * (1 - pb) / (nb + 2))
    delta = pc - pb  # positive = more errors
    p_non_inferior = _normal_cdf((margin - delta) / se)
    p_inferior = _normal_cdf((delta - margin) / se)
    verdict: Verdict = "inconclusive"
    if min(nc, nb) >= min_samples:
        if p_non_inferior >= confidence:
            verdict = "non_inferior"
        elif p_inferior >= confidence:
            verdict = "inferior"
    return Comparison("error_rate", verdict, candidate.error_rate, baseline.error_rate,
                      candidate.error_rate - baseline.error_rate, nc, nb, delta / se,
                      p_non_inferior, p_inferior, None, margin)


def performance(stats: Stats) -> dict[str, float | int | None]:
    """Latency (mean, p50, p95, p99), error rate, cost and quality of one window."""
    return {
        **stats.summary(),
        "latency_p50_ms": stats.quantile(0.50),
        "latency_p95_ms": stats.quantile(0.95),
        "latency_p99_ms": stats.quantile(0.99),
    }


def constraint_breaches(stats: Stats, constraints: Constraints, *, confidence: float,
                        min_samples: int) -> list[str]:
    """The constraints this window breaches, each as a sentence with the numbers.

    A breach needs ``min_samples`` calls; quality needs the posterior probability of
    being below the minimum to reach ``confidence``.
    """
    breaches: list[str] = []
    if stats.calls < min_samples:
        return breaches
    cost = stats.cost_mean
    if constraints.max_cost_per_call is not None and cost is not None and cost > constraints.max_cost_per_call:
        breaches.append(f"cost per call {cost:.6f} > {constraints.max_cost_per_call}")
    if constraints.p95_latency_ms is not None and stats.latency_n >= min_samples:
        p95 = stats.quantile(0.95)
        if p95 is not None and p95 > constraints.p95_latency_ms:
            breaches.append(f"p95 latency {p95:.0f} ms > {constraints.p95_latency_ms:.0f} ms")
    if constraints.min_quality is not None and stats.quality_n >= min_samples:
        mean, var = stats.quality_mean, stats.quality_var or PRIOR_QUALITY_VAR
        assert mean is not None
        se = math.sqrt(var / stats.quality_n)
        if _normal_cdf((constraints.min_quality - mean) / max(se, 1e-9)) >= confidence:
            breaches.append(f"quality {mean:.3f} < {constraints.min_quality}")
    return breaches


def psi(reference: Sequence[float], current: Sequence[float], *, bins: int = 10) -> float:
    """Population stability index of two samples of scores in [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    ref, _ = np.histogram(np.clip(reference, 0, 1), bins=edges)
    cur, _ = np.histogram(np.clip(current, 0, 1), bins=edges)
    # Half a count in empty bins keeps the log finite, as is usual for PSI.
    p = (ref + 0.5) / (ref.sum() + 0.5 * bins)
    q = (cur + 0.5) / (cur.sum() + 0.5 * bins)
    return float(np.sum((q - p) * np.log(q / p)))


@dataclass(frozen=True)
class DriftReport:
    """KS test and PSI between a reference window and the current one."""

    drifted: bool
    ks_statistic: float | None
    ks_pvalue: float | None
    psi: float | None
    reference_n: int
    current_n: int
    reference_mean: float | None
    current_mean: float | None

    def evidence(self) -> dict[str, Any]:
        """The report as JSON-ready numbers."""
        return {f.name: _round(getattr(self, f.name)) for f in fields(self)}


def drift(reference: Sequence[float], current: Sequence[float], *, alpha: float,
          psi_threshold: float, min_samples: int) -> DriftReport:
    """Whether the distribution of ``current`` moved away from ``reference``.

    Drift is declared when both samples hold ``min_samples`` values and the two-sample
    KS test rejects at ``alpha`` or the PSI exceeds ``psi_threshold``.

    Example:
        >>> import random; r = random.Random(0)
        >>> ref = [r.betavariate(8, 2) for _ in range(300)]
        >>> cur = [r.betavariate(3, 3) for _ in range(300)]
        >>> drift(ref, cur, alpha=0.001, psi_threshold=0.25, min_samples=50).drifted
        True
    """
    nr, nc = len(reference), len(current)
    mr = float(np.mean(reference)) if nr else None
    mc = float(np.mean(current)) if nc else None
    if nr < min_samples or nc < min_samples:
        return DriftReport(False, None, None, None, nr, nc, mr, mc)
    result = sps.ks_2samp(reference, current)
    statistic, pvalue = float(result.statistic), float(result.pvalue)
    index = psi(reference, current)
    return DriftReport(pvalue < alpha or index > psi_threshold, statistic, pvalue, index, nr, nc,
                       mr, mc)


def robust_z(history: Sequence[float], value: float) -> float:
    """Robust z-score of ``value`` against ``history``: ``0.6745 (x - median) / MAD``.

    Returns 0 when the history is too short (< 5) or has no spread.

    Example:
        >>> round(robust_z([1.0, 1.1, 0.9, 1.0, 1.05, 0.95], 3.0), 1)
        27.0
    """
    if len(history) < 5:
        return 0.0
    data = np.asarray(history, dtype=float)
    median = float(np.median(data))
    mad = float(np.median(np.abs(data - median)))
    if mad == 0.0:
        return 0.0
    return 0.6745 * (value - median) / mad
