"""The online optimizer: events in; windows, analyzers, strategies and canary gates; splits out.

Each application's traffic is cut into segments by its context fields (one segment
``"*"`` without context). Per segment there is a leader (at first the baseline), a
set of candidates being explored, and at most one rollout. Every ``step``:

1. a running rollout is judged when its gate is due (pass, fail, inconclusive);
2. a leader other than the baseline is guarded against the baseline's holdback
   traffic (quality, errors, constraints) and watched for drift and anomalies;
3. the strategy drops clearly worse candidates, proposes a change (which starts a
   rollout, or restarts one when it beats the running candidate) and shares the
   exploration traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tunepilot.exceptions import ConflictError, NotFoundError
from tunepilot.online._analyzers import (
    compare_errors,
    compare_quality,
    constraint_breaches,
    drift,
    robust_z,
)
from tunepilot.online._appstate import MAX_DECISIONS, AppState, SegmentState
from tunepilot.online._config import AppConfig, OnlineConfig
from tunepilot.online._decisions import Decision, DecisionKind, GateResult, Rollout
from tunepilot.online._events import Event
from tunepilot.online._rollout import judge
from tunepilot.online._state import StateStore
from tunepilot.online._strategies import SegmentView, make_strategy
from tunepilot.online._tuning import Tuner

__all__ = ["OnlineOptimizer"]

#: Call events remembered per app so that late feedback finds its call's segment and time.
MAX_ORIGINS = 200_000


class OnlineOptimizer:
    """Feedback from live LLM calls in; canary-guarded configuration changes out.

    Args:
        config: model prices and applications.
        clock: the time source (unix seconds); the simulator passes a simulated clock.
        seed: seeds exploration draws and tuning studies.
        state: where apps, decisions and rollouts are stored; their state is loaded
            from it on start, so a restart loses none of them.

    Example:
        >>> from tunepilot.online import AppConfig, Event, OnlineConfig, OnlineOptimizer, Variant
        >>> app = AppConfig(name="bot", baseline="big", variants=[
        ...     Variant(id="big", model="big"), Variant(id="small", model="small")])
        >>> opt = OnlineOptimizer(config=OnlineConfig(apps={"bot": app}), clock=lambda: 100.0, seed=0)
        >>> opt.ingest([Event(app="bot", variant="big", event_id="e1", timestamp=99.0,
        ...                   latency_ms=300.0, cost=0.002, quality=0.9)])
        >>> sum(opt.split("bot").values())
        1.0
    """

    def __init__(self, *, config: OnlineConfig, clock: Callable[[], float] = time.time,
                 seed: int | None = None, state: StateStore | None = None) -> None:
        self.config = config
        self.clock = clock
        self.seed = seed
        self.state = state
        self._rng = np.random.default_rng(seed)
        self._apps: dict[str, AppState] = {}
        self.unknown_app = 0
        stored: dict[str, tuple[AppConfig, dict[str, Any]]] = {}
        if state is not None:
            stored = {cfg.name: (cfg, data) for cfg, data in state.load_apps()}
        for name, app in config.apps.items():
            if name not in stored:
                self._install(app, persist=True)
        for name, (app, data) in stored.items():
            entry = self._install(config.apps.get(name, app), persist=False)
            self._restore(entry, data)

    # -- apps -----------------------------------------------------------------

    def _install(self, config: AppConfig, *, persist: bool) -> AppState:
        entry = AppState(config)
        if config.policy.tune:
            entry.tuner = Tuner(config, seed=self.seed)
        self._apps[config.name] = entry
        if persist:
            self._save(entry)
        return entry

    def _restore(self, entry: AppState, data: dict[str, Any]) -> None:
        entry.paused = bool(data.get("paused", False))
        entry.seq = int(data.get("seq", 0))
        for name, seg_data in data.get("segments", {}).items():
            if seg_data.get("incumbent") in entry.variant_ids:
                entry.segment(name).load(seg_data)
        if self.state is not None:
            entry.decisions.extend(reversed(self.state.load_decisions(entry.config.name,
                                                                      limit=MAX_DECISIONS)))
        self._resplit(entry)

    def _save(self, entry: AppState) -> None:
        if self.state is None:
            return
        self.state.save_app(entry.config, {
            "paused": entry.paused, "seq": entry.seq,
            "segments": {name: seg.to_json() for name, seg in entry.segments.items()},
        })

    def _app(self, app: str) -> AppState:
        entry = self._apps.get(app)
        if entry is None:
            raise NotFoundError(f"no online app named {app!r}; known apps: "
                                f"{', '.join(sorted(self._apps)) or 'none'} (add it with add_app)")
        return entry

    def apps(self) -> list[str]:
        """Names of every application, sorted."""
        return sorted(self._apps)

    def app_config(self, app: str) -> AppConfig:
        """The configuration of ``app`` (variants created by tuning included)."""
        return self._app(app).config

    def add_app(self, app: AppConfig) -> None:
        """Add an application, or replace the config of an existing one (its state stays).

        Raises:
            ConflictError: a variant that leads a segment or takes part in a rollout would
                disappear (reason ``variant_in_use``).
        """
        entry = self._apps.get(app.name)
        if entry is None:
            self._install(app, persist=True)
            return
        ids = {v.id for v in app.variants}
        for name, seg in entry.segments.items():
            used = {seg.incumbent} | ({seg.rollout.candidate} if seg.rollout and seg.rollout.active else set())
            missing = used - ids
            if missing:
                raise ConflictError(f"variant {', '.join(sorted(missing))} is in use in segment "
                                    f"{name!r}; abort its rollout or keep the variant",
                                    reason="variant_in_use")
        entry.config = app
        entry.variant_ids = ids
        for seg in entry.segments.values():
            seg.strategy = make_strategy(app.policy.strategy)
        self._resplit(entry)
        self._save(entry)

    def remove_app(self, app: str) -> None:
        """Delete an application with its state and decisions, here and in the state store.

        Its events are refused (``unknown_app``) from then on, and its name can be
        used again for a new application.

        Raises:
            NotFoundError: no such application.
            ConflictError: a rollout is running or paused (reason ``rollout_active``:
                abort it first), or the app is declared in the config file the
                optimizer started from (reason ``declared_in_config``: it would come
                back at the next start).
        """
        entry = self._app(app)
        if app in self.config.apps:
            raise ConflictError(f"application {app!r} is declared in the online config file; "
                                "remove it there and restart instead", reason="declared_in_config")
        active = sorted(name for name, seg in entry.segments.items()
                        if seg.rollout is not None and seg.rollout.active)
        if active:
            raise ConflictError(f"application {app!r} has a rollout in segment "
                                f"{', '.join(repr(n) for n in active)}; abort it first",
                                reason="rollout_active")
        if self.state is not None:
            self.state.delete_app(app)
        del self._apps[app]

    # -- events ---------------------------------------------------------------

    def ingest(self, events: Sequence[Event]) -> None:
        """File events into their windows (out of order is fine; O(batch))."""
        for event in events:
            entry = self._apps.get(event.app)
            if entry is None:
                self.unknown_app += 1
                continue
            if event.variant not in entry.variant_ids:
                entry.unknown_variant += 1
                continue
            quality = event.quality
            if quality is None and event.feedback is not None:
                quality = (event.feedback + 1) / 2
            target = event.attributes.get("feedback_for")
            if target is not None:
                origin = entry.origins.get(str(target))
                if origin is None:
                    entry.orphan_feedback += 1
                    origin = (entry.config.segment(event.attributes), event.timestamp)
                if quality is not None:
                    entry.windows.add_quality(origin[0], event.variant, origin[1], quality)
                continue
            segment = entry.config.segment(event.attributes)
            if segment not in entry.segments:
                seg = entry.segment(segment)
                seg.split = dict(entry.segments.get("*", seg).split) if segment != "*" else seg.split
            cost = event.cost
            if cost is None and event.input_tokens is not None and event.output_tokens is not None:
                price = self.config.price(entry.config, entry.config.variant(event.variant).model)
                if price is not None:
                    cost = price.cost(event.input_tokens, event.output_tokens)
            entry.windows.add_call(segment, event.variant, event.timestamp,
                                   latency_ms=event.latency_ms, cost=cost,
                                   error=event.error is not None,
                                   input_tokens=event.input_tokens,
                                   output_tokens=event.output_tokens)
            if quality is not None:
                entry.windows.add_quality(segment, event.variant, event.timestamp, quality)
            key = (segment, event.variant)
            if event.timestamp > entry.last_call.get(key, float("-inf")):
                entry.last_call[key] = event.timestamp
            origins = entry.origins
            origins[event.event_id] = (segment, event.timestamp)
            if len(origins) > MAX_ORIGINS:
                origins.popitem(last=False)

    # -- reading ----------------------------------------------------------------

    def split(self, app: str, attributes: dict[str, Any] | None = None) -> dict[str, float]:
        """Current traffic shares per variant id (sum 1.0).

        Without ``attributes`` the shares are the traffic-weighted mix over segments; with
        them, the shares of the segment those request attributes fall in.
        """
        entry = self._app(app)
        if attributes is None or not entry.config.context:
            return entry.split
        seg = entry.segments.get(entry.config.segment(attributes))
        return seg.split if seg is not None else {entry.config.baseline: 1.0}

    def decisions(self, app: str, *, limit: int = 100) -> list[Decision]:
        """The newest decisions of ``app``, newest first, each with its evidence."""
        entry = self._app(app)
        return list(reversed(entry.decisions))[:max(0, limit)]

    def rollout(self, app: str, segment: str | None = None) -> Rollout | None:
        """The active rollout of ``app`` (of ``segment`` if given), else its latest one."""
        entry = self._app(app)
        rollouts = [s.rollout for name, s in entry.segments.items()
                    if s.rollout is not None and (segment is None or name == segment)]
        if not rollouts:
            return None
        active = [r for r in rollouts if r.active]
        return max(active or rollouts, key=lambda r: r.updated_at)

    def rollouts(self, app: str) -> dict[str, Rollout]:
        """The latest rollout of every segment of ``app`` that had one."""
        entry = self._app(app)
        return {name: s.rollout for name, s in entry.segments.items() if s.rollout is not None}

    def leaders(self, app: str) -> dict[str, str]:
        """The leading variant of every segment of ``app``."""
        return {name: s.incumbent for name, s in self._app(app).segments.items()}

    def stats(self, app: str) -> dict[str, Any]:
        """Per segment and variant window statistics, plus counts of events not used."""
        entry = self._app(app)
        out: dict[str, Any] = {"unknown_variant": entry.unknown_variant,
                               "orphan_feedback": entry.orphan_feedback,
                               "too_old": entry.windows.dropped, "paused": entry.paused,
                               "segments": {}}
        for segment, variant in entry.windows.keys():
            out["segments"].setdefault(segment, {})[variant] = entry.windows.counters(
                segment, variant).summary()
        return out

    # -- manual control ---------------------------------------------------------

    def pause(self, app: str) -> None:
        """Hold every rollout of ``app`` where it is and stop new changes."""
        entry = self._app(app)
        if entry.paused:
            return
        entry.paused = True
        now = self.clock()
        for name, seg in entry.segments.items():
            if seg.rollout is not None and seg.rollout.state == "running":
                seg.rollout.state = "paused"
                seg.rollout.updated_at = now
        self._record(entry, "*", "pause", now, reason="paused by a user")
        self._save(entry)

    def resume(self, app: str) -> None:
        """Resume ``app``; each paused rollout restarts the analysis of its current step."""
        entry = self._app(app)
        if not entry.paused:
            return
        entry.paused = False
        now = self.clock()
        for seg in entry.segments.values():
            if seg.rollout is not None and seg.rollout.state == "paused":
                seg.rollout.state = "running"
                seg.rollout.step_started_at = now
                seg.rollout.last_gate_at = None
                seg.rollout.updated_at = now
        self._record(entry, "*", "resume", now, reason="resumed by a user")
        self._save(entry)

    def abort(self, app: str) -> None:
        """Abort every active rollout of ``app``: all traffic goes back to the leaders."""
        entry = self._app(app)
        now = self.clock()
        for name, seg in entry.segments.items():
            rollout = seg.rollout
            if rollout is not None and rollout.active:
                rollout.state = "aborted"
                rollout.updated_at = now
                rollout.reason = "aborted by a user"
                self._record(entry, name, "abort", now, variant=rollout.candidate,
                             baseline=rollout.baseline, reason="aborted by a user")
        self._resplit(entry)
        self._save(entry)

    # -- the loop -----------------------------------------------------------------

    def step(self, now: float | None = None) -> list[Decision]:
        """Run analyzers, strategies and rollout gates; returns the new decisions."""
        now = self.clock() if now is None else now
        made: list[Decision] = []
        for entry in self._apps.values():
            seq_before = entry.seq
            entry.windows.advance(now)
            if not entry.paused:
                if entry.tuner is not None:
                    self._tune(entry, now)
                for name in list(entry.segments):
                    self._step_segment(entry, name, entry.segments[name], now)
            self._resplit(entry)
            if entry.seq != seq_before:
                new = [d for d in entry.decisions if int(d.id.rsplit("-", 1)[1]) > seq_before]
                made.extend(new)
                if self.state is not None:
                    self.state.add_decisions(new)
                self._save(entry)
        return made

    def _record(self, entry: AppState, segment: str, kind: DecisionKind, now: float, *,
                variant: str | None = None, baseline: str | None = None,
                verdict: Any = None, reason: str = "",
                evidence: dict[str, Any] | None = None) -> Decision:
        entry.seq += 1
        decision = Decision(id=f"{entry.config.name}-{entry.seq}", app=entry.config.name,
                            segment=segment, kind=kind, time=now, variant=variant,
                            baseline=baseline, verdict=verdict, reason=reason,
                            evidence=evidence or {})
        entry.decisions.append(decision)
        if self.state is not None and kind in ("pause", "resume", "abort"):
            self.state.add_decisions([decision])
        return decision

    def _view(self, entry: AppState, name: str, seg: SegmentState, now: float) -> SegmentView:
        windows = entry.windows
        arms = {v.id: windows.counters(name, v.id) for v in entry.config.variants}
        excluded = {seg.incumbent}
        if seg.rollout is not None and seg.rollout.active:
            excluded.add(seg.rollout.candidate)
        live = [v.id for v in entry.config.variants
                if v.id not in excluded and seg.eliminated.get(v.id, -1.0) <= now]
        leader_cost = arms[seg.incumbent].cost_mean
        if leader_cost is not None:
            # Variants known to cost more than the leader cannot win; they leave
            # exploration until their cost data ages out of the window.
            live = [v for v in live if arms[v].cost_n < 3 or (arms[v].cost_mean or 0.0) <= 1.02 * leader_cost]
        return SegmentView(entry.config, name, seg.incumbent, arms, live, now,
                           detail=lambda variant: windows.window(name, variant))

    def _step_segment(self, entry: AppState, name: str, seg: SegmentState, now: float) -> None:
        policy = entry.config.policy
        rollout = seg.rollout
        if rollout is not None and rollout.state == "running":
            due = (rollout.last_gate_at or rollout.step_started_at) + policy.gate_interval_s
            if now >= due:
                self._gate(entry, name, seg, rollout, now)
        elif seg.incumbent != entry.config.baseline:
            if seg.last_guard is None or now >= seg.last_guard + policy.gate_interval_s:
                seg.last_guard = now
                self._guard(entry, name, seg, now)
        view = self._view(entry, name, seg, now)
        check = seg.last_constraints is None or now >= seg.last_constraints + policy.gate_interval_s
        if check:
            seg.last_constraints = now
        for elimination in seg.strategy.eliminate(view, constraints=check):
            seg.eliminated[elimination.variant] = now + policy.cooldown_s
            self._record(entry, name, "eliminate", now, variant=elimination.variant,
                         baseline=seg.incumbent, reason=elimination.reason,
                         evidence=elimination.evidence)
        view = self._view(entry, name, seg, now)
        rollout = seg.rollout
        active = rollout is not None and rollout.active
        proposal = seg.strategy.propose(view)
        if proposal is not None:
            if active:
                assert rollout is not None
                current = view.stats(rollout.candidate).cost_mean
                better = (current is not None and proposal.cost is not None
                          and proposal.cost <= current * (1 - policy.min_saving))
                if rollout.state == "running" and better:
                    self._start_rollout(entry, name, seg, proposal.variant, now,
                                        reason=f"{proposal.reason}; replaces the rollout of "
                                        f"{rollout.candidate}, whose analysis restarts",
                                        evidence=proposal.evidence)
            else:
                self._start_rollout(entry, name, seg, proposal.variant, now,
                                    reason=proposal.reason, evidence=proposal.evidence)
        rollout = seg.rollout
        if rollout is not None and rollout.active:
            seg.explore = {}  # a clean comparison while a change is on its way
        else:
            seg.explore = seg.strategy.explore(view, self._rng)

    def _start_rollout(self, entry: AppState, name: str, seg: SegmentState, variant: str, now: float,
                       *, reason: str, evidence: dict[str, Any]) -> None:
        decision = self._record(entry, name, "promote", now, variant=variant,
                                baseline=seg.incumbent, reason=reason, evidence=evidence)
        seg.rollout = Rollout(app=entry.config.name, segment=name, candidate=variant,
                              baseline=seg.incumbent, steps=list(entry.config.policy.canary_steps),
                              started_at=now, step_started_at=now, updated_at=now,
                              decision_id=decision.id, reason=reason)

    def _gate(self, entry: AppState, name: str, seg: SegmentState, rollout: Rollout, now: float) -> None:
        windows, policy = entry.windows, entry.config.policy
        candidate = windows.window(name, rollout.candidate)
        baseline = windows.window(name, rollout.baseline)
        step_calls = windows.span(name, rollout.candidate, rollout.step_started_at + windows.bucket_s,
                                  now).calls
        result = judge(rollout, entry.config, candidate=candidate, baseline=baseline,
                       step_calls=step_calls,
                       quiet_s=now - entry.last_call.get((name, rollout.candidate), float("-inf")),
                       step_s=now - rollout.step_started_at)
        decision = self._record(entry, name, "gate", now, variant=rollout.candidate,
                                baseline=rollout.baseline, verdict=result.verdict,
                                reason=result.reason, evidence=result.evidence)
        rollout.gates.append(GateResult(time=now, step=rollout.step, fraction=rollout.fraction,
                                        verdict=result.verdict, reason=result.reason,
                                        decision_id=decision.id))
        rollout.last_gate_at = now
        rollout.updated_at = now
        if result.verdict == "pass":
            rollout.inconclusive_in_row = 0
            rollout.step += 1
            rollout.step_started_at = now
            if rollout.step >= len(rollout.steps) - 1:
                rollout.state = "completed"
                seg.history.append(seg.incumbent)
                seg.incumbent = rollout.candidate
                seg.last_guard = now
                seg.reference = list(candidate.values)
                self._record(entry, name, "complete", now, variant=rollout.candidate,
                             baseline=rollout.baseline,
                             reason=f"{rollout.candidate} leads segment {name}",
                             evidence={"gates": len(rollout.gates)})
        elif result.verdict == "fail":
            self._roll_back(entry, name, seg, now, result.reason, result.evidence)
        else:
            rollout.inconclusive_in_row += 1
            if rollout.inconclusive_in_row >= policy.max_hold_gates:
                self._roll_back(entry, name, seg, now,
                                f"no decision after {rollout.inconclusive_in_row} inconclusive gates",
                                result.evidence)

    def _roll_back(self, entry: AppState, name: str, seg: SegmentState, now: float, reason: str,
                   evidence: dict[str, Any]) -> None:
        policy = entry.config.policy
        rollout = seg.rollout
        if rollout is not None and rollout.active:
            failed, back_to = rollout.candidate, rollout.baseline
            rollout.state = "rolled_back"
            rollout.updated_at = now
            rollout.reason = reason
        else:
            failed, back_to = seg.incumbent, entry.config.baseline
            seg.incumbent = back_to
            seg.reference = []
        seg.eliminated[failed] = now + policy.cooldown_s
        self._record(entry, name, "rollback", now, variant=failed, baseline=back_to,
                     verdict="fail", reason=reason, evidence=evidence)

    def _guard(self, entry: AppState, name: str, seg: SegmentState, now: float) -> None:
        """Check a leader that is not the baseline against the baseline's holdback."""
        windows, policy, app = entry.windows, entry.config.policy, entry.config
        leader, baseline = seg.incumbent, app.baseline
        recent = windows.span(name, leader, now - policy.gate_interval_s, now)
        reference = windows.window(name, baseline)
        # Checked every gate interval for as long as the leader leads: a strict level keeps
        # repeated looks from rolling back a good leader on noise.
        quality = compare_quality(recent, reference, margin=policy.margin,
                                  confidence=policy.guard_confidence, min_samples=policy.min_samples)
        errors = compare_errors(recent, reference, margin=policy.error_margin,
                                confidence=policy.guard_confidence, min_samples=policy.min_samples)
        breaches = constraint_breaches(windows.window(name, leader), app.constraints,
                                       confidence=policy.confidence, min_samples=policy.min_samples)
        evidence: dict[str, Any] = {"quality": quality.evidence(), "error_rate": errors.evidence(),
                                    "breaches": breaches, "leader": recent.summary(),
                                    "baseline": reference.summary()}
        report = drift(seg.reference, recent.values, alpha=policy.drift_alpha,
                       psi_threshold=policy.psi_threshold, min_samples=policy.min_samples)
        evidence["drift"] = report.evidence()
        if report.drifted and (seg.last_drift is None or now >= seg.last_drift + policy.window_s):
            seg.last_drift = now
            self._record(entry, name, "drift", now, variant=leader,
                         reason=f"quality distribution of {leader} moved (KS p="
                         f"{report.ks_pvalue:.2g}, PSI={report.psi:.3f})", evidence=report.evidence())
        if breaches or quality.verdict == "inferior" or errors.verdict == "inferior":
            what = ("; ".join(breaches) if breaches else
                    f"quality {100 * (quality.delta or 0):+.1f} points against the baseline"
                    if quality.verdict == "inferior" else "error rate above the baseline's")
            self._roll_back(entry, name, seg, now, f"leader {leader} failed its guard: {what}", evidence)
            return
        self._anomaly(entry, name, seg, now)

    def _anomaly(self, entry: AppState, name: str, seg: SegmentState, now: float) -> None:
        policy = entry.config.policy
        if seg.last_anomaly is not None and now < seg.last_anomaly + policy.window_s:
            return
        series = entry.windows.series(name, seg.incumbent, now - policy.window_s, now)
        rates = [s.error_rate for _, s in series if s.calls >= 20]
        if len(rates) < 6:
            return
        z = robust_z(rates[:-1], rates[-1])
        if abs(z) >= policy.anomaly_z:
            seg.last_anomaly = now
            self._record(entry, name, "anomaly", now, variant=seg.incumbent,
                         reason=f"error rate {rates[-1]:.2%} against a median of "
                         f"{float(np.median(rates[:-1])):.2%} (robust z {z:.1f})",
                         evidence={"metric": "error_rate", "robust_z": z, "value": rates[-1],
                                   "history": rates[:-1]})

    def _tune(self, entry: AppState, now: float) -> None:
        tuner = entry.tuner
        assert tuner is not None
        seg = entry.segment("*") if not entry.config.context else None
        leader = seg.incumbent if seg is not None else entry.config.baseline
        stats = {v: entry.windows.counters("*", v) for v in entry.variant_ids} if seg else {}
        tuner.tell_ready(stats, leader)
        variant = tuner.ask(entry.config.variant(leader))
        if variant is None:
            return
        entry.config = entry.config.model_copy(update={"variants": [*entry.config.variants, variant]})
        entry.variant_ids.add(variant.id)
        self._record(entry, "*", "tune", now, variant=variant.id, baseline=leader,
                     reason="tuning study proposes a new variant",
                     evidence={"params": tuner.params(variant.id), "trial": tuner.trial_number(variant.id)})
        self._save(entry)

    def _resplit(self, entry: AppState) -> None:
        app = entry.config
        holdback = app.policy.holdback
        weights_total: dict[str, float] = {}
        traffic = 0.0
        for name, seg in entry.segments.items():
            weights: dict[str, float] = {}
            hold = holdback if seg.incumbent != app.baseline else 0.0
            rest = 1.0 - hold
            rollout = seg.rollout
            if rollout is not None and rollout.active:
                f = rollout.fraction
                weights[rollout.candidate] = weights.get(rollout.candidate, 0.0) + f * rest
                weights[seg.incumbent] = weights.get(seg.incumbent, 0.0) + (1 - f) * rest
            else:
                explore = {v: s for v, s in seg.explore.items() if v in entry.variant_ids}
                share = sum(explore.values())
                for v, s in explore.items():
                    weights[v] = weights.get(v, 0.0) + s * rest
                weights[seg.incumbent] = weights.get(seg.incumbent, 0.0) + (1 - share) * rest
            if hold:
                weights[app.baseline] = weights.get(app.baseline, 0.0) + hold
            total = sum(weights.values())
            seg.split = {v: w / total for v, w in weights.items() if w > 0}
            calls = float(sum(entry.windows.counters(name, v).calls for v in seg.split)) or 1e-9
            traffic += calls
            for v, w in seg.split.items():
                weights_total[v] = weights_total.get(v, 0.0) + w * calls
        if weights_total and traffic > 0:
            total = sum(weights_total.values())
            entry.split = {v: w / total for v, w in weights_total.items()}
        else:
            entry.split = {app.baseline: 1.0}
