"""Analyzers: the quality and error tests, constraint breaches, drift, anomalies."""

from __future__ import annotations

import numpy as np
import pytest

from tunepilot.online import Constraints
from tunepilot.online._analyzers import (
    compare_errors,
    compare_quality,
    constraint_breaches,
    drift,
    psi,
    robust_z,
)
from tunepilot.online._windows import SKETCH_ACCURACY, Stats
from ddsketch import DDSketch


def _stats(values: np.ndarray, *, errors: int = 0, calls: int | None = None) -> Stats:
    s = Stats()
    for v in values:
        s.add_quality(float(v))
    for i in range(calls if calls is not None else len(values)):
        s.add_call(latency_ms=None, cost=None, error=i < errors)
    return s


def test_equal_arms_are_non_inferior_and_a_worse_one_is_inferior() -> None:
    rng = np.random.default_rng(1)
    base = _stats(rng.normal(0.85, 0.1, 800))
    same = _stats(rng.normal(0.85, 0.1, 400))
    worse = _stats(rng.normal(0.80, 0.1, 400))
    assert compare_quality(same, base, margin=0.02, confidence=0.95, min_samples=50).verdict == "non_inferior"
    result = compare_quality(worse, base, margin=0.02, confidence=0.95, min_samples=50)
    assert result.verdict == "inferior"
    assert result.delta == pytest.approx(-0.05, abs=0.015)
    assert result.evidence()["candidate_n"] == 400


def test_too_few_points_is_inconclusive_whatever_the_means() -> None:
    rng = np.random.default_rng(2)
    base = _stats(rng.normal(0.9, 0.1, 500))
    tiny = _stats(np.full(20, 0.2))
    assert compare_quality(tiny, base, margin=0.02, confidence=0.95, min_samples=50).verdict == "inconclusive"
    assert compare_quality(Stats(), base, margin=0.02, confidence=0.95, min_samples=1).verdict == "inconclusive"


def test_false_non_inferiority_rate_at_the_margin_is_at_most_alpha() -> None:
    # A candidate exactly 2 points worse must pass the 2-point non-inferiority test in
    # at most about 5% of repetitions.
    rng = np.random.default_rng(3)
    passes = 0
    for _ in range(400):
        base = _stats(rng.normal(0.85, 0.1, 300))
        cand = _stats(rng.normal(0.83, 0.1, 300))
        passes += compare_quality(cand, base, margin=0.02, confidence=0.95,
                                  min_samples=50).verdict == "non_inferior"
    assert passes / 400 <= 0.08


def test_error_rates() -> None:
    base = _stats(np.array([]), errors=5, calls=1000)
    bad = _stats(np.array([]), errors=80, calls=1000)
    good = _stats(np.array([]), errors=4, calls=1000)
    assert compare_errors(bad, base, margin=0.01, confidence=0.95, min_samples=50).verdict == "inferior"
    assert compare_errors(good, base, margin=0.01, confidence=0.95, min_samples=50).verdict == "non_inferior"


def test_constraint_breaches_name_the_numbers() -> None:
    s = Stats()
    sketch = DDSketch(SKETCH_ACCURACY)
    for i in range(100):
        s.add_call(latency_ms=5000.0 + i, cost=0.02, error=False)
        sketch.add(5000.0 + i)
        s.add_quality(0.5)
    s.sketches.append(sketch)
    breaches = constraint_breaches(s, Constraints(max_cost_per_call=0.01, p95_latency_ms=3000,
                                                  min_quality=0.7), confidence=0.95, min_samples=50)
    assert len(breaches) == 3
    assert any("p95 latency" in b and "3000 ms" in b for b in breaches)
    assert constraint_breaches(s, Constraints(), confidence=0.95, min_samples=50) == []


def test_drift_by_ks_and_psi() -> None:
    rng = np.random.default_rng(4)
    ref = rng.beta(8, 2, 400).tolist()
    assert not drift(ref, rng.beta(8, 2, 400).tolist(), alpha=0.001, psi_threshold=0.25,
                     min_samples=50).drifted
    moved = drift(ref, rng.beta(3, 3, 400).tolist(), alpha=0.001, psi_threshold=0.25, min_samples=50)
    assert moved.drifted and moved.ks_pvalue is not None and moved.ks_pvalue < 1e-6
    assert moved.psi is not None and moved.psi > 0.25
    assert not drift(ref, [0.1] * 10, alpha=0.001, psi_threshold=0.25, min_samples=50).drifted
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-9)


def test_robust_z_ignores_an_outlier_in_the_history() -> None:
    history = [0.01, 0.012, 0.009, 0.011, 0.5, 0.01, 0.01]
    assert robust_z(history, 0.2) > 3.5
    assert abs(robust_z(history, 0.011)) < 3.5
    assert robust_z([1.0, 1.0], 5.0) == 0.0


def test_a_lucky_gain_on_few_scores_is_not_better() -> None:
    rng = np.random.default_rng(6)
    base = _stats(rng.normal(0.82, 0.1, 800))
    lucky = _stats(0.82 + 0.05 + rng.normal(0.0, 0.08, 51))  # +5 points on 51 scores
    result = compare_quality(lucky, base, margin=0.02, confidence=0.95, min_samples=50,
                             min_gain=0.01, gain_confidence=0.9995)
    assert result.verdict != "better"
    real = _stats(rng.normal(0.87, 0.1, 1500))
    assert compare_quality(real, base, margin=0.02, confidence=0.95, min_samples=50, min_gain=0.01,
                           gain_confidence=0.9995).verdict == "better"
