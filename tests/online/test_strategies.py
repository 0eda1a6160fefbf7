"""Strategies: exploration shares, proposals, eliminations; the Optuna tuner."""

from __future__ import annotations

import numpy as np
import pytest

from tunepilot.online import AppConfig, Constraints, Policy, Variant
from tunepilot.online._strategies import (
    ABStrategy,
    BanditStrategy,
    ParetoStrategy,
    SegmentView,
    ThresholdStrategy,
    thompson,
)
from tunepilot.online._tuning import Tuner
from tunepilot.online._windows import Stats

APP = AppConfig(
    name="a", baseline="big",
    variants=[Variant(id=v, model=v) for v in ("big", "mid", "small", "bad")],
    constraints=Constraints(min_quality=0.6), policy=Policy(explore=0.2, floor=0.01))
COST = {"big": 0.01, "mid": 0.004, "small": 0.001, "bad": 0.0005}


def _arm(mean: float, n: int, cost: float, seed: int) -> Stats:
    s = Stats()
    rng = np.random.default_rng(seed)
    for i in range(n):
        s.add_call(latency_ms=None, cost=cost, error=False)
        if i % 2 == 0:
            s.add_quality(float(np.clip(rng.normal(mean, 0.1), 0, 1)))
    return s


def _view(means: dict[str, float], n: int = 600) -> SegmentView:
    arms = {v: _arm(m, n, COST[v], i) for i, (v, m) in enumerate(means.items())}
    return SegmentView(APP, "*", "big", arms, [v for v in means if v != "big"], 0.0,
                       detail=lambda v: arms[v])


def test_pareto_proposes_the_cheapest_non_inferior_variant() -> None:
    view = _view({"big": 0.85, "mid": 0.85, "small": 0.85, "bad": 0.5})
    proposal = ParetoStrategy().propose(view)
    assert proposal is not None and proposal.variant == "small"
    assert proposal.evidence["cost_saving"] == pytest.approx(0.9)
    assert proposal.evidence["quality"]["verdict"] == "non_inferior"
    assert [e.variant for e in ParetoStrategy().eliminate(view)] == ["bad"]


def test_pareto_skips_a_cheap_variant_that_loses_quality() -> None:
    proposal = ParetoStrategy().propose(_view({"big": 0.85, "mid": 0.85, "small": 0.75, "bad": 0.5}))
    assert proposal is not None and proposal.variant == "mid"
    assert ParetoStrategy().propose(_view({"big": 0.85, "mid": 0.7, "small": 0.7, "bad": 0.5})) is None


def test_thompson_sends_exploration_to_the_likely_winner_with_floors() -> None:
    view = _view({"big": 0.85, "mid": 0.85, "small": 0.85, "bad": 0.3}, n=200)
    p = thompson(view, np.random.default_rng(0))
    assert sum(p.values()) == pytest.approx(1.0)
    assert p["small"] == max(p[v] for v in ("mid", "small", "bad")) and p["bad"] < 0.05
    shares = ParetoStrategy().explore(view, np.random.default_rng(0))
    assert shares["small"] == pytest.approx(0.2 - 0.02)
    assert shares["bad"] == pytest.approx(0.01)
    assert sum(shares.values()) <= 0.2 + 1e-9


def test_unseen_variants_get_traffic_to_be_learned() -> None:
    arms = {"big": _arm(0.85, 500, 0.01, 1)}
    view = SegmentView(APP, "*", "big", arms, ["mid", "small"], 0.0, detail=lambda v: arms.get(v, Stats()))
    shares = BanditStrategy().explore(view, np.random.default_rng(1))
    assert set(shares) == {"mid", "small"} and sum(shares.values()) > 0.02


def test_bandit_ab_and_threshold_strategies() -> None:
    view = _view({"big": 0.85, "mid": 0.85, "small": 0.85, "bad": 0.5}, n=2000)
    bandit = BanditStrategy()
    bandit.explore(view, np.random.default_rng(2))
    proposal = bandit.propose(view)
    assert proposal is not None and proposal.variant == "small" and proposal.evidence["p_best"] >= 0.95
    ab = ABStrategy()
    assert ab.explore(view, np.random.default_rng(0)) == {"bad": 0.2}  # cheapest challenger first
    assert ab.propose(view) is None  # it is worse: no promotion
    threshold = ThresholdStrategy().propose(view)
    assert threshold is not None and threshold.variant == "small"


def test_tuner_asks_new_variants_and_learns_from_their_windows() -> None:
    app = APP.model_copy(update={"policy": Policy(tune={"temperature": (0.0, 1.0), "max_tokens": (64, 2048)},
                                                  min_samples=10, max_tuned_variants=3)})
    tuner = Tuner(app, seed=0)
    leader = app.variant("big")
    first, second = tuner.ask(leader), tuner.ask(leader)
    assert first is not None and second is not None and tuner.ask(leader) is None  # two open at once
    assert first.model == "big" and 0.0 <= (first.temperature or 0.0) <= 1.0
    assert 64 <= (first.max_tokens or 0) <= 2048
    told = tuner.tell_ready({first.id: _arm(0.8, 40, 0.005, 3), "big": _arm(0.8, 40, 0.01, 4)}, "big")
    assert [v for v, _ in told] == [first.id]
    assert told[0][1] == pytest.approx(0.8 - 0.1 * 0.5, abs=0.05)
    third = tuner.ask(leader)
    assert third is not None and tuner.ask(leader) is None  # the budget of three is spent
    assert len(tuner.study.trials) == 3


def test_a_saving_that_may_be_noise_does_not_promote() -> None:
    from tunepilot.online._strategies import saving_probability

    rng = np.random.default_rng(5)
    leader, same = Stats(), Stats()
    for cost in rng.lognormal(np.log(0.01), 0.5, 3000):
        leader.add_call(latency_ms=None, cost=float(cost), error=False)
    for cost in rng.lognormal(np.log(0.01), 0.5, 60) * 0.93:  # 7% cheaper on 60 calls: noise
        same.add_call(latency_ms=None, cost=float(cost), error=False)
    assert saving_probability(same, leader, 0.05) < 0.95
    cheap = Stats()
    for cost in rng.lognormal(np.log(0.001), 0.5, 60):
        cheap.add_call(latency_ms=None, cost=float(cost), error=False)
    assert saving_probability(cheap, leader, 0.05) > 0.999
