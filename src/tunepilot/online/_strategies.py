"""Decision strategies: who gets exploration traffic, which variant is proposed, who is dropped.

Every strategy works on one segment of one application at a time (contextual choice
is the optimizer running a strategy per segment) and sees only window statistics.

- :class:`ParetoStrategy` (default): Thompson-sampling exploration; proposes the
  cheapest variant whose quality is non-inferior to the leader's (or a clearly better
  one at the same cost) and that keeps every constraint: the cost-quality Pareto
  choice.
- :class:`BanditStrategy`: Thompson sampling with a floor per arm; proposes the arm
  that is optimal with posterior probability ``confidence``.
- :class:`ABStrategy`: one challenger at a time against the concurrent leader, a
  Bayesian sequential test with a minimum sample.
- :class:`ThresholdStrategy`: fixed rules; the cheapest variant inside the constraints.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunepilot.online._analyzers import (
    Comparison,
    compare_errors,
    compare_quality,
    constraint_breaches,
)
from tunepilot.online._config import AppConfig, Policy
from tunepilot.online._windows import Stats

__all__ = [
    "ABStrategy",
    "BanditStrategy",
    "Elimination",
    "ParetoStrategy",
    "Proposal",
    "SegmentView",
    "Strategy",
    "ThresholdStrategy",
    "make_strategy",
]

#: Prior standard deviation of an unobserved variant's quality around the leader's.
PRIOR_SD = 0.15
#: Posterior draws per Thompson allocation.
DRAWS = 256
#: Confidence and least sample needed to drop a variant early; a clearly bad variant
#: should not keep its exploration floor for hours.
ELIMINATE_CONFIDENCE = 0.99
ELIMINATE_MIN_SAMPLES = 5


@dataclass
class SegmentView:
    """What a strategy sees of one segment: the leader, live candidates, window stats."""

    app: AppConfig
    segment: str
    incumbent: str
    arms: dict[str, Stats]
    live: list[str]
    now: float
    detail: Callable[[str], Stats]  # window stats with sketches, for latency quantiles

    @property
    def policy(self) -> Policy:
        return self.app.policy

    def stats(self, variant: str) -> Stats:
        return self.arms.get(variant) or Stats()


@dataclass
class Proposal:
    """A variant a strategy wants rolled out, with why."""

    variant: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    cost: float | None = None


@dataclass
class Elimination:
    """A variant that proved worse, with the evidence."""

    variant: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


def saving_probability(candidate: Stats, leader: Stats, min_saving: float) -> float:
    """Posterior probability that the candidate costs at least ``min_saving`` less per call.

    Costs per call vary with the tokens of each request: a saving measured on a few
    hundred calls can be noise, and a promotion must not rest on it.
    """
    c, l = candidate.cost_mean, leader.cost_mean
    vc, vl = candidate.cost_var, leader.cost_var
    if c is None or l is None or vc is None or vl is None:
        return 0.0
    keep = 1.0 - min_saving
    se = math.sqrt(vc / candidate.cost_n + keep * keep * vl / leader.cost_n)
    return 0.5 * math.erfc(-(keep * l - c) / max(se, 1e-12) / math.sqrt(2.0))


def _cost_saving(candidate: Stats, leader: Stats) -> float | None:
    c, l = candidate.cost_mean, leader.cost_mean
    if c is None or l is None or l <= 0:
        return None
    return 1.0 - c / l


class Strategy(ABC):
    """One documented base: ``explore`` shares traffic, ``propose`` picks, ``eliminate`` drops."""

    name = "base"

    @abstractmethod
    def explore(self, view: SegmentView, rng: np.random.Generator) -> dict[str, float]:
        """Shares of the segment's traffic for candidates (the leader gets the rest)."""

    @abstractmethod
    def propose(self, view: SegmentView) -> Proposal | None:
        """A variant to roll out now, or None."""

    def eliminate(self, view: SegmentView, *, constraints: bool = True) -> list[Elimination]:
        """Candidates that are clearly worse than the leader (or, with ``constraints``,
        that break a constraint: this needs latency quantiles, so callers ask less often)."""
        policy, leader = view.policy, view.stats(view.incumbent)
        out: list[Elimination] = []
        for variant in view.live:
            stats = view.stats(variant)
            quality = compare_quality(stats, leader, margin=policy.margin,
                                      confidence=ELIMINATE_CONFIDENCE,
                                      min_samples=min(ELIMINATE_MIN_SAMPLES, policy.min_samples))
            errors = compare_errors(stats, leader, margin=policy.error_margin,
                                    confidence=ELIMINATE_CONFIDENCE, min_samples=policy.min_samples)
            if quality.verdict != "inferior" and errors.verdict != "inferior" and (
                    not constraints or stats.calls < policy.min_samples):
                continue
            evidence = {"quality": quality.evidence(), "error_rate": errors.evidence()}
            if quality.verdict == "inferior":
                out.append(Elimination(variant, f"quality {_pts(quality.delta)} points against "
                                       f"{view.incumbent} (P={quality.p_inferior:.3f})", evidence))
            elif errors.verdict == "inferior":
                out.append(Elimination(variant, f"error rate {stats.error_rate:.3%} against "
                                       f"{leader.error_rate:.3%}", evidence))
            else:
                breaches = constraint_breaches(view.detail(variant), view.app.constraints,
                                               confidence=ELIMINATE_CONFIDENCE,
                                               min_samples=policy.min_samples)
                if breaches:
                    out.append(Elimination(variant, "; ".join(breaches), evidence))
        return out

    def _qualify(self, view: SegmentView, variant: str, *, confidence_scale: int = 1
                 ) -> tuple[str | None, dict[str, Any]]:
        """Why ``variant`` may replace the leader ('saving' or 'gain'), with evidence."""
        policy, leader, stats = view.policy, view.stats(view.incumbent), view.stats(variant)
        saving = _cost_saving(stats, leader)
        # Several candidates are looked at, again and again: a Bonferroni share of the
        # error rate keeps false promotions rare when every variant is the same.
        gain_confidence = 1.0 - (1.0 - policy.gain_confidence) / max(1, confidence_scale)
        quality = compare_quality(stats, leader, margin=policy.margin,
                                  confidence=policy.confidence, min_samples=policy.min_samples,
                                  min_gain=policy.min_gain, gain_confidence=gain_confidence)
        errors = compare_errors(stats, leader, margin=policy.error_margin,
                                confidence=policy.confidence, min_samples=policy.min_samples)
        if saving is None or errors.verdict != "non_inferior":
            return None, {}
        kind: str | None = None
        p_saving = saving_probability(stats, leader, policy.min_saving)
        if (saving >= policy.min_saving and p_saving >= policy.confidence
                and quality.verdict in ("non_inferior", "better")):
            kind = "saving"
        elif saving >= -0.02 and quality.verdict == "better":
            kind = "gain"
        if kind is None:
            return None, {}
        evidence: dict[str, Any] = {
            "quality": quality.evidence(), "error_rate": errors.evidence(),
            "candidate": stats.summary(), "leader": leader.summary(),
            "cost_saving": saving, "p_saving": p_saving,
        }
        detail = view.detail(variant)
        p95 = detail.quantile(0.95)
        evidence["latency_p95_ms"] = p95
        budget = view.app.constraints.p95_latency_ms
        if budget is not None and (detail.latency_n < policy.min_samples or p95 is None or p95 > budget):
            return None, evidence
        if constraint_breaches(detail, view.app.constraints, confidence=0.5,
                               min_samples=policy.min_samples):
            return None, evidence
        return kind, evidence


def _pts(delta: float | None) -> str:
    return "n/a" if delta is None else f"{100 * delta:+.1f}"


def thompson(view: SegmentView, rng: np.random.Generator, *, draws: int = DRAWS
             ) -> dict[str, float]:
    """Posterior probability that each variant (leader included) is the best choice.

    Best means: the cheapest variant whose sampled quality is within half the margin
    of the leader's, or a variant at the leader's cost whose sampled quality beats the
    leader's by ``min_gain``. Variants with no known cost count as free (optimism
    sends them a little traffic until their cost is known).
    """
    policy = view.policy
    ids = [view.incumbent, *view.live]
    leader = view.stats(view.incumbent)
    prior_mean = leader.quality_mean if leader.quality_mean is not None else 0.5
    leader_cost = leader.cost_mean
    mu = np.empty(len(ids))
    sd = np.empty(len(ids))
    cost = np.empty(len(ids))
    for i, variant in enumerate(ids):
        s = view.stats(variant)
        if s.quality_n:
            var = s.quality_var if s.quality_var is not None else 0.01
            var = max(var, 1e-4)
            precision = 1 / PRIOR_SD**2 + s.quality_n / var
            mu[i] = (prior_mean / PRIOR_SD**2 + s.quality_sum / var) / precision
            sd[i] = math.sqrt(1 / precision)
        else:
            mu[i], sd[i] = prior_mean, PRIOR_SD
        c = s.cost_mean if s.cost_n >= 3 else None
        cost[i] = 0.0 if c is None or not leader_cost else c / leader_cost
    cost[0] = 1.0 if leader_cost else 0.0
    q = rng.normal(mu, sd, size=(draws, len(ids)))
    cheaper = cost <= 1.0 - policy.min_saving
    same = (cost <= 1.02) & ~cheaper
    ok = np.where(cheaper, q >= q[:, :1] - policy.margin / 2,
                  np.where(same, q >= q[:, :1] + policy.min_gain, False))
    ok[:, 0] = True
    # Among acceptable variants the cheapest wins; quality only breaks near-ties.
    key = np.where(ok, cost - 0.1 * q, np.inf)
    key[:, 0] = 1.0 - 0.1 * q[:, 0] if leader_cost else -0.1 * q[:, 0]
    winners = np.bincount(np.argmin(key, axis=1), minlength=len(ids)) / draws
    return {variant: float(p) for variant, p in zip(ids, winners)}


def _shares(view: SegmentView, p_best: dict[str, float]) -> dict[str, float]:
    """Exploration shares: a floor per live candidate plus the rest by P(best)."""
    policy, live = view.policy, view.live
    if not live:
        return {}
    floor = min(policy.floor, policy.explore / len(live))
    chance = sum(p_best.get(v, 0.0) for v in live)
    total = min(policy.explore, max(floor * len(live), chance))
    extra = total - floor * len(live)
    shares = {v: floor for v in live}
    if chance > 0:
        # The traffic beyond the floors goes to the likeliest winner alone: with feedback
        # on a tenth of calls, spreading it over several near-equal candidates would keep
        # each of them short of a decision for hours.
        top = max(live, key=lambda v: p_best.get(v, 0.0))
        shares[top] += extra
    return shares


class ParetoStrategy(Strategy):
    """Cheapest non-inferior variant under the constraints; Thompson-sampling exploration.

    Example:
        >>> ParetoStrategy().name
        'pareto'
    """

    name = "pareto"

    def explore(self, view: SegmentView, rng: np.random.Generator) -> dict[str, float]:
        return _shares(view, thompson(view, rng))

    def propose(self, view: SegmentView) -> Proposal | None:
        savings: list[tuple[float, float, str, dict[str, Any]]] = []
        gains: list[tuple[float, str, dict[str, Any]]] = []
        for variant in view.live:
            kind, evidence = self._qualify(view, variant, confidence_scale=len(view.live))
            stats = view.stats(variant)
            if kind == "saving":
                savings.append((stats.cost_mean or 0.0, -(stats.quality_mean or 0.0), variant, evidence))
            elif kind == "gain":
                gains.append((-(stats.quality_mean or 0.0), variant, evidence))
        if savings:
            cost, _, variant, evidence = min(savings)
            return Proposal(variant, f"{100 * evidence['cost_saving']:.1f}% cheaper than "
                            f"{view.incumbent}, quality {_pts(evidence['quality']['delta'])} "
                            f"points (non-inferior at a {100 * view.policy.margin:g}-point margin)",
                            {**evidence, "qualified": len(savings)}, cost)
        if gains:
            _, variant, evidence = min(gains)
            return Proposal(variant, f"quality {_pts(evidence['quality']['delta'])} points over "
                            f"{view.incumbent} at the same cost", evidence,
                            view.stats(variant).cost_mean)
        return None


class BanditStrategy(Strategy):
    """Thompson sampling with a floor per arm; proposes an arm once it is surely best.

    Example:
        >>> BanditStrategy().name
        'bandit'
    """

    name = "bandit"

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def explore(self, view: SegmentView, rng: np.random.Generator) -> dict[str, float]:
        p_best = thompson(view, rng, draws=4 * DRAWS)
        self._last = p_best
        return _shares(view, p_best)

    def propose(self, view: SegmentView) -> Proposal | None:
        for variant, p in sorted(self._last.items(), key=lambda kv: -kv[1]):
            if variant == view.incumbent or variant not in view.live:
                continue
            if p < view.policy.confidence:
                return None
            kind, evidence = self._qualify(view, variant)
            if kind is not None:
                return Proposal(variant, f"best arm with posterior probability {p:.3f}",
                                {**evidence, "p_best": p}, view.stats(variant).cost_mean)
        return None


class ABStrategy(Strategy):
    """One challenger at a time, cheapest first, against the concurrent leader.

    Example:
        >>> ABStrategy().name
        'ab'
    """

    name = "ab"

    def _challenger(self, view: SegmentView) -> str | None:
        if not view.live:
            return None
        # Unknown cost first (to learn it), then cheapest known.
        return min(view.live, key=lambda v: (view.stats(v).cost_mean or 0.0, v))

    def explore(self, view: SegmentView, rng: np.random.Generator) -> dict[str, float]:
        challenger = self._challenger(view)
        return {} if challenger is None else {challenger: view.policy.explore}

    def propose(self, view: SegmentView) -> Proposal | None:
        challenger = self._challenger(view)
        if challenger is None:
            return None
        kind, evidence = self._qualify(view, challenger)
        if kind is None:
            return None
        return Proposal(challenger, f"A/B against {view.incumbent}: {kind}", evidence,
                        view.stats(challenger).cost_mean)


class ThresholdStrategy(Strategy):
    """Fixed rules: the cheapest variant whose measured metrics keep every constraint.

    Quality must stay above ``constraints.min_quality`` (or within the margin of the
    leader's mean when no minimum is set), the error rate within ``error_margin`` of
    the leader's, and p95 latency within its budget; all with ``min_samples``.

    Example:
        >>> ThresholdStrategy().name
        'threshold'
    """

    name = "threshold"

    def explore(self, view: SegmentView, rng: np.random.Generator) -> dict[str, float]:
        live = view.live
        if not live:
            return {}
        share = min(view.policy.floor, view.policy.explore / len(live))
        return {v: share for v in live}

    def propose(self, view: SegmentView) -> Proposal | None:
        policy, leader = view.policy, view.stats(view.incumbent)
        floor = view.app.constraints.min_quality
        if floor is None and leader.quality_mean is not None:
            floor = leader.quality_mean - policy.margin
        best: tuple[float, str, dict[str, Any]] | None = None
        for variant in view.live:
            stats = view.stats(variant)
            saving = _cost_saving(stats, leader)
            if (stats.quality_n < policy.min_samples or saving is None or saving < policy.min_saving
                    or floor is None or stats.quality_mean is None):
                continue
            if stats.quality_mean < floor or stats.error_rate > leader.error_rate + policy.error_margin:
                continue
            detail = view.detail(variant)
            if constraint_breaches(detail, view.app.constraints, confidence=0.5,
                                   min_samples=policy.min_samples):
                continue
            evidence = {"candidate": stats.summary(), "leader": leader.summary(),
                        "quality_floor": floor, "cost_saving": saving}
            if best is None or (stats.cost_mean or 0.0) < best[0]:
                best = (stats.cost_mean or 0.0, variant, evidence)
        if best is None:
            return None
        return Proposal(best[1], "cheapest variant inside the thresholds", best[2], best[0])


def make_strategy(name: str) -> Strategy:
    """The strategy a policy names."""
    strategies: dict[str, type[Strategy]] = {
        "pareto": ParetoStrategy, "bandit": BanditStrategy, "ab": ABStrategy,
        "threshold": ThresholdStrategy,
    }
    return strategies[name]()


def comparison_line(comparison: Comparison) -> str:
    """A short human line for a comparison (CLI output)."""
    return (f"{comparison.metric}: {comparison.verdict} (delta {comparison.delta}, "
            f"n={comparison.candidate_n}/{comparison.baseline_n})")
