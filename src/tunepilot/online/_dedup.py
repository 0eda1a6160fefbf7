"""Duplicate detection over a sliding event-time horizon, in bounded memory."""

from __future__ import annotations

import math

__all__ = ["DedupIndex"]


class _AppIds:
    """Seen event ids of one application, grouped in event-time buckets for eviction."""

    __slots__ = ("buckets", "floor", "ids", "watermark")

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.buckets: dict[int, list[str]] = {}
        # Events older than the floor are refused: their ids may already be forgotten,
        # so accepting them could count a re-delivery twice.
        self.floor = -math.inf
        self.watermark = -math.inf


class DedupIndex:
    """Remembers which (app, event_id) pairs were counted, for ``window`` seconds of event time.

    Memory is bounded by ``max_ids``. The guarantee is one-sided on purpose: an event is
    never counted twice. An event whose timestamp is older than the application's
    horizon (its newest timestamp minus ``window``, or later when ``max_ids`` forced
    older ids out) cannot be checked any more and is refused as too late, instead of
    being counted a second time. Out-of-order events inside the horizon are fine.

    Not thread-safe: the collector calls it under its lock.

    Args:
        window: seconds of event time over which re-deliveries are recognised.
        max_ids: most ids kept over all applications; when full, the oldest bucket
            of ids goes and its application's horizon moves past it.
        buckets: how many slices the window is cut into (eviction granularity).

    Example:
        >>> index = DedupIndex(window=60.0, max_ids=1000)
        >>> index.check("app", "e1", 100.0)
        'new'
        >>> index.add("app", "e1", 100.0)
        >>> index.check("app", "e1", 100.0), index.check("app", "e0", 50.0)
        ('duplicate', 'new')
        >>> index.add("app", "e2", 200.0)  # the horizon moves to 140: e0 is too late now
        >>> index.check("app", "e0", 50.0)
        'too_late'
    """

    def __init__(self, *, window: float = 600.0, max_ids: int = 2_000_000, buckets: int = 32) -> None:
        if not (window > 0 and math.isfinite(window)):
            raise ValueError(f"window must be a positive number of seconds, got {window!r}")
        if max_ids < 1:
            raise ValueError(f"max_ids must be at least 1, got {max_ids!r}")
        if buckets < 1:
            raise ValueError(f"buckets must be at least 1, got {buckets!r}")
        self.window = window
        self.max_ids = max_ids
        self._width = window / buckets
        self._apps: dict[str, _AppIds] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def horizon(self, app: str) -> float:
        """Oldest timestamp still accepted for ``app`` (``-inf`` before its first event)."""
        state = self._apps.get(app)
        return state.floor if state is not None else -math.inf

    def check(self, app: str, event_id: str, timestamp: float) -> str:
        """``'new'``, ``'duplicate'`` or ``'too_late'``; changes nothing."""
        state = self._apps.get(app)
        if state is None:
            return "new"
        if event_id in state.ids:
            return "duplicate"
        if timestamp < state.floor:
            return "too_late"
        return "new"

    def add(self, app: str, event_id: str, timestamp: float) -> None:
        """Remember a counted event; call only after :meth:`check` said ``'new'``."""
        state = self._apps.get(app)
        if state is None:
            state = self._apps[app] = _AppIds()
        state.ids.add(event_id)
        bucket = int(timestamp // self._width)
        ids = state.buckets.get(bucket)
        if ids is None:
            state.buckets[bucket] = [event_id]
        else:
            ids.append(event_id)
        self._size += 1
        if timestamp > state.watermark:
            state.watermark = timestamp
            self._raise_floor(state, timestamp - self.window)
        while self._size > self.max_ids:
            self._evict_oldest_bucket()

    def _raise_floor(self, state: _AppIds, floor: float) -> None:
        if floor <= state.floor:
            return
        state.floor = floor
        # A bucket may go once all of it lies below the floor: none of its events can be
        # accepted again, so nobody needs its ids.
        for bucket in [b for b in state.buckets if (b + 1) * self._width <= floor]:
            self._drop(state, bucket)

    def _drop(self, state: _AppIds, bucket: int) -> None:
        ids = state.buckets.pop(bucket)
        state.ids.difference_update(ids)
        self._size -= len(ids)

    def _evict_oldest_bucket(self) -> None:
        app, bucket = min(
            ((name, min(state.buckets)) for name, state in self._apps.items() if state.buckets),
            key=lambda pair: pair[1],
        )
        state = self._apps[app]
        self._drop(state, bucket)
        state.floor = max(state.floor, (bucket + 1) * self._width)
