"""The simulator: an application in a hidden world, the optimizer seeing only its events.

Every simulated tick the application draws requests, asks the optimizer's current
split where each goes (by its request attributes), serves them in the world, and
sends the call events, plus the delayed quality feedback now due, through the
collector API (``POST /api/v1/online/events`` on an in-process app over httpx's ASGI
transport), then lets the optimizer step. The clock is simulated: many hours take
seconds.

Baselines use the same requests and the same luck (common random numbers): premium
everywhere, the best single configuration, a random router at the optimizer's cost,
and an oracle that knows each request's difficulty and the hidden tables.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from scipy import stats as sps

from tunepilot.online._config import OnlineConfig
from tunepilot.online._optimizer import OnlineOptimizer
from tunepilot.online._world import DIFFICULTIES, World

__all__ = ["SeedResult", "simulate_seed", "simulate", "summarize"]

#: Unix time the simulated clock starts at (2026-01-01).
START = 1_767_225_600.0
APP = "sim"


@dataclass
class SeedResult:
    """What one seed of one world measured."""

    seed: int
    calls: int
    cost: dict[str, float]
    quality: dict[str, float]
    p99_latency_ms: dict[str, float]
    decisions: dict[str, int]
    rollbacks: int
    promotions: int
    completions: int
    gate_verdicts: dict[str, int]
    zero_traffic_gates: dict[str, int] = field(default_factory=dict)
    drift_rollback_intervals: list[float] | None = None
    drift_leaders: int = 0
    accepted: int = 0
    rejected: int = 0
    final_leaders: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0


class _Sender:
    """Sends event batches to the collector API in-process, or straight to ingest."""

    def __init__(self, optimizer: OnlineOptimizer, clock: Callable[[], float], *, api: bool) -> None:
        self.optimizer = optimizer
        self.api = api
        self.accepted = 0
        self.rejected = 0
        if api:
            from fastapi.testclient import TestClient

            from tunepilot.online._api import build_online_app
            from tunepilot.online._service import OnlineService

            self.service: Any = OnlineService(optimizer, clock=clock)
            self.client = TestClient(build_online_app(self.service))

    def send(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        if self.api:
            response = self.client.post("/api/v1/online/events", content=orjson.dumps(events),
                                        headers={"content-type": "application/json"})
            body = response.json()
            self.accepted += int(body.get("accepted", 0))
            self.rejected += len(body.get("rejected", []))
            if response.status_code not in (200, 422):
                raise RuntimeError(f"collector answered {response.status_code}: {body}")
        else:
            from tunepilot.online._events import Event

            self.optimizer.ingest([Event.model_validate(e) for e in events])
            self.accepted += len(events)

    def step(self, now: float) -> list[Any]:
        if self.api:
            return list(self.service.step(now))
        return self.optimizer.step(now)

    def close(self) -> None:
        if self.api:
            self.client.close()


def simulate_seed(world: World, seed: int, *, api: bool = True,
                  inspect: Callable[[OnlineOptimizer], None] | None = None) -> SeedResult:
    """Run one seed of ``world`` and measure the optimizer and the baselines."""
    import time as _time

    wall = _time.perf_counter()
    rng = np.random.default_rng(seed)
    route_rng = np.random.default_rng(seed + 1_000_003)
    app = world.app_config(APP)
    now = [START]
    optimizer = OnlineOptimizer(config=OnlineConfig(apps={APP: app}), clock=lambda: now[0], seed=seed)
    sender = _Sender(optimizer, lambda: now[0], api=api)
    ids = [c.id for c in world.configurations]
    index = {v: i for i, v in enumerate(ids)}
    premium = index[world.premium.id]
    fb = world.feedback
    pending: list[tuple[float, int, dict[str, Any]]] = []
    seq = 0
    records: dict[str, list[np.ndarray]] = {k: [] for k in (
        "diff", "tokens", "conf", "cost", "quality", "latency", "t", "oq", "olat", "ocost")}
    noise_keep: dict[str, list[np.ndarray]] = {k: [] for k in ("out", "q", "lat", "err")}
    decisions: list[Any] = []
    drift_changes = [c for c in world.changes if c.kind == "drift"]
    drift_at = START + 3600 * drift_changes[0].at_hours if drift_changes else None
    drift_leaders: dict[str, str] = {}
    zero = [(START + 3600 * c.at_hours, START + 3600 * (c.to_hours or c.at_hours))
            for c in world.changes if c.kind == "zero_traffic"]
    ticks = int(round(world.hours * 3600 / world.tick_s))
    for k in range(ticks):
        t0 = START + k * world.tick_s
        t_hours = k * world.tick_s / 3600
        quality_table, prices, shares, traffic = world.state(t_hours)
        n = int(rng.poisson(world.rate_per_s * world.tick_s)) if traffic else 0
        if drift_at is not None and not drift_leaders and t0 >= drift_at:
            drift_leaders = optimizer.leaders(APP)
            for seg, r in optimizer.rollouts(APP).items():
                if r.active:
                    drift_leaders[seg] = drift_leaders.get(seg, "") + "|" + r.candidate
        batch: list[dict[str, Any]] = []
        if n:
            diff = rng.choice(3, size=n, p=shares)
            a = world.arrays
            tokens = np.maximum(20, a["in_mean"][diff] + a["in_sd"][diff] * rng.standard_normal(n)).round()
            noise = {key: rng.standard_normal(n) for key in ("out", "q", "lat")}
            noise["err"] = rng.random(n)
            ts = t0 + np.sort(rng.random(n)) * world.tick_s
            gets_fb = rng.random(n) < fb.share
            delays = rng.exponential(fb.delay_mean_s, n) if fb.delay_mean_s > 0 else np.zeros(n)
            fb_noise = rng.standard_normal(n) * fb.noise_sd
            conf = np.empty(n, dtype=int)
            splits: dict[str, tuple[list[str], np.ndarray]] = {}
            segments = [app.segment({"prompt_length": int(x)}) for x in tokens]
            for i, seg in enumerate(segments):
                choice = splits.get(seg)
                if choice is None:
                    split = optimizer.split(APP, {"prompt_length": int(tokens[i])})
                    names = list(split)
                    choice = splits[seg] = (names, np.cumsum([split[v] for v in names]))
                names, cum = choice
                j = int(np.searchsorted(cum, route_rng.random() * cum[-1], side="right"))
                conf[i] = index[names[min(j, len(names) - 1)]]
            out = world.outcome(conf, diff, tokens, noise, quality_table, prices)
            for i in range(n):
                seq += 1
                event_id = f"{seed}-{seq}"
                event: dict[str, Any] = {
                    "app": APP, "variant": ids[conf[i]], "event_id": event_id,
                    "timestamp": float(ts[i]), "latency_ms": float(out["latency"][i]),
                    "input_tokens": int(tokens[i]), "output_tokens": int(out["out"][i]),
                    "cost": float(out["cost"][i]),
                    "attributes": {"prompt_length": int(tokens[i])},
                }
                if out["error"][i]:
                    event["error"] = "provider_error"
                batch.append(event)
                if gets_fb[i]:
                    observed = min(1.0, max(0.0, float(out["quality"][i] + fb_noise[i])))
                    due = float(ts[i] + delays[i])
                    heapq.heappush(pending, (due, seq, {
                        "app": APP, "variant": ids[conf[i]], "event_id": f"{event_id}-fb",
                        "timestamp": due, "quality": observed,
                        "attributes": {"feedback_for": event_id},
                    }))
            records["diff"].append(diff)
            records["tokens"].append(tokens)
            records["conf"].append(conf)
            records["t"].append(np.full(n, t_hours))
            for key in ("cost", "quality", "latency"):
                records[key].append(out[key])
            for key in noise_keep:
                noise_keep[key].append(noise[key])
        t1 = t0 + world.tick_s
        while pending and pending[0][0] < t1:
            batch.append(heapq.heappop(pending)[2])
        now[0] = t1
        # The app's batches reach the collector in any order; the windows file by time.
        route_rng.shuffle(batch)
        sender.send(batch)
        decisions.extend(sender.step(t1))
    sender.close()
    if inspect is not None:
        inspect(optimizer)
    result = _measure(world, seed, records, noise_keep, decisions, premium, zero, drift_at,
                      drift_leaders, app.policy.gate_interval_s)
    result.accepted, result.rejected = sender.accepted, sender.rejected
    result.final_leaders = optimizer.leaders(APP)
    result.wall_s = _time.perf_counter() - wall
    return result


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.array([])


def _measure(world: World, seed: int, records: dict[str, list[np.ndarray]],
             noise_parts: dict[str, list[np.ndarray]], decisions: Sequence[Any], premium: int,
             zero: list[tuple[float, float]], drift_at: float | None,
             drift_leaders: dict[str, str], gate_interval: float) -> SeedResult:
    diff, tokens, conf, t = (_cat(records[k]) for k in ("diff", "tokens", "conf", "t"))
    diff, conf = diff.astype(int), conf.astype(int)
    noise = {k: _cat(v) for k, v in noise_parts.items()}
    served = {k: _cat(records[k]) for k in ("cost", "quality", "latency")}
    n = len(diff)
    # Phases: the world's state is piecewise constant between its changes.
    bounds = sorted({0.0, *[c.at_hours for c in world.changes], *[c.to_hours for c in world.changes if c.to_hours]})
    phase = np.searchsorted(np.array(bounds), t, side="right") - 1
    baseline_conf: dict[str, np.ndarray] = {"premium": np.full(n, premium)}
    tables_by_phase = []
    for p, start in enumerate(bounds):
        quality_table, prices, _, _ = world.state(start)
        tables_by_phase.append(world.tables(quality_table, prices))
    # Oracle: per difficulty and phase, the cheapest configuration within the tolerance of
    # premium's quality and inside the latency budget.
    constraints = world.app.get("constraints")
    budget = constraints.get("p95_latency_ms") if isinstance(constraints, dict) else None
    oracle = np.empty(n, dtype=int)
    for p, tables in enumerate(tables_by_phase):
        for d in range(3):
            ok = tables["quality"][:, d] >= tables["quality"][premium, d] - world.oracle_tolerance
            if budget is not None:
                ok &= tables["p95"][:, d] <= float(budget)
            ok[premium] = True
            choice = int(np.argmin(np.where(ok, tables["cost"][:, d], np.inf)))
            oracle[(phase == p) & (diff == d)] = choice
    baseline_conf["oracle"] = oracle
    # Best single configuration over the run's actual requests.
    exp_q = np.zeros(len(world.configurations))
    exp_c = np.zeros(len(world.configurations))
    for p, tables in enumerate(tables_by_phase):
        for d in range(3):
            count = int(np.sum((phase == p) & (diff == d)))
            exp_q += count * tables["quality"][:, d]
            exp_c += count * tables["cost"][:, d]
    ok = exp_q >= exp_q[premium] - world.oracle_tolerance * max(n, 1)
    best_single = int(np.argmin(np.where(ok, exp_c, np.inf)))
    baseline_conf["best_single"] = np.full(n, best_single)
    cheapest = int(np.argmin(exp_c))
    outcomes: dict[str, dict[str, np.ndarray]] = {}
    for name, confs in baseline_conf.items():
        outcomes[name] = _serve(world, confs, diff, tokens, noise, phase, bounds)
    # Random router at the optimizer's cost: premium with probability p, else the cheapest.
    c_opt, c_prem = served["cost"].sum(), outcomes["premium"]["cost"].sum()
    c_cheap = _serve(world, np.full(n, cheapest), diff, tokens, noise, phase, bounds)["cost"].sum()
    share = 0.0 if c_prem <= c_cheap else min(1.0, max(0.0, (c_opt - c_cheap) / (c_prem - c_cheap)))
    pick = np.random.default_rng(seed + 7).random(n) < share
    outcomes["random_matched"] = _serve(world, np.where(pick, premium, cheapest), diff, tokens, noise, phase, bounds)
    outcomes["optimizer"] = served
    kinds: dict[str, int] = {}
    verdicts: dict[str, int] = {}
    zero_gates: dict[str, int] = {"pass": 0, "fail": 0, "inconclusive": 0}
    rollback_times: list[float] = []
    for d in decisions:
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
        if d.kind == "gate" and d.verdict:
            verdicts[d.verdict] = verdicts.get(d.verdict, 0) + 1
            # A gate at the very instant traffic stops judges the traffic before it.
            if any(a < d.time < b for a, b in zero):
                zero_gates[d.verdict] += 1
        if d.kind == "rollback" and drift_at is not None and d.time >= drift_at:
            rollback_times.append(d.time)
    drift_intervals: list[float] | None = None
    drifted_leaders = 0
    if drift_at is not None:
        drifted = {c.model for c in world.changes if c.kind == "drift"}
        drift_intervals = []
        for seg, leader in drift_leaders.items():
            models = {v.split("-t")[0] for v in leader.strip("|").split("|") if v}
            if not models & drifted:
                continue
            drifted_leaders += 1
            later = [d.time for d in decisions if d.kind == "rollback" and d.segment == seg
                     and d.time >= drift_at]
            drift_intervals.append((min(later) - drift_at) / gate_interval if later else math.inf)
    return SeedResult(
        seed=seed, calls=n,
        cost={k: float(v["cost"].sum()) for k, v in outcomes.items()},
        quality={k: float(v["quality"].mean()) if n else 0.0 for k, v in outcomes.items()},
        p99_latency_ms={k: float(np.quantile(v["latency"], 0.99)) if n else 0.0 for k, v in outcomes.items()},
        decisions=kinds, rollbacks=kinds.get("rollback", 0), promotions=kinds.get("promote", 0),
        completions=kinds.get("complete", 0), gate_verdicts=verdicts, zero_traffic_gates=zero_gates,
        drift_rollback_intervals=drift_intervals, drift_leaders=drifted_leaders,
    )


def _serve(world: World, confs: np.ndarray, diff: np.ndarray, tokens: np.ndarray,
           noise: dict[str, np.ndarray], phase: np.ndarray, bounds: list[float]) -> dict[str, np.ndarray]:
    out = {k: np.empty(len(diff)) for k in ("cost", "quality", "latency")}
    for p, start in enumerate(bounds):
        mask = phase == p
        if not mask.any():
            continue
        quality_table, prices, _, _ = world.state(start)
        o = world.outcome(confs[mask], diff[mask], tokens[mask],
                          {k: v[mask] for k, v in noise.items()}, quality_table, prices)
        for k in out:
            out[k][mask] = o[k]
    return out


def summarize(world: World, results: Sequence[SeedResult]) -> dict[str, Any]:
    """The benchmark summary over seeds (the ``--json`` output): JSON, with ``None`` for
    what the seeds cannot tell (a confidence bound from one seed)."""
    seeds = [r.seed for r in results]
    reduction = np.array([1 - r.cost["optimizer"] / r.cost["premium"] for r in results])
    oracle = np.array([1 - r.cost["oracle"] / r.cost["premium"] for r in results])
    single = np.array([1 - r.cost["best_single"] / r.cost["premium"] for r in results])
    dq = np.array([100 * (r.quality["optimizer"] - r.quality["premium"]) for r in results])
    k = len(results)
    lower = float(dq.mean() - sps.t.ppf(0.95, k - 1) * dq.std(ddof=1) / math.sqrt(k)) if k > 1 else None
    budget = world.p99_latency_budget_ms
    drift_all = [x for r in results for x in (r.drift_rollback_intervals or [])]
    summary: dict[str, Any] = {
        "world": world.name,
        "seeds": seeds,
        "cost_reduction": float(reduction.mean()),
        "cost_reduction_per_seed": reduction.round(4).tolist(),
        "oracle_reduction": float(oracle.mean()),
        "oracle_capture": float(reduction.mean() / oracle.mean()) if oracle.mean() > 0 else None,
        "best_single_reduction": float(single.mean()),
        "quality_delta_points": float(dq.mean()),
        "quality_delta_lower95": lower,
        "quality_delta_points_by_baseline": {
            name: float(np.mean([100 * (r.quality[name] - r.quality["premium"]) for r in results]))
            for name in results[0].quality} if results else {},
        "cost_reduction_by_baseline": {
            name: float(np.mean([1 - r.cost[name] / r.cost["premium"] for r in results]))
            for name in results[0].cost} if results else {},
        "p99_latency_ms": max((r.p99_latency_ms["optimizer"] for r in results), default=0.0),
        "p99_latency_budget_ms": budget,
        "p99_latency_within_budget": all(r.p99_latency_ms["optimizer"] <= budget for r in results),
        "rollbacks": int(sum(r.rollbacks for r in results)),
        "rollbacks_per_seed": [r.rollbacks for r in results],
        "promotions_per_seed": [r.promotions for r in results],
        "completions_per_seed": [r.completions for r in results],
        "seeds_with_promotion": sum(1 for r in results if r.promotions),
        "seeds_with_completion": sum(1 for r in results if r.completions),
        "gate_verdicts": {v: sum(r.gate_verdicts.get(v, 0) for r in results)
                          for v in ("pass", "fail", "inconclusive")},
        "zero_traffic_gates": {v: sum(r.zero_traffic_gates.get(v, 0) for r in results)
                               for v in ("pass", "fail", "inconclusive")},
        "drift_rollback_intervals": [None if math.isinf(x) else round(x, 2) for x in drift_all],
        "drift_rollback_within_3": (all(x <= 3 for x in drift_all) if drift_all else None),
        "drift_leaders": sum(r.drift_leaders for r in results),
        "events_accepted": int(sum(r.accepted for r in results)),
        "events_rejected": int(sum(r.rejected for r in results)),
        "calls": int(sum(r.calls for r in results)),
        "wall_s": float(sum(r.wall_s for r in results)),
    }
    return summary


def simulate(world: World, seeds: Sequence[int], *, api: bool = True,
             progress: Callable[[SeedResult], None] | None = None) -> tuple[dict[str, Any], list[SeedResult]]:
    """Run ``world`` for every seed; returns the summary and the per-seed results."""
    results = []
    for seed in seeds:
        result = simulate_seed(world, seed, api=api)
        results.append(result)
        if progress is not None:
            progress(result)
    return summarize(world, results), results
