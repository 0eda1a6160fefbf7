"""Windows: time buckets, running totals, late and out-of-order events, sketches."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tunepilot.online._windows import Stats, Windows


def test_out_of_order_events_land_in_their_own_window() -> None:
    w = Windows(bucket_s=60, window_s=600, retention_s=3600)
    events = [(1000.0 + i, i % 2 == 0) for i in range(600)]
    random.Random(1).shuffle(events)
    for t, err in events:
        w.add_call("*", "a", t, latency_ms=100.0, cost=0.01, error=err)
    w.advance(1600.0)
    # The window is the 10 buckets before 1600: events at 1020..1599 (bucket edges at 60 s).
    inside = sum(1 for t, _ in events if t >= 1020.0)
    assert w.window("*", "a").calls == inside
    assert w.span("*", "a", 1020.0, 1079.0).calls == 60  # whole buckets overlapping the span
    # A late call for a bucket still retained changes that bucket and the running total.
    w.add_call("*", "a", 1550.0, latency_ms=1.0, cost=None, error=False)
    assert w.window("*", "a").calls == inside + 1
    # One older than the retention is refused and counted.
    assert not w.add_call("*", "a", 1600.0 - 7200.0, latency_ms=1.0, cost=None, error=False)
    assert w.dropped == 1


def test_running_total_matches_a_fresh_sum_as_the_window_slides() -> None:
    rng = random.Random(7)
    w = Windows(bucket_s=30, window_s=300, retention_s=900)
    kept: list[tuple[float, float]] = []
    now = 0.0
    for step in range(200):
        now += 10.0
        for _ in range(rng.randint(0, 5)):
            t = now - rng.random() * 120  # up to two minutes late
            q = rng.random()
            w.add_call("s", "v", t, latency_ms=None, cost=q, error=False)
            w.add_quality("s", "v", t, q)
            kept.append((t, q))
        w.advance(now)
        start = (np.floor((now - 300) / 30) + 1) * 30
        expected = [q for t, q in kept if t >= start]
        got = w.counters("s", "v")
        assert got.calls == len(expected)
        assert got.quality_sum == pytest.approx(sum(expected), abs=1e-6)


def test_latency_quantiles_from_merged_sketches_are_within_one_percent() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(7.0, 0.5, 20_000)
    w = Windows(bucket_s=60, window_s=3600, retention_s=3600)
    for i, v in enumerate(values):
        w.add_call("*", "a", 10_000.0 + i * 0.15, latency_ms=float(v), cost=None, error=False)
    w.advance(10_000.0 + 3000.0)
    stats = w.window("*", "a")
    for q in (0.5, 0.95, 0.99):
        assert stats.quantile(q) == pytest.approx(np.quantile(values, q), rel=0.02)
    # Asked again, the cached merge gives the same answer.
    assert w.window("*", "a").quantile(0.99) == stats.quantile(0.99)


def test_stats_means_and_variance() -> None:
    s = Stats()
    for q in (0.2, 0.4, 0.6):
        s.add_quality(q)
    assert s.quality_mean == pytest.approx(0.4)
    assert s.quality_var == pytest.approx(0.04)
    assert Stats().quantile(0.5) is None
    assert Stats().cost_mean is None and Stats().error_rate == 0.0
