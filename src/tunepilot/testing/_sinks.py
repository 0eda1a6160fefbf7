"""Stand-ins for the online optimizer behind a collector: one records, one fails on cue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tunepilot.online import AppConfig, Event, Variant


class RecordingSink:
    """Takes events as the optimizer would and keeps them, to see exactly what arrived.

    Args:
        apps: the applications it knows; events for others are refused by the collector.
        variants: variant id -> model of every app; the first is the baseline.

    Example:
        .. code-block:: python

            import time

            from tunepilot.online._collector import Collector
            from tunepilot.testing import RecordingSink

            sink = RecordingSink(apps=["bot"])
            Collector(sink).submit([{"app": "bot", "variant": "small", "event_id": "e-1",
                                     "timestamp": time.time()}])
            assert [e.event_id for e in sink.events] == ["e-1"]
    """

    def __init__(
        self,
        apps: Sequence[str] = ("bot",),
        variants: Mapping[str, str] | None = None,
    ) -> None:
        self.events: list[Event] = []
        self._apps = list(apps)
        self._variants = dict(variants or {"big": "big", "small": "small"})

    def ingest(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    def apps(self) -> list[str]:
        return self._apps

    def app_config(self, app: str) -> AppConfig:
        return AppConfig(
            name=app,
            baseline=next(iter(self._variants)),
            variants=[Variant(id=vid, model=model) for vid, model in self._variants.items()],
        )


class FailingSink(RecordingSink):
    """Fault injection: the next ``failures`` ingest calls raise, as a broken optimizer would."""

    def __init__(self, failures: int, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.failures = failures

    def ingest(self, events: Sequence[Event]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("injected ingest failure")
        super().ingest(events)
