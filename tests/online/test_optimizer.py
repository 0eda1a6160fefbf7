"""The optimizer end to end on scripted traffic with a simulated clock."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tunepilot.exceptions import ConflictError, NotFoundError
from tunepilot.online import (
    AppConfig,
    ContextField,
    Event,
    MemoryStateStore,
    OnlineConfig,
    OnlineOptimizer,
    Policy,
    Variant,
)

Outcome = Callable[[str, random.Random], tuple[float, float, float]]  # quality, cost, latency


def drive(opt: OnlineOptimizer, clock: list[float], *, app: str, until: float, rate: float,
          outcome: Outcome, rng: random.Random, tick: float = 60.0,
          attributes: dict[str, str | int | float | bool] | None = None) -> list[str]:
    """Send ``rate`` calls per second until ``until``, each judged at once; step every tick.

    Returns the kinds of the decisions made on the way.
    """
    kinds: list[str] = []
    while clock[0] < until:
        t0 = clock[0]
        split = opt.split(app, attributes)
        names, weights = list(split), list(split.values())
        events = []
        for i in range(int(rate * tick)):
            variant = rng.choices(names, weights)[0]
            quality, cost, latency = outcome(variant, rng)
            events.append(Event(app=app, variant=variant, event_id=f"{t0}-{i}",
                                timestamp=t0 + rng.random() * tick, latency_ms=latency,
                                cost=cost, quality=quality, attributes=attributes or {}))
        opt.ingest(events)
        clock[0] = t0 + tick
        kinds.extend(d.kind for d in opt.step())
    return kinds

T0 = 1_800_000_000.0
POLICY = Policy(gate_interval_s=600, bucket_s=60, window_s=3600, explore=0.2, floor=0.01,
                holdback=0.05, cooldown_s=7200)


def _app(**policy: object) -> AppConfig:
    return AppConfig(name="bot", baseline="big",
                     variants=[Variant(id="big", model="big"), Variant(id="small", model="small"),
                               Variant(id="broken", model="small", temperature=1.5)],
                     policy=POLICY.model_copy(update=policy))


def _world(drop_small: list[bool] | None = None):  # type: ignore[no-untyped-def]
    def outcome(variant: str, rng: random.Random) -> tuple[float, float, float]:
        mean = {"big": 0.85, "small": 0.85, "broken": 0.4}[variant]
        if variant == "small" and drop_small and drop_small[0]:
            mean = 0.5
        cost = {"big": 0.01, "small": 0.001, "broken": 0.001}[variant]
        return min(1.0, max(0.0, rng.gauss(mean, 0.1))), cost, 500.0 + 100 * rng.random()
    return outcome


def _optimizer(app: AppConfig, clock: list[float], store: MemoryStateStore | None = None) -> OnlineOptimizer:
    return OnlineOptimizer(config=OnlineConfig(apps={app.name: app}), clock=lambda: clock[0], seed=0,
                           state=store)


def test_a_cheaper_equal_variant_is_rolled_out_through_every_gate() -> None:
    clock = [T0]
    opt = _optimizer(_app(), clock)
    assert opt.split("bot") == {"big": 1.0}
    rng = random.Random(0)
    kinds = drive(opt, clock, app="bot", until=T0 + 6 * 3600, rate=5, outcome=_world(), rng=rng)
    assert "eliminate" in kinds  # the broken variant is dropped quickly
    assert kinds.count("complete") == 1
    assert "rollback" not in kinds
    rollout = opt.rollout("bot")
    assert rollout is not None and rollout.state == "completed" and rollout.candidate == "small"
    assert [g.verdict for g in rollout.gates if g.verdict == "pass"] == ["pass"] * 3
    split = opt.split("bot")
    assert split["small"] == pytest.approx(0.95) and split["big"] == pytest.approx(0.05)
    promote = next(d for d in opt.decisions("bot", limit=1000) if d.kind == "promote")
    assert promote.evidence["quality"]["candidate_n"] >= POLICY.min_samples
    assert promote.evidence["cost_saving"] == pytest.approx(0.9, abs=0.01)
    assert {"p_non_inferior", "z", "delta"} <= set(promote.evidence["quality"])
    assert opt.decisions("bot", limit=1000)[0].time >= promote.time  # newest first


def test_quality_drift_of_the_leader_rolls_it_back_within_three_gate_intervals() -> None:
    clock = [T0]
    opt = _optimizer(_app(), clock)
    rng = random.Random(1)
    drop = [False]
    drive(opt, clock, app="bot", until=T0 + 6 * 3600, rate=5, outcome=_world(drop), rng=rng)
    assert opt.leaders("bot")["*"] == "small"
    drop[0] = True
    drifted_at = clock[0]
    drive(opt, clock, app="bot", until=drifted_at + 4 * POLICY.gate_interval_s, rate=5,
          outcome=_world(drop), rng=rng)
    rollback = next(d for d in opt.decisions("bot", limit=1000) if d.kind == "rollback")
    assert rollback.variant == "small" and rollback.baseline == "big"
    assert (rollback.time - drifted_at) / POLICY.gate_interval_s <= 3
    assert opt.leaders("bot")["*"] == "big"
    assert opt.split("bot").get("small", 0.0) == 0.0  # left alone for the cooldown


def test_a_rollout_without_traffic_holds_and_never_passes() -> None:
    clock = [T0]
    opt = _optimizer(_app(max_hold_gates=4), clock)
    rng = random.Random(2)
    while opt.rollout("bot") is None:
        drive(opt, clock, app="bot", until=clock[0] + 60, rate=5, outcome=_world(), rng=rng)
    rollout = opt.rollout("bot")
    assert rollout is not None and rollout.step == 0
    for _ in range(int(5 * POLICY.gate_interval_s / 60)):  # no events at all
        clock[0] += 60
        opt.step()
    gates = [d for d in opt.decisions("bot", limit=1000) if d.kind == "gate"]
    assert gates and all(g.verdict == "inconclusive" for g in gates)
    rollout = opt.rollout("bot")
    assert rollout is not None and rollout.state == "rolled_back"
    assert "inconclusive gates" in rollout.reason


def test_pause_resume_abort() -> None:
    clock = [T0]
    opt = _optimizer(_app(), clock)
    rng = random.Random(3)
    while opt.rollout("bot") is None:
        drive(opt, clock, app="bot", until=clock[0] + 60, rate=5, outcome=_world(), rng=rng)
    opt.pause("bot")
    held = opt.rollout("bot")
    assert held is not None and held.state == "paused"
    split = dict(opt.split("bot"))
    kinds = drive(opt, clock, app="bot", until=clock[0] + 3 * POLICY.gate_interval_s, rate=5,
                  outcome=_world(), rng=rng)
    assert "gate" not in kinds and opt.split("bot") == split
    opt.resume("bot")
    resumed = opt.rollout("bot")
    assert resumed is not None and resumed.state == "running" and resumed.step_started_at == clock[0]
    opt.abort("bot")
    aborted = opt.rollout("bot")
    assert aborted is not None and aborted.state == "aborted"
    opt.step()
    assert opt.split("bot").get("small", 0.0) <= POLICY.explore
    assert [d.kind for d in opt.decisions("bot", limit=3)][:1] == ["abort"] or any(
        d.kind == "abort" for d in opt.decisions("bot", limit=50))


def test_a_new_proposal_during_a_rollout_restarts_its_analysis() -> None:
    clock = [T0]
    app = AppConfig(name="bot", baseline="big", policy=POLICY,
                    variants=[Variant(id="big", model="big"), Variant(id="small", model="small")])
    opt = _optimizer(app, clock)
    rng = random.Random(4)

    def outcome(variant: str, r: random.Random) -> tuple[float, float, float]:
        cost = {"big": 0.01, "small": 0.005, "tiny": 0.001}[variant]
        return min(1.0, max(0.0, r.gauss(0.85, 0.1))), cost, 300.0

    while opt.rollout("bot") is None:
        drive(opt, clock, app="bot", until=clock[0] + 60, rate=5, outcome=outcome, rng=rng)
    first = opt.rollout("bot")
    assert first is not None and first.candidate == "small"
    # A cheaper variant arrives; its data comes in (e.g. from another region's traffic).
    opt.add_app(app.model_copy(update={"variants": [*app.variants, Variant(id="tiny", model="tiny")]}))
    events = [Event(app="bot", variant="tiny", event_id=f"tiny-{i}", timestamp=clock[0] - 30 + i * 0.01,
                    cost=0.001, latency_ms=300.0, quality=min(1.0, max(0.0, rng.gauss(0.85, 0.1))))
              for i in range(600)]
    opt.ingest(events)
    clock[0] += 60
    opt.step()
    second = opt.rollout("bot")
    assert second is not None and second.candidate == "tiny" and second.step == 0
    assert second.started_at == clock[0]
    promote = opt.decisions("bot", limit=1000)
    assert any("replaces the rollout of small" in d.reason for d in promote if d.kind == "promote")


def test_late_feedback_finds_its_call_and_unknown_input_is_counted() -> None:
    clock = [T0]
    app = AppConfig(name="bot", baseline="big", variants=[Variant(id="big", model="big")],
                    models={"big": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}, policy=POLICY)
    opt = _optimizer(app, clock)
    opt.ingest([Event(app="bot", variant="big", event_id="call-1", timestamp=T0 - 10,
                      input_tokens=1000, output_tokens=500)])
    opt.ingest([Event(app="bot", variant="big", event_id="fb-1", timestamp=T0 + 900, quality=0.25,
                      attributes={"feedback_for": "call-1"}),
                Event(app="bot", variant="nope", event_id="x", timestamp=T0),
                Event(app="other", variant="big", event_id="y", timestamp=T0),
                Event(app="bot", variant="big", event_id="fb-2", timestamp=T0, feedback=1,
                      attributes={"feedback_for": "never-seen"})])
    stats = opt.stats("bot")
    assert stats["unknown_variant"] == 1 and stats["orphan_feedback"] == 1
    assert opt.unknown_app == 1
    window = stats["segments"]["*"]["big"]
    assert window["calls"] == 1 and window["quality_n"] == 2
    assert window["cost_mean"] == pytest.approx(0.002)  # from the model's prices
    assert window["quality_mean"] == pytest.approx((0.25 + 1.0) / 2)
    with pytest.raises(NotFoundError, match="no online app named 'ghost'"):
        opt.split("ghost")


def test_state_survives_a_restart() -> None:
    clock = [T0]
    store = MemoryStateStore()
    opt = _optimizer(_app(), clock, store)
    rng = random.Random(5)
    drive(opt, clock, app="bot", until=T0 + 6 * 3600, rate=5, outcome=_world(), rng=rng)
    opt.pause("bot")
    before = opt.decisions("bot", limit=10_000)
    restarted = OnlineOptimizer(config=OnlineConfig(), clock=lambda: clock[0], seed=1, state=store)
    assert restarted.apps() == ["bot"]
    assert restarted.leaders("bot") == opt.leaders("bot")
    assert restarted.split("bot") == pytest.approx(opt.split("bot"))
    assert [d.id for d in restarted.decisions("bot", limit=10_000)] == [d.id for d in before]
    assert restarted.rollout("bot") == opt.rollout("bot")
    restarted.resume("bot")
    assert restarted.decisions("bot", limit=1)[0].kind == "resume"
    assert int(restarted.decisions("bot", limit=1)[0].id.rsplit("-", 1)[1]) == len(before) + 1


def test_removing_a_variant_in_use_is_refused() -> None:
    clock = [T0]
    opt = _optimizer(_app(), clock)
    opt.ingest([Event(app="bot", variant="big", event_id="1", timestamp=T0, cost=0.01)])
    opt.step()
    with pytest.raises(ConflictError, match="in use"):
        opt.add_app(AppConfig(name="bot", baseline="small", variants=[Variant(id="small", model="s")]))


def test_an_app_with_a_rollout_is_deleted_only_after_the_abort() -> None:
    clock = [T0]
    store = MemoryStateStore()
    opt = OnlineOptimizer(config=OnlineConfig(), clock=lambda: clock[0], seed=0, state=store)
    opt.add_app(_app())
    rng = random.Random(3)
    while opt.rollout("bot") is None:
        drive(opt, clock, app="bot", until=clock[0] + 60, rate=5, outcome=_world(), rng=rng)
    with pytest.raises(ConflictError, match="abort it first") as refused:
        opt.remove_app("bot")
    assert refused.value.reason == "rollout_active"
    assert opt.apps() == ["bot"] and [c.name for c, _ in store.load_apps()] == ["bot"]
    opt.abort("bot")
    opt.remove_app("bot")
    assert opt.apps() == [] and store.load_apps() == []
    assert store.load_decisions("bot", limit=100) == []
    with pytest.raises(NotFoundError):
        opt.remove_app("bot")
    restarted = OnlineOptimizer(config=OnlineConfig(), clock=lambda: clock[0], state=store)
    assert restarted.apps() == []


def test_contextual_segments_choose_separately() -> None:
    clock = [T0]
    app = _app().model_copy(update={"context": [ContextField(attribute="kind", values=["short", "long"])]})
    opt = _optimizer(app, clock)
    rng = random.Random(6)

    def outcome_for(kind: str):  # type: ignore[no-untyped-def]
        def outcome(variant: str, r: random.Random) -> tuple[float, float, float]:
            mean = 0.85 if variant == "big" or (variant == "small" and kind == "short") else 0.4
            cost = 0.01 if variant == "big" else 0.001
            return min(1.0, max(0.0, r.gauss(mean, 0.1))), cost, 400.0
        return outcome

    while clock[0] < T0 + 6 * 3600:
        until = clock[0] + 60
        drive(opt, [clock[0]], app="bot", until=until, rate=3, outcome=outcome_for("short"), rng=rng,
              attributes={"kind": "short"})
        drive(opt, clock, app="bot", until=until, rate=3, outcome=outcome_for("long"), rng=rng,
              attributes={"kind": "long"})
    leaders = opt.leaders("bot")
    assert leaders["kind=short"] == "small"
    assert leaders["kind=long"] == "big"
    assert opt.split("bot", {"kind": "long"}).get("small", 0.0) < 0.05
