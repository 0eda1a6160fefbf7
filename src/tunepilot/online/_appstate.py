"""What the online optimizer holds per application and segment, and how it is stored.

:class:`AppState` is one application's windows, segments, decisions and counters;
:class:`SegmentState` one segment's leader, candidates, rollout and guards, with the
JSON form the state store keeps (windows are not stored: they refill from events).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from tunepilot.online._config import AppConfig
from tunepilot.online._decisions import Decision, Rollout
from tunepilot.online._strategies import Strategy, make_strategy
from tunepilot.online._tuning import Tuner
from tunepilot.online._windows import Windows

__all__ = ["MAX_DECISIONS", "AppState", "SegmentState"]

#: Decisions kept in memory per app (all of them go to the state store).
MAX_DECISIONS = 5_000


class SegmentState:
    __slots__ = ("incumbent", "eliminated", "rollout", "explore", "last_guard", "reference",
                 "last_drift", "last_anomaly", "strategy", "split", "history",
                 "last_constraints")

    def __init__(self, incumbent: str, strategy: Strategy) -> None:
        self.incumbent = incumbent
        self.eliminated: dict[str, float] = {}
        self.rollout: Rollout | None = None
        self.explore: dict[str, float] = {}
        self.last_guard: float | None = None
        self.reference: list[float] = []
        self.last_drift: float | None = None
        self.last_anomaly: float | None = None
        self.last_constraints: float | None = None
        self.strategy = strategy
        self.split: dict[str, float] = {incumbent: 1.0}
        self.history: list[str] = []

    def to_json(self) -> dict[str, Any]:
        return {
            "incumbent": self.incumbent, "eliminated": self.eliminated,
            "rollout": self.rollout.model_dump(mode="json") if self.rollout else None,
            "explore": self.explore, "last_guard": self.last_guard,
            "reference": self.reference[-512:], "history": self.history[-20:],
        }

    def load(self, data: dict[str, Any]) -> None:
        self.incumbent = data["incumbent"]
        self.eliminated = {k: float(v) for k, v in data.get("eliminated", {}).items()}
        rollout = data.get("rollout")
        self.rollout = Rollout.model_validate(rollout) if rollout else None
        self.explore = {k: float(v) for k, v in data.get("explore", {}).items()}
        self.last_guard = data.get("last_guard")
        self.reference = list(data.get("reference", []))
        self.history = list(data.get("history", []))


class AppState:
    def __init__(self, config: AppConfig) -> None:
        policy = config.policy
        self.config = config
        self.windows = Windows(bucket_s=policy.bucket_s, window_s=policy.window_s,
                               retention_s=policy.retention_s)
        self.segments: dict[str, SegmentState] = {}
        self.paused = False
        self.seq = 0
        self.decisions: deque[Decision] = deque(maxlen=MAX_DECISIONS)
        self.origins: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.split: dict[str, float] = {config.baseline: 1.0}
        self.unknown_variant = 0
        self.orphan_feedback = 0
        self.tuner: Tuner | None = None
        self.last_analysis: float | None = None
        self.variant_ids = {v.id for v in config.variants}
        # Newest call time per (segment, variant): a gate needs the candidate served now.
        self.last_call: dict[tuple[str, str], float] = {}

    def segment(self, name: str) -> SegmentState:
        seg = self.segments.get(name)
        if seg is None:
            seg = self.segments[name] = SegmentState(self.config.baseline,
                                                 make_strategy(self.config.policy.strategy))
        return seg
