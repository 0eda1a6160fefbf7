"""The application side: choose a variant per request from a cached split, record outcomes."""

from __future__ import annotations

import atexit
import hashlib
import logging
import math
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tunepilot.exceptions import ClientError
from tunepilot.online._config import AppConfig, Variant

__all__ = ["Client"]

DEFAULT_URL = "http://127.0.0.1:8000"
_logger = logging.getLogger("tunepilot.online")
AttributeValue = str | int | float | bool


@dataclass(frozen=True)
class _Snapshot:
    fetched_at: float              # time.monotonic() of the fetch
    variants: dict[str, Variant]
    ranges: list[tuple[float, str]]  # cumulative upper bounds, variants in id order
    config: AppConfig | None = None  # set when the app splits traffic by request attributes
    segments: dict[str, list[tuple[float, str]]] = field(default_factory=dict)


def _ranges(split: Mapping[str, float]) -> list[tuple[float, str]]:
    # Id order, not the server's order: the same split always maps a key the same way.
    total = sum(w for w in split.values() if w > 0)
    if total <= 0:
        return []
    out, acc = [], 0.0
    for variant_id in sorted(split):
        weight = split[variant_id]
        if weight > 0:
            acc += weight / total
            out.append((acc, variant_id))
    return out


def _unit(app: str, key: str) -> float:
    """A uniform number in [0, 1) fixed by the request key (same on every machine)."""
    digest = hashlib.blake2b(f"{app}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Client:
    """Picks a variant for each request and reports how the call went, never waiting on the server.

    The current split is fetched in a background thread every ``ttl`` seconds and
    cached; :meth:`choose` reads only the cache. When the server cannot be reached the
    last split stays in use and a warning says how old it is (one per outage, and a
    line when the server is back). Until a first split arrives (an application that
    starts while the server is away), :meth:`choose` returns the ``default`` variant at
    once; without one, only the first :meth:`choose` waits, up to ``timeout`` seconds,
    and every call raises until a split arrives.

    With a ``key`` (a user or session id) the choice is sticky: the key is hashed onto
    the split's cumulative shares, so the same key gets the same variant as long as the
    split does not move past it. Without a key each call draws at random.

    :meth:`record` only appends to a buffer; a background thread sends batches of up to
    ``batch_size`` events every ``flush_interval`` seconds, retrying while the server is
    away. When ``max_buffer`` events wait, the oldest are dropped and counted
    (``dropped``) with a warning. Events the server refuses are logged with the reason.

    Args:
        app: the application's name.
        default: the variant to use until a first split is fetched: the app's baseline,
            as a :class:`~tunepilot.online.Variant` or its fields
            (``{"id": "big", "model": "gpt-4.1"}``).
        url: server URL; ``TUNEPILOT_URL`` or ``http://127.0.0.1:8000`` by default.
        token: API token; ``TUNEPILOT_TOKEN`` by default.
        ttl: seconds between refreshes of the split.
        timeout: seconds one HTTP request may take (and the first choose may wait).
        flush_interval: seconds between batches of recorded events.
        batch_size: most events per request.
        max_buffer: most events kept while the server is unreachable.
        transport: an httpx transport (tests, in-process servers).

    Example:
        .. code-block:: python

            from tunepilot.online import Client

            client = Client("support-bot", default={"id": "big", "model": "gpt-4.1"})
            variant = client.choose({"prompt_length": 812}, key=user_id)
            answer = call_llm(model=variant.model, temperature=variant.temperature)
            client.record(variant, latency_ms=840, input_tokens=812, output_tokens=95)
    """

    def __init__(
        self,
        app: str,
        *,
        default: Variant | Mapping[str, Any] | None = None,
        url: str | None = None,
        token: str | None = None,
        ttl: float = 5.0,
        timeout: float = 2.0,
        flush_interval: float = 0.5,
        batch_size: int = 500,
        max_buffer: int = 100_000,
        transport: Any = None,
    ) -> None:
        import httpx

        if not app:
            raise ValueError("app must name an application")
        if ttl <= 0 or timeout <= 0 or flush_interval <= 0:
            raise ValueError("ttl, timeout and flush_interval must be positive seconds")
        if not 1 <= batch_size <= 10_000 or max_buffer < batch_size:
            raise ValueError("batch_size must lie in 1..10000 and max_buffer must be at least batch_size")
        self.app = app
        self.default = (default if default is None or isinstance(default, Variant)
                        else Variant.model_validate(dict(default)))
        self.url = (url or os.environ.get("TUNEPILOT_URL") or DEFAULT_URL).rstrip("/")
        self.token = token or os.environ.get("TUNEPILOT_TOKEN") or None
        self.ttl = ttl
        self.timeout = timeout
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  transport=transport)
        self._snapshot: _Snapshot | None = None
        self._first = threading.Event()
        self._waited = False
        self._outage_since: float | None = None
        self._last_error = ""
        self._buffer: deque[dict[str, Any]] = deque()
        self._buffer_lock = threading.Condition()
        self._in_flight = 0
        self._closed = threading.Event()
        self._send_failing = False
        self.sent = 0
        self.refused = 0
        self._refused_here = 0  # of ``refused``: events that could not be sent as JSON
        self.dropped = 0
        self._refresher = threading.Thread(target=self._refresh_loop, daemon=True,
                                           name=f"tunepilot-split-{app}")
        self._sender = threading.Thread(target=self._send_loop, daemon=True,
                                        name=f"tunepilot-record-{app}")
        self._refresher.start()
        self._sender.start()
        atexit.register(self.close)

    # -- choosing -------------------------------------------------------------

    def choose(self, attributes: Mapping[str, AttributeValue] | None = None,
               key: str | None = None) -> Variant:
        """The variant for one request, from the cached split (no network on this path).

        Args:
            attributes: request attributes (prompt length, category...); when the app
                has context fields, the split of the request's segment is used.
            key: a request key (user, session) for a sticky choice.

        Returns:
            The chosen variant; ``default`` while no split was fetched yet.

        Raises:
            ClientError: no split was ever obtained and there is no ``default`` (the
                first call waits up to ``timeout`` seconds for one, later calls not).
        """
        snapshot = self._snapshot
        if snapshot is None:
            if self.default is not None:
                return self.default
            if not self._waited:
                self._first.wait(self.timeout)
                self._waited = True
            snapshot = self._snapshot
            if snapshot is None:
                raise ClientError(
                    f"no traffic split for {self.app!r} yet: {self._last_error or 'no answer'} "
                    f"from {self.url} (is 'tunepilot server' running, and the app created?); "
                    "pass default= to Client to use the baseline meanwhile")
        ranges = snapshot.ranges
        if snapshot.config is not None and attributes is not None:
            # The request's segment has its own split; one the optimizer has not seen
            # yet goes to the baseline, as on the server.
            ranges = snapshot.segments.get(snapshot.config.segment(dict(attributes)),
                                           [(1.0, snapshot.config.baseline)])
        u = _unit(self.app, key) if key is not None else random.random()
        for bound, variant_id in ranges:
            if u < bound:
                return snapshot.variants[variant_id]
        return snapshot.variants[ranges[-1][1]]

    @property
    def split_age(self) -> float | None:
        """Seconds since the cached split was fetched (``None`` before the first)."""
        snapshot = self._snapshot
        return None if snapshot is None else time.monotonic() - snapshot.fetched_at

    def refresh(self) -> bool:
        """Fetch the split now; ``False`` (and the old split kept) when that failed."""
        try:
            response = self._http.get(f"/api/v1/online/apps/{self.app}/split")
            if response.status_code != 200:
                raise ClientError(_detail(response), status=response.status_code)
            data = response.json()
            variants = {v["id"]: Variant.model_validate(v) for v in data["variants"]}
            baseline = str(data["baseline"])
            split = {k: float(w) for k, w in data["split"].items() if k in variants}
            ranges = _ranges(split) or [(1.0, baseline)]
            config, segments = None, {}
            if data.get("context"):
                config = AppConfig(name=self.app, baseline=baseline, context=data["context"],
                                   variants=list(variants.values()))
                segments = {label: _ranges({k: float(w) for k, w in seg.items() if k in variants})
                            or [(1.0, baseline)]
                            for label, seg in data.get("segments", {}).items()}
            self._snapshot = _Snapshot(time.monotonic(), variants, ranges, config, segments)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the last split
            self._last_error = f"{type(exc).__name__}: {exc}"
            if self._outage_since is None:
                self._outage_since = time.monotonic()
                age = self.split_age
                _logger.warning(
                    "tunepilot: cannot refresh the split of %r from %s (%s); %s", self.app,
                    self.url, self._last_error,
                    "no split yet" if age is None else f"using the split from {age:.0f} s ago")
            return False
        if self._outage_since is not None:
            _logger.warning("tunepilot: split of %r refreshed again after %.0f s", self.app,
                            time.monotonic() - self._outage_since)
            self._outage_since = None
        self._first.set()
        return True

    def _refresh_loop(self) -> None:
        while not self._closed.is_set():
            self.refresh()
            self._closed.wait(self.ttl)

    # -- recording ------------------------------------------------------------

    def record(
        self,
        variant: Variant | str,
        *,
        latency_ms: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost: float | None = None,
        error: str | None = None,
        quality: float | None = None,
        feedback: int | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        key: str | None = None,
        event_id: str | None = None,
        timestamp: float | None = None,
    ) -> str:
        """Buffer one call's outcome; returns its event id (for late feedback).

        Nothing is sent here, and the server validates. Numpy (and torch) scalars are
        taken as the numbers they hold; an event that could not be sent as JSON at all
        (a NaN or infinite number, an attribute that is not text, a number or a
        boolean) is refused here, counted in ``refused`` and logged, and never
        blocks the events behind it.
        """
        event_id = event_id or uuid.uuid4().hex
        try:
            event: dict[str, Any] = {
                "app": self.app, "variant": variant.id if isinstance(variant, Variant) else variant,
                "event_id": event_id,
                "timestamp": time.time() if timestamp is None else _number("timestamp", timestamp),
            }
            for name, value in (("latency_ms", latency_ms), ("input_tokens", input_tokens),
                                ("output_tokens", output_tokens), ("cost", cost),
                                ("quality", quality), ("feedback", feedback)):
                if value is not None:
                    event[name] = _number(name, value)
            for name, text in (("error", error), ("key", key)):
                if text is not None:
                    event[name] = str(text)
            if attributes:
                event["attributes"] = {
                    str(k): _attribute(str(k), v) for k, v in attributes.items()
                }
        except (TypeError, ValueError) as exc:
            with self._buffer_lock:
                self.refused += 1
                self._refused_here += 1
                count = self._refused_here
            if count == 1 or count % 1000 == 0:
                _logger.warning("tunepilot: %d events of %r refused before sending; the "
                                "latest: %s", count, self.app, exc)
            return event_id
        self._enqueue(event)
        return event_id

    def feedback(self, event_id: str, variant: Variant | str, *, quality: float | None = None,
                 feedback: int | None = None) -> str:
        """Report quality or user feedback that arrived after the call was recorded."""
        return self.record(variant, quality=quality, feedback=feedback,
                           attributes={"feedback_for": event_id})

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every buffered event was sent (or refused); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._buffer_lock:
            self._buffer_lock.notify_all()
            while self._buffer or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._buffer_lock.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is buffered (up to ``timeout`` seconds) and stop the threads."""
        if self._closed.is_set():
            return
        flushed = self.flush(timeout)
        self._closed.set()
        with self._buffer_lock:
            self._buffer_lock.notify_all()
        self._sender.join(timeout)
        self._refresher.join(timeout)
        self._http.close()
        atexit.unregister(self.close)
        if not flushed:
            _logger.warning("tunepilot: %d events of %r were not sent before close",
                            len(self._buffer), self.app)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _enqueue(self, event: dict[str, Any]) -> None:
        with self._buffer_lock:
            self._buffer.append(event)
            if len(self._buffer) > self.max_buffer:
                self._buffer.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 10_000 == 0:
                    _logger.warning("tunepilot: %d events of %r dropped: the buffer of %d is full "
                                    "while %s cannot be reached", self.dropped, self.app,
                                    self.max_buffer, self.url)
            if len(self._buffer) >= self.batch_size:
                self._buffer_lock.notify_all()

    def _send_loop(self) -> None:
        backoff = 0.0
        while True:
            with self._buffer_lock:
                if not self._buffer:
                    if self._closed.is_set():
                        return
                    self._buffer_lock.wait(self.flush_interval)
                if not self._buffer:
                    continue
                batch = [self._buffer.popleft()
                         for _ in range(min(self.batch_size, len(self._buffer)))]
                self._in_flight = len(batch)
            sent = self._post(batch)
            with self._buffer_lock:
                self._in_flight = 0
                if not sent:
                    # Back to the front, in order: they go with the next attempt.
                    self._buffer.extendleft(reversed(batch))
                self._buffer_lock.notify_all()
            if sent:
                backoff = 0.0
            else:
                backoff = min(5.0, max(0.1, 2 * backoff))
                if self._closed.wait(backoff):
                    return

    def _post(self, batch: list[dict[str, Any]]) -> bool:
        try:
            response = self._http.post("/api/v1/online/events", json=batch)
        except Exception as exc:  # noqa: BLE001 - unreachable: keep the batch and retry
            return self._send_failed(f"{type(exc).__name__}: {exc}")
        if response.status_code not in (200, 422):
            return self._send_failed(f"HTTP {response.status_code}: {_detail(response)}")
        if self._send_failing:
            self._send_failing = False
            _logger.warning("tunepilot: sending events of %r works again", self.app)
        if response.status_code == 200:
            self.sent += len(batch)
            return True
        # 422: refused events are logged, not retried; the rest of the batch was taken.
        body = response.json()
        rejected = body.get("rejected") or []
        taken = int(body.get("accepted", 0)) + int(body.get("duplicates", 0))
        self.sent += taken
        self.refused += len(batch) - taken
        first = rejected[0] if rejected else {"reason": "batch", "message": body.get("detail")}
        _logger.warning("tunepilot: the server refused %d of %d events of %r; first: %s: %s",
                        len(batch) - taken, len(batch), self.app,
                        first.get("reason"), first.get("message"))
        return True

    def _send_failed(self, error: str) -> bool:
        self._last_error = error
        if not self._send_failing:
            self._send_failing = True
            _logger.warning("tunepilot: sending events of %r to %s failed (%s); they stay "
                            "buffered and are retried", self.app, self.url, error)
        return False


def _number(name: str, value: Any) -> int | float:
    """``value`` as a JSON number: numpy and torch scalars become Python ones."""
    if isinstance(value, str):
        raise TypeError(f"{name} is text ({value!r}); record a number")
    if not isinstance(value, (int, float)) and callable(getattr(value, "item", None)):
        value = value.item()
    if isinstance(value, int):  # bool included
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} is {value}; record finite numbers")
        return float(value)
    raise TypeError(f"{name} is a {type(value).__name__}; record a number")


def _attribute(name: str, value: Any) -> AttributeValue:
    """An attribute as JSON: text, a finite number or a boolean."""
    if not isinstance(value, (str, int, float)) and callable(getattr(value, "item", None)):
        value = value.item()  # numpy and torch scalars, np.bool_ included
    if isinstance(value, (str, bool)):
        return value
    try:
        return _number(f"attribute {name!r}", value)
    except TypeError:
        raise TypeError(f"attribute {name!r} is a {type(value).__name__}; attributes are "
                        "text, numbers or booleans") from None


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail"))
    except Exception:  # noqa: BLE001 - not JSON: the status says enough
        return response.reason_phrase or str(response.status_code)
