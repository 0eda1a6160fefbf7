"""The collector: every good event reaches the optimizer once, bad ones are refused with reasons."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
import pytest

from tunepilot.online._collector import MAX_BATCH, Collector
from tunepilot.online._dedup import DedupIndex
from tunepilot.testing import FailingSink, RecordingSink

NOW = 1795329000.0


def event(i: int | str, t: float = NOW, **fields: Any) -> dict[str, Any]:
    return {"app": "bot", "variant": "small", "event_id": f"e-{i}", "timestamp": t,
            "latency_ms": 100.0, **fields}


def collector(sink: RecordingSink, **options: Any) -> Collector:
    return Collector(sink, clock=lambda: NOW, **options)


def test_a_good_batch_is_taken_whole_and_counted() -> None:
    sink = RecordingSink()
    result = collector(sink).submit_json(orjson.dumps([event(i) for i in range(5)]))
    assert (result.accepted, result.duplicates, result.rejected) == (5, 0, [])
    assert [e.event_id for e in sink.events] == [f"e-{i}" for i in range(5)]


def test_the_events_envelope_and_iso_timestamps_are_accepted() -> None:
    sink = RecordingSink()
    body = orjson.dumps({"events": [event(1, t="2026-11-22T06:30:00Z")]})
    assert collector(sink).submit_json(body).accepted == 1
    assert sink.events[0].timestamp == NOW


def test_repeats_count_once_within_a_batch_and_across_batches() -> None:
    sink = RecordingSink()
    c = collector(sink)
    first = c.submit([event(1), event(2), event(1)])
    second = c.submit([event(2), event(3)])
    assert (first.accepted, first.duplicates) == (2, 1)
    assert (second.accepted, second.duplicates) == (1, 1)
    assert sorted(e.event_id for e in sink.events) == ["e-1", "e-2", "e-3"]
    stats = c.stats()
    assert (stats["accepted"], stats["duplicates"], stats["rejected"]) == (3, 2, 0)
    assert stats["apps"]["bot"]["duplicates"] == 2


def test_the_same_event_id_in_another_app_is_another_event() -> None:
    sink = RecordingSink(apps=["bot", "search"])
    result = collector(sink).submit([event(1), {**event(1), "app": "search"}])
    assert result.accepted == 2


def test_a_batch_with_bad_events_says_which_and_why_and_takes_the_rest() -> None:
    sink = RecordingSink()
    c = collector(sink)
    batch: list[Any] = [event(i) for i in range(8)]
    batch[1]["latency_ms"] = -5
    batch[2] = "not an event"
    batch[3]["timestamp"] = "last tuesday"
    del batch[4]["variant"]
    batch[5]["app"] = "unknown"
    batch[6]["colour"] = "red"
    batch[7]["variant"] = "medium"
    batch.append(event(8))
    result = c.submit_json(orjson.dumps(batch))
    assert result.accepted == 2 and [e.event_id for e in sink.events] == ["e-0", "e-8"]
    reasons = {(r.index, r.event_id, r.reason) for r in result.rejected}
    assert reasons == {(1, "e-1", "out_of_range"), (2, None, "not_an_object"),
                       (3, "e-3", "bad_timestamp"), (4, "e-4", "missing_field"),
                       (5, "e-5", "unknown_app"), (6, "e-6", "unknown_field"),
                       (7, "e-7", "unknown_variant")}
    by_index = {r.index: r.message for r in result.rejected}
    assert "latency_ms" in by_index[1] and "variant: Field required" in by_index[4]
    assert "POST /api/v1/online/apps" in by_index[5]
    assert "its variants: big, small" in by_index[7]
    stats = c.stats()
    assert stats["rejected"] == 7
    assert stats["rejected_by_reason"]["bad_timestamp"] == 1
    # Per-app counts only for a known app, so arbitrary names cannot grow the stats.
    assert stats["apps"]["bot"]["rejected"] == 5 and "unknown" not in stats["apps"]


def test_timestamps_far_ahead_of_the_clock_are_refused() -> None:
    result = collector(RecordingSink(), max_future=60).submit([event(1, t=NOW + 3600)])
    assert [r.reason for r in result.rejected] == ["from_the_future"]
    assert "ahead of the server's clock" in result.rejected[0].message


def test_a_bad_body_refuses_the_whole_batch_with_a_reason() -> None:
    c = collector(RecordingSink())
    with pytest.raises(ValueError, match="not valid JSON"):
        c.submit_json(b"[{")
    with pytest.raises(ValueError, match="send a JSON list of events"):
        c.submit_json(b'{"event": {}}')
    with pytest.raises(ValueError, match=f"at most {MAX_BATCH} events"):
        c.submit([event(i) for i in range(MAX_BATCH + 1)])
    assert c.stats()["rejected_batches"] == {"malformed_json": 1, "not_a_list": 1,
                                              "batch_too_large": 1}


def test_a_failed_ingest_forgets_the_batch_so_a_retry_counts_it_once() -> None:
    sink = FailingSink(failures=1)
    c = collector(sink)
    with pytest.raises(RuntimeError, match="injected"):
        c.submit([event(1), event(2)])
    assert c.stats()["accepted"] == 0
    retry = c.submit([event(1), event(2)])
    assert (retry.accepted, retry.duplicates) == (2, 0)
    assert len(sink.events) == 2


def test_late_events_beyond_the_horizon_are_refused_not_counted_twice() -> None:
    sink = RecordingSink()
    c = collector(sink, dedup_window=60.0)
    c.submit([event("old", t=NOW - 500), event("new", t=NOW)])
    # "old" is in, but its id may be forgotten once the horizon passes it: a re-delivery
    # must be refused rather than counted again.
    again = c.submit([event("old", t=NOW - 500), event("older", t=NOW - 100)])
    assert [(r.event_id, r.reason) for r in again.rejected] == [("e-old", "too_late"),
                                                                ("e-older", "too_late")]
    assert "de-duplication horizon" in again.rejected[0].message
    assert Counter(e.event_id for e in sink.events) == {"e-old": 1, "e-new": 1}
    assert c.stats()["rejected_by_reason"] == {"too_late": 2}


def test_dedup_memory_is_bounded_and_the_horizon_moves_instead() -> None:
    index = DedupIndex(window=1000.0, max_ids=500, buckets=10)
    for i in range(5000):
        assert index.check("bot", f"e{i}", float(i)) == "new"
        index.add("bot", f"e{i}", float(i))
        assert len(index) <= 500
    # Recent ids are still known; old ones are behind the horizon, not "new".
    assert index.check("bot", "e4999", 4999.0) == "duplicate"
    assert index.check("bot", "e10", 10.0) == "too_late"
    assert index.horizon("bot") > 4000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_duplicates_and_reordering_never_double_count(seed: int) -> None:
    """1% re-sent events and 1% delivered late, in batches, with a tight memory bound."""
    rng = random.Random(seed)
    sink = RecordingSink()
    c = collector(sink, dedup_window=30.0, max_tracked_ids=3000)
    stream: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for i in range(20_000):
        e = event(i, t=NOW - 200 + i * 0.01)
        if rng.random() < 0.01:
            held.append(e)  # delivered later, out of order
        else:
            stream.append(e)
        if rng.random() < 0.01:
            stream.append(dict(rng.choice(stream)))  # a re-delivery of something sent
        if held and rng.random() < 0.05:
            stream.append(held.pop(0))
    stream.extend(held)
    refused: list[str] = []
    duplicates = 0
    for start in range(0, len(stream), 500):
        result = c.submit(stream[start:start + 500])
        duplicates += result.duplicates
        refused.extend(r.event_id or "" for r in result.rejected)
        assert len(c._dedup) <= 3000
    counted = Counter(e.event_id for e in sink.events)
    assert max(counted.values()) == 1
    sent = {e["event_id"] for e in stream}
    # Every distinct event is counted once, or refused as too late: none vanishes.
    assert set(counted) | set(refused) == sent
    # Most late events are still inside the horizon and counted.
    assert len(refused) < 0.01 * len(sent)
    assert c.stats()["accepted"] == len(counted)
    assert duplicates + len(counted) + len(refused) == len(stream)
