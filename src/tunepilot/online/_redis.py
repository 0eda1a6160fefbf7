"""Events from a Redis stream, read in a consumer group so that none is lost on a crash."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

import orjson

from tunepilot._redact import redact
from tunepilot.online._collector import MAX_BATCH, Collector, Rejection

__all__ = ["RedisConsumer"]

_logger = logging.getLogger("tunepilot.online")


class RedisConsumer:
    """Reads events from a Redis stream into the collector; acknowledges only what it took.

    Producers add entries with a field ``event`` (one JSON event) or ``events`` (a JSON
    list)::

        XADD tunepilot:events * event '{"app": "bot", "variant": "a", "event_id": "1", ...}'

    The consumer reads with ``XREADGROUP`` in group ``group`` and sends ``XACK`` only
    after the collector took an entry's events. Entries a crashed consumer read but
    never acknowledged are taken over with ``XAUTOCLAIM`` once idle for
    ``claim_idle_ms``; its own unacknowledged entries (after a failed ingest, or a
    restart under the same ``consumer`` name) are read again first. When the group is
    gone (Redis restarted without its data, or the stream was deleted), it is made
    again, from the stream's first entry, and a warning says so. The collector's
    de-duplication makes such re-deliveries count once. Entries that are not JSON of
    that shape are counted as rejected (``malformed_entry``), logged and acknowledged:
    they cannot get better by waiting.

    Args:
        collector: where the events go.
        url: ``redis://host:port/db``.
        stream: the stream key.
        group: the consumer group (made, with the stream, if missing).
        consumer: this consumer's name; ``host-pid`` by default.
        count: most entries read per round.
        block_ms: how long one read waits for new entries.
        claim_idle_ms: idle time after which another consumer's pending entry is taken over.

    Example:
        .. code-block:: python

            consumer = RedisConsumer(collector, url="redis://127.0.0.1:6379/0")
            consumer.start()   # a daemon thread; consumer.stop() ends it
    """

    def __init__(
        self,
        collector: Collector,
        *,
        url: str,
        stream: str = "tunepilot:events",
        group: str = "tunepilot",
        consumer: str | None = None,
        count: int = 1000,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
    ) -> None:
        import redis

        self.collector = collector
        self.url = url
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.count = count
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self._redis = redis.Redis.from_url(url, socket_timeout=max(5.0, 2 * block_ms / 1000))
        self._own_pending = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._group_ready = False

    def ensure_group(self) -> None:
        """Create the stream and the group if missing; the group starts at the stream's beginning."""
        import redis

        try:
            self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def poll(self) -> int:
        """One round: take over stale entries, re-read own pending ones, then read new ones.

        Returns:
            How many stream entries were handled (acknowledged).

        Raises:
            redis.RedisError: Redis is unreachable; nothing was acknowledged.
            Exception: the collector failed; the entries stay pending for the next round.
        """
        import redis

        if not self._group_ready:
            self.ensure_group()
        try:
            return self._poll()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        _logger.warning(
            "redis stream %s: consumer group %s is gone (Redis restarted without its data, or "
            "the stream was deleted); making it again, from the stream's first entry",
            self.stream, self.group)
        self.collector.count("redis_group_recreated")
        self._group_ready = False
        self.ensure_group()
        self._own_pending = True
        return self._poll()

    def _poll(self) -> int:
        handled = 0
        claimed: Any = self._redis.xautoclaim(self.stream, self.group, self.consumer,
                                         min_idle_time=self.claim_idle_ms, start_id="0-0",
                                         count=self.count)
        entries = [e for e in claimed[1] if e[1] is not None]
        if entries:
            self.collector.count("redis_reclaimed", len(entries))
            handled += self._handle(entries)
        if self._own_pending:
            # Entries this consumer read before (a failed ingest or a restart) come first.
            pending = self._read("0", block=None)
            if pending:
                handled += self._handle(pending)
            else:
                self._own_pending = False
        new = self._read(">", block=self.block_ms)
        if new:
            handled += self._handle(new)
        return handled

    def start(self) -> None:
        """Consume in a daemon thread until :meth:`stop`; Redis outages are retried."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tunepilot-redis", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self._redis.close()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.poll()
                if failures:
                    _logger.info("redis stream %s: consuming again", self.stream)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - keep consuming; the failure is logged
                failures += 1
                self.collector.count("redis_errors")
                if failures == 1 or failures % 60 == 0:
                    _logger.warning("redis stream %s at %s: %s (retrying)", self.stream,
                                    redact(self.url), redact(str(exc)))
                self._own_pending = True
                self._stop.wait(min(5.0, 0.1 * 2 ** min(failures, 6)))

    def _read(self, start: str, *, block: int | None) -> list[tuple[bytes, dict[bytes, bytes]]]:
        reply: Any = self._redis.xreadgroup(self.group, self.consumer, {self.stream: start},
                                            count=self.count, block=block)
        if not reply:
            return []
        # RESP2 gives [[stream, entries]], RESP3 a {stream: [entries]} mapping.
        groups = reply.items() if isinstance(reply, dict) else reply
        out: list[tuple[bytes, dict[bytes, bytes]]] = []
        for _, entries in groups:
            out.extend(e for e in entries if e[1])
        return out

    def _handle(self, entries: Sequence[tuple[Any, dict[bytes, bytes]]]) -> int:
        items: list[Any] = []
        malformed: list[Rejection] = []
        for entry_id, fields in entries:
            try:
                items.extend(_entry_events(fields))
            except ValueError as exc:
                name = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                _logger.warning("redis stream %s: entry %s refused: %s", self.stream, name, exc)
                malformed.append(Rejection(len(malformed), None, "malformed_entry", f"{name}: {exc}"))
        for start in range(0, len(items), MAX_BATCH):
            result = self.collector.submit(items[start:start + MAX_BATCH])
            for rejection in result.rejected[:3]:
                _logger.warning("redis stream %s: event %s refused: %s: %s", self.stream,
                                rejection.event_id, rejection.reason, rejection.message)
        if malformed:
            self.collector.reject(malformed)
        ids = [entry_id for entry_id, _ in entries]
        self._redis.xack(self.stream, self.group, *ids)
        self.collector.count("redis_entries", len(ids))
        return len(ids)


def _entry_events(fields: dict[bytes, bytes]) -> list[Any]:
    if b"event" in fields:
        try:
            return [orjson.loads(fields[b"event"])]
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"field 'event' is not JSON: {exc}") from None
    if b"events" in fields:
        try:
            events = orjson.loads(fields[b"events"])
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"field 'events' is not JSON: {exc}") from None
        if not isinstance(events, list):
            raise ValueError("field 'events' must be a JSON list of events")
        return list(events)
    raise ValueError("an entry needs a field 'event' (one JSON event) or 'events' (a JSON list)")
