"""The collector: validates, de-duplicates and counts events before the optimizer sees them."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from tunepilot.online._config import AppConfig
from tunepilot.online._dedup import DedupIndex
from tunepilot.online._events import Event

__all__ = ["MAX_BATCH", "BatchResult", "Collector", "EventSink", "Rejection"]

#: Most events one request may carry; larger batches are refused as a whole.
MAX_BATCH = 10_000

_logger = logging.getLogger("tunepilot.online")
# The length is checked as items are read: a list of a million bad events fails at
# the first one too many, not after a million error reports.
_EVENTS = TypeAdapter(Annotated[list[Event], Field(max_length=MAX_BATCH)])

# pydantic error types -> the reason codes counted in the stats and returned per event.
_REASONS = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "finite_number": "not_finite",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "string_too_short": "bad_length",
    "string_too_long": "bad_length",
    "too_short": "bad_length",
    "too_long": "bad_length",
    "model_type": "not_an_object",
}


class EventSink(Protocol):
    """What the collector feeds: the :class:`OnlineOptimizer` (or anything with these methods)."""

    def ingest(self, events: Sequence[Event]) -> None: ...

    def apps(self) -> list[str]: ...

    def app_config(self, app: str) -> AppConfig: ...


@dataclass(frozen=True)
class Rejection:
    """One refused event: its position in the batch, its id when readable, why, and what to fix."""

    index: int
    event_id: str | None
    reason: str
    message: str
    app: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "app": self.app, "event_id": self.event_id,
                "reason": self.reason, "message": self.message}


@dataclass
class BatchResult:
    """What became of one batch: counted, recognised as repeats, or refused (with reasons)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": [r.as_dict() for r in self.rejected]}


class _Counts:
    __slots__ = ("accepted", "duplicates", "rejected")

    def __init__(self) -> None:
        self.accepted = 0
        self.duplicates = 0
        self.rejected: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": sum(self.rejected.values()), "rejected_by_reason": dict(self.rejected)}


class Collector:
    """Turns raw batches into validated, once-only events for the optimizer, and counts them.

    Every event is validated as an :class:`Event`; a bad one is refused with a reason
    code (``missing_field``, ``unknown_field``, ``wrong_type``, ``not_finite``,
    ``out_of_range``, ``bad_length``, ``bad_timestamp``, ``bad_attribute``,
    ``not_an_object``, ``unknown_app``, ``unknown_variant``, ``too_late``,
    ``from_the_future``) without
    affecting the others in its batch. A repeat of a counted (app, event_id) is
    recognised for ``dedup_window`` seconds of event time and counted as a duplicate,
    never twice (see :class:`DedupIndex`). Events of one batch reach the sink in one
    ``ingest`` call; ids are remembered only after the sink took them, so a failed
    ingest can be retried.

    Thread-safe: HTTP handlers, the Redis consumer and :meth:`locked` callers (the
    decision step) take turns on one lock.

    Args:
        sink: the optimizer.
        clock: unix seconds now; refuses timestamps more than ``max_future`` ahead.
        dedup_window: seconds of event time over which repeats are recognised.
        max_tracked_ids: memory bound of the dedup index (about 150 bytes per id).
        max_future: seconds a timestamp may lie ahead of ``clock`` (clock skew).

    Example:
        .. code-block:: python

            collector = Collector(optimizer)
            result = collector.submit_json(b'[{"app": "bot", "variant": "a", '
                                           b'"event_id": "1", "timestamp": 1795329000}]')
            assert result.accepted == 1
    """

    def __init__(
        self,
        sink: EventSink,
        *,
        clock: Callable[[], float] = time.time,
        dedup_window: float = 600.0,
        max_tracked_ids: int = 2_000_000,
        max_future: float = 300.0,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.max_future = max_future
        self._dedup = DedupIndex(window=dedup_window, max_ids=max_tracked_ids)
        self._lock = threading.Lock()
        self._counts: dict[str, _Counts] = {}
        self._total = _Counts()
        self._bad_batches: Counter[str] = Counter()
        self._other: Counter[str] = Counter()

    @property
    def lock(self) -> threading.Lock:
        """Held while events enter the sink; hold it to call the sink from another thread."""
        return self._lock

    def submit_json(self, body: bytes) -> BatchResult:
        """Parse a JSON batch (a list of events, or ``{"events": [...]}``) and submit it.

        Raises:
            ValueError: the body is not JSON of that shape, or holds more than
                :data:`MAX_BATCH` events; nothing of it was counted.
        """
        if body.lstrip()[:1] == b"[":
            try:
                # JSON straight into events in pydantic-core: the common, all-valid case,
                # about a third cheaper than parsing to dicts first.
                events = _EVENTS.validate_json(body)
            except ValidationError:
                pass  # parsed again below, event by event, to say which ones are bad
            else:
                if len(events) > MAX_BATCH:
                    self._bad_batch("batch_too_large")
                    raise ValueError(
                        f"a batch holds at most {MAX_BATCH} events, got {len(events)}: split it")
                return self._admit(list(enumerate(events)), [])
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            self._bad_batch("malformed_json")
            raise ValueError(f"the body is not valid JSON: {exc}") from None
        if isinstance(data, dict) and set(data) == {"events"}:
            data = data["events"]
        if not isinstance(data, list):
            self._bad_batch("not_a_list")
            raise ValueError('send a JSON list of events, or {"events": [...]}')
        return self.submit(data)

    def submit(self, items: Sequence[Any]) -> BatchResult:
        """Validate, de-duplicate and ingest raw events (dicts or :class:`Event` objects)."""
        if len(items) > MAX_BATCH:
            self._bad_batch("batch_too_large")
            raise ValueError(f"a batch holds at most {MAX_BATCH} events, got {len(items)}: split it")
        events, rejected = _validate(items)
        return self._admit(events, rejected)

    def reject(self, rejections: Iterable[Rejection], *, app: str | None = None) -> None:
        """Count events refused before they became :class:`Event` objects (OTLP, Redis)."""
        with self._lock:
            # Per-application counts only for known applications: names sent by anyone
            # must not grow the stats without bound.
            known = app is not None and app in set(self.sink.apps())
            for rejection in rejections:
                self._count_rejected(app if known else None, rejection.reason)

    def count(self, name: str, n: int = 1) -> None:
        """Add to a named counter shown under ``other`` in :meth:`stats` (OTLP, Redis)."""
        with self._lock:
            self._other[name] += n

    def stats(self) -> dict[str, Any]:
        """Counts since start: overall, per application, and refused batches by reason."""
        with self._lock:
            return {
                **self._total.as_dict(),
                "rejected_batches": dict(self._bad_batches),
                "tracked_ids": len(self._dedup),
                "other": dict(self._other),
                "apps": {app: counts.as_dict() for app, counts in sorted(self._counts.items())},
            }

    def _bad_batch(self, reason: str) -> None:
        with self._lock:
            self._bad_batches[reason] += 1

    def _admit(self, events: list[tuple[int, Event]], rejected: list[Rejection]) -> BatchResult:
        result = BatchResult(rejected=list(rejected))
        latest = self.clock() + self.max_future
        with self._lock:
            known = set(self.sink.apps())
            variants: dict[str, set[str]] = {}
            for rejection in rejected:
                self._count_rejected(rejection.app if rejection.app in known else None,
                                     rejection.reason)
            fresh: list[Event] = []
            in_batch: set[tuple[str, str]] = set()
            for index, event in events:
                if event.app not in known:
                    self._refuse(result, index, event, None, "unknown_app",
                                 f"no application {event.app!r}: create it first "
                                 "(POST /api/v1/online/apps)")
                    continue
                ids = variants.get(event.app)
                if ids is None:
                    ids = variants[event.app] = {v.id for v in self.sink.app_config(event.app).variants}
                if event.variant not in ids:
                    self._refuse(result, index, event, event.app, "unknown_variant",
                                 f"application {event.app!r} has no variant {event.variant!r}; "
                                 f"its variants: {', '.join(sorted(ids))}")
                    continue
                if event.timestamp > latest:
                    self._refuse(result, index, event, event.app, "from_the_future",
                                 f"timestamp {event.timestamp} is more than {self.max_future:g} s "
                                 "ahead of the server's clock: send unix seconds in UTC")
                    continue
                pair = (event.app, event.event_id)
                status = self._dedup.check(event.app, event.event_id, event.timestamp)
                if status == "duplicate" or pair in in_batch:
                    result.duplicates += 1
                    self._app_counts(event.app).duplicates += 1
                    self._total.duplicates += 1
                elif status == "too_late":
                    self._refuse(result, index, event, event.app, "too_late",
                                 f"timestamp {event.timestamp} is older than the de-duplication "
                                 f"horizon {self._dedup.horizon(event.app):.3f}: it cannot be "
                                 "checked for repeats, so it is not counted")
                else:
                    in_batch.add(pair)
                    fresh.append(event)
            if fresh:
                self.sink.ingest(fresh)
                for event in fresh:
                    self._dedup.add(event.app, event.event_id, event.timestamp)
                    self._app_counts(event.app).accepted += 1
                self._total.accepted += len(fresh)
            result.accepted = len(fresh)
        result.rejected.sort(key=lambda r: r.index)
        return result

    def _refuse(self, result: BatchResult, index: int, event: Event, app: str | None,
                reason: str, message: str) -> None:
        result.rejected.append(Rejection(index, event.event_id, reason, message, event.app))
        self._count_rejected(app, reason)

    def _count_rejected(self, app: str | None, reason: str) -> None:
        self._total.rejected[reason] += 1
        if app is not None:
            self._app_counts(app).rejected[reason] += 1

    def _app_counts(self, app: str) -> _Counts:
        counts = self._counts.get(app)
        if counts is None:
            counts = self._counts[app] = _Counts()
        return counts


def _validate(items: Sequence[Any]) -> tuple[list[tuple[int, Event]], list[Rejection]]:
    """Events with their batch positions, and the refused ones with reasons."""
    if all(isinstance(item, Event) for item in items):
        return list(enumerate(items)), []
    try:
        # One call into pydantic-core for the whole batch: the common, all-valid case.
        return list(enumerate(_EVENTS.validate_python(items))), []
    except ValidationError:
        pass
    events: list[tuple[int, Event]] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(items):
        if isinstance(item, Event):
            events.append((index, item))
            continue
        try:
            events.append((index, Event.model_validate(item)))
        except ValidationError as exc:
            event_id = item.get("event_id") if isinstance(item, dict) else None
            app = item.get("app") if isinstance(item, dict) else None
            rejected.append(Rejection(
                index, event_id if isinstance(event_id, str) else None, *_explain(exc),
                app=app if isinstance(app, str) else None))
    return events, rejected


def _explain(exc: ValidationError) -> tuple[str, str]:
    """The reason code of the first error, and every error as 'field: message'."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    loc = first.get("loc", ())
    kind = str(first.get("type", ""))
    if loc[:1] == ("timestamp",):
        reason = "bad_timestamp"
    elif loc[:1] == ("attributes",) and kind == "value_error":
        reason = "bad_attribute"
    else:
        reason = _REASONS.get(kind, "wrong_type")
    message = "; ".join(
        f"{'.'.join(str(part) for part in e.get('loc', ())) or 'event'}: {e.get('msg', '')}"
        for e in errors
    )
    return reason, message
