"""Per-variant sliding windows: counts, rates, means and mergeable latency sketches.

Events are filed by their own timestamp into fixed time buckets, so an event that
arrives late or out of order lands in the window it belongs to. A window is a run
of buckets; its counters are kept as a running total (O(1) per event, O(expired
buckets) per advance) and its latency quantiles come from merging the buckets'
DDSketches (relative error 1%) only when asked.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from ddsketch import DDSketch

__all__ = ["Stats", "Windows"]

#: Relative accuracy of the latency sketches.
SKETCH_ACCURACY = 0.01
#: Quality values kept per bucket for distribution tests (KS, PSI).
MAX_VALUES_PER_BUCKET = 256


@dataclass
class Stats:
    """Counters of one variant over some span of time.

    ``quality`` is the quality score in [0, 1]; an event with only user feedback
    counts ``(feedback + 1) / 2`` as its quality.

    Example:
        >>> s = Stats()
        >>> s.add_call(latency_ms=100.0, cost=0.01, error=False)
        >>> s.add_quality(0.8)
        >>> (s.calls, s.cost_mean, s.quality_mean)
        (1, 0.01, 0.8)
    """

    calls: int = 0
    errors: int = 0
    cost_n: int = 0
    cost_sum: float = 0.0
    cost_sq: float = 0.0
    latency_n: int = 0
    latency_sum: float = 0.0
    quality_n: int = 0
    quality_sum: float = 0.0
    quality_sq: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    sketches: list[DDSketch] = field(default_factory=list, repr=False)
    values: list[float] = field(default_factory=list, repr=False)

    def add_call(self, *, latency_ms: float | None, cost: float | None, error: bool,
                 input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        """Count one call."""
        self.calls += 1
        self.errors += int(error)
        if cost is not None:
            self.cost_n += 1
            self.cost_sum += cost
            self.cost_sq += cost * cost
        if latency_ms is not None:
            self.latency_n += 1
            self.latency_sum += latency_ms
        self.input_tokens += input_tokens or 0
        self.output_tokens += output_tokens or 0

    def add_quality(self, quality: float) -> None:
        """Count one quality score."""
        self.quality_n += 1
        self.quality_sum += quality
        self.quality_sq += quality * quality

    def merge(self, other: Stats, sign: int = 1) -> None:
        """Add (or with ``sign=-1`` remove) another span's counters; sketches are not touched."""
        self.calls += sign * other.calls
        self.errors += sign * other.errors
        self.cost_n += sign * other.cost_n
        self.cost_sum += sign * other.cost_sum
        self.cost_sq += sign * other.cost_sq
        self.latency_n += sign * other.latency_n
        self.latency_sum += sign * other.latency_sum
        self.quality_n += sign * other.quality_n
        self.quality_sum += sign * other.quality_sum
        self.quality_sq += sign * other.quality_sq
        self.input_tokens += sign * other.input_tokens
        self.output_tokens += sign * other.output_tokens

    @property
    def error_rate(self) -> float:
        """Share of calls that failed (0 without calls)."""
        return self.errors / self.calls if self.calls else 0.0

    @property
    def cost_mean(self) -> float | None:
        """Mean USD per call, None before any cost is known."""
        return self.cost_sum / self.cost_n if self.cost_n else None

    @property
    def cost_var(self) -> float | None:
        """Sample variance of the cost per call (None below two costs)."""
        n = self.cost_n
        if n < 2:
            return None
        mean = self.cost_sum / n
        return max(0.0, (self.cost_sq - n * mean * mean) / (n - 1))

    @property
    def latency_mean(self) -> float | None:
        """Mean latency in ms."""
        return self.latency_sum / self.latency_n if self.latency_n else None

    @property
    def quality_mean(self) -> float | None:
        """Mean quality score."""
        return self.quality_sum / self.quality_n if self.quality_n else None

    @property
    def quality_var(self) -> float | None:
        """Sample variance of the quality score (None below two points)."""
        n = self.quality_n
        if n < 2:
            return None
        mean = self.quality_sum / n
        return max(0.0, (self.quality_sq - n * mean * mean) / (n - 1))

    def quantile(self, q: float) -> float | None:
        """Latency quantile (ms) from the merged sketches, None without latencies."""
        if len(self.sketches) == 1:
            merged = self.sketches[0]
        else:
            merged = DDSketch(SKETCH_ACCURACY)
            for sketch in self.sketches:
                merged.merge(sketch)
        if merged.count == 0:
            return None
        value = merged.get_quantile_value(q)
        return None if value is None or math.isnan(value) else float(value)

    def summary(self) -> dict[str, float | int | None]:
        """Plain numbers for a decision's evidence."""
        return {
            "calls": self.calls,
            "error_rate": round(self.error_rate, 6),
            "cost_mean": self.cost_mean,
            "latency_mean_ms": self.latency_mean,
            "quality_n": self.quality_n,
            "quality_mean": self.quality_mean,
        }


class _Bucket:
    __slots__ = ("stats", "sketch")

    def __init__(self) -> None:
        self.stats = Stats()
        self.sketch: DDSketch | None = None


class Windows:
    """Time-bucketed statistics per (segment, variant), with one running analysis window.

    Args:
        bucket_s: width of a bucket in seconds.
        window_s: length of the running analysis window.
        retention_s: how long buckets are kept for other windows (gates look back this far).

    Example:
        >>> w = Windows(bucket_s=60, window_s=600, retention_s=3600)
        >>> _ = w.add_call("*", "a", 1000.0, latency_ms=120.0, cost=0.001, error=False)
        >>> _ = w.add_quality("*", "a", 990.0, 0.9)  # late but lands in its own bucket
        >>> w.advance(1100.0)
        >>> w.window("*", "a").calls, w.span("*", "a", 900.0, 1100.0).quality_n
        (1, 1)
    """

    def __init__(self, *, bucket_s: float, window_s: float, retention_s: float) -> None:
        self.bucket_s = float(bucket_s)
        self.window_s = float(window_s)
        self.retention_s = max(float(retention_s), float(window_s))
        self._buckets: dict[tuple[str, str], dict[int, _Bucket]] = {}
        self._totals: dict[tuple[str, str], Stats] = {}
        self._start = -(2**62)  # first bucket index inside the running window
        self._oldest = -(2**62)
        self.dropped = 0  # events older than the retention, not counted anywhere
        self._now_index = -(2**62)
        self._merged: dict[tuple[str, str], tuple[tuple[int, int, int], DDSketch]] = {}

    def _index(self, timestamp: float) -> int:
        return math.floor(timestamp / self.bucket_s)

    def _bucket(self, segment: str, variant: str, timestamp: float) -> tuple[_Bucket, bool] | None:
        index = self._index(timestamp)
        if index < self._oldest:
            self.dropped += 1
            return None
        key = (segment, variant)
        buckets = self._buckets.get(key)
        if buckets is None:
            buckets = self._buckets[key] = {}
            self._totals[key] = Stats()
        bucket = buckets.get(index)
        if bucket is None:
            bucket = buckets[index] = _Bucket()
        return bucket, index >= self._start

    def add_call(self, segment: str, variant: str, timestamp: float, *, latency_ms: float | None,
                 cost: float | None, error: bool, input_tokens: int | None = None,
                 output_tokens: int | None = None) -> bool:
        """File one call by its timestamp; False when it is older than the retention."""
        found = self._bucket(segment, variant, timestamp)
        if found is None:
            return False
        bucket, in_window = found
        bucket.stats.add_call(latency_ms=latency_ms, cost=cost, error=error,
                              input_tokens=input_tokens, output_tokens=output_tokens)
        if latency_ms is not None:
            if bucket.sketch is None:
                bucket.sketch = DDSketch(SKETCH_ACCURACY)
            bucket.sketch.add(max(latency_ms, 1e-3))
        if in_window:
            self._totals[(segment, variant)].add_call(
                latency_ms=latency_ms, cost=cost, error=error,
                input_tokens=input_tokens, output_tokens=output_tokens)
        return True

    def add_quality(self, segment: str, variant: str, timestamp: float, quality: float) -> bool:
        """File one quality score at the time of the call it judges."""
        found = self._bucket(segment, variant, timestamp)
        if found is None:
            return False
        bucket, in_window = found
        bucket.stats.add_quality(quality)
        if len(bucket.stats.values) < MAX_VALUES_PER_BUCKET:
            bucket.stats.values.append(quality)
        if in_window:
            self._totals[(segment, variant)].add_quality(quality)
        return True

    def advance(self, now: float) -> None:
        """Move the running window to end at ``now`` and forget buckets past the retention."""
        self._now_index = max(self._now_index, self._index(now))
        start = self._index(now - self.window_s) + 1
        if start > self._start:
            for key, buckets in self._buckets.items():
                total = self._totals[key]
                if start - self._start <= len(buckets):
                    for index in range(self._start, start):
                        bucket = buckets.get(index)
                        if bucket is not None:
                            total.merge(bucket.stats, -1)
                else:
                    for index, bucket in buckets.items():
                        if self._start <= index < start:
                            total.merge(bucket.stats, -1)
            self._start = start
        oldest = self._index(now - self.retention_s) + 1
        if oldest > self._oldest:
            for buckets in self._buckets.values():
                for index in [i for i in buckets if i < oldest]:
                    del buckets[index]
            self._oldest = oldest

    def keys(self) -> Iterator[tuple[str, str]]:
        """Every (segment, variant) seen within the retention."""
        return iter(list(self._buckets))

    def window(self, segment: str, variant: str) -> Stats:
        """The running analysis window's counters (sketches and values merged in)."""
        key = (segment, variant)
        total = self._totals.get(key)
        result = Stats()
        if total is None:
            return result
        result.merge(total)
        # Buckets before the newest one change rarely (late calls only): their merged
        # sketch is cached, checked against their latency count, and reused.
        closed = self._now_index
        version = 0
        for index, bucket in self._buckets[key].items():
            if index >= self._start:
                if index < closed:
                    version += bucket.stats.latency_n
                elif bucket.sketch is not None:
                    result.sketches.append(bucket.sketch)
                result.values.extend(bucket.stats.values)
        cached = self._merged.get(key)
        if cached is None or cached[0] != (self._start, closed, version):
            merged = DDSketch(SKETCH_ACCURACY)
            for index, bucket in self._buckets[key].items():
                if self._start <= index < closed and bucket.sketch is not None:
                    merged.merge(bucket.sketch)
            cached = self._merged[key] = ((self._start, closed, version), merged)
        if cached[1].count:
            result.sketches.append(cached[1])
        return result

    def counters(self, segment: str, variant: str) -> Stats:
        """The running window's counters only: cheap, for every step."""
        result = Stats()
        total = self._totals.get((segment, variant))
        if total is not None:
            result.merge(total)
        return result

    def span(self, segment: str, variant: str, start: float, end: float) -> Stats:
        """Counters, sketches and quality values of the buckets overlapping [start, end)."""
        result = Stats()
        buckets = self._buckets.get((segment, variant))
        if not buckets:
            return result
        first, last = self._index(start), self._index(end)
        for index, bucket in buckets.items():
            if first <= index <= last:
                result.merge(bucket.stats)
                if bucket.sketch is not None:
                    result.sketches.append(bucket.sketch)
                result.values.extend(bucket.stats.values)
        return result

    def series(self, segment: str, variant: str, start: float, end: float) -> list[tuple[float, Stats]]:
        """Per-bucket counters over [start, end), oldest first (for anomaly checks)."""
        buckets = self._buckets.get((segment, variant), {})
        first, last = self._index(start), self._index(end)
        return [(i * self.bucket_s, buckets[i].stats) for i in sorted(buckets) if first <= i < last]
