"""Gates: pass only on evidence; fail on breaches or inferior quality; inconclusive otherwise."""

from __future__ import annotations

import numpy as np

from tunepilot.online import AppConfig, Constraints, Policy, Rollout, Variant
from tunepilot.online._rollout import judge
from tunepilot.online._windows import Stats

APP = AppConfig(name="a", baseline="big", variants=[Variant(id="big", model="b"), Variant(id="small", model="s")],
                constraints=Constraints(max_cost_per_call=0.05), policy=Policy(margin=0.02))
ROLLOUT = Rollout(app="a", segment="*", candidate="small", baseline="big", steps=[0.05, 0.25, 0.5, 1.0],
                  started_at=0.0, step_started_at=0.0, updated_at=0.0, decision_id="a-1")


def _stats(mean: float, n: int, *, cost: float = 0.01, seed: int = 0) -> Stats:
    s = Stats()
    for q in np.random.default_rng(seed).normal(mean, 0.1, n):
        s.add_quality(float(q))
        s.add_call(latency_ms=None, cost=cost, error=False)
    return s


def test_zero_traffic_is_inconclusive_never_pass() -> None:
    good = _stats(0.9, 2000, seed=1)
    base = _stats(0.9, 2000, seed=2)
    # The window's evidence is fine, but this step brought no calls: hold.
    verdict = judge(ROLLOUT, APP, candidate=good, baseline=base, step_calls=0)
    assert verdict.verdict == "inconclusive"
    assert "0 new calls" in verdict.reason
    assert judge(ROLLOUT, APP, candidate=Stats(), baseline=Stats(), step_calls=0).verdict == "inconclusive"


def test_pass_needs_non_inferior_quality_and_enough_new_calls() -> None:
    verdict = judge(ROLLOUT, APP, candidate=_stats(0.9, 1500, seed=3), baseline=_stats(0.9, 3000, seed=4),
                    step_calls=200)
    assert verdict.verdict == "pass"
    assert verdict.evidence["quality"]["candidate_n"] == 1500
    assert verdict.evidence["quality"]["z"] is not None
    few = judge(ROLLOUT, APP, candidate=_stats(0.9, 30, seed=5), baseline=_stats(0.9, 3000, seed=6),
                step_calls=200)
    assert few.verdict == "inconclusive"


def test_fail_on_inferior_quality_or_a_constraint_breach() -> None:
    worse = judge(ROLLOUT, APP, candidate=_stats(0.7, 500, seed=7), baseline=_stats(0.9, 3000, seed=8),
                  step_calls=200)
    assert worse.verdict == "fail" and "quality inferior" in worse.reason
    costly = judge(ROLLOUT, APP, candidate=_stats(0.9, 500, cost=0.2, seed=9),
                   baseline=_stats(0.9, 3000, seed=10), step_calls=0)
    assert costly.verdict == "fail" and "cost per call" in costly.reason


def test_a_step_whose_traffic_stopped_is_inconclusive() -> None:
    good, base = _stats(0.9, 2000, seed=11), _stats(0.9, 3000, seed=12)
    # 300 calls in the step's first 20 minutes, none in the last 10: held.
    stopped = judge(ROLLOUT, APP, candidate=good, baseline=base, step_calls=300, quiet_s=600.0,
                    step_s=1800.0)
    assert stopped.verdict == "inconclusive" and "traffic stopped" in stopped.reason
    flowing = judge(ROLLOUT, APP, candidate=good, baseline=base, step_calls=300, quiet_s=20.0,
                    step_s=1800.0)
    assert flowing.verdict == "pass"
