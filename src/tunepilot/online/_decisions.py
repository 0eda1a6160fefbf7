"""Decisions and rollouts: what the optimizer did, why, and where a change stands."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Decision", "DecisionKind", "GateResult", "Rollout", "RolloutState"]

DecisionKind = Literal[
    "promote",    # a strategy proposes a variant; a rollout starts (or restarts)
    "gate",       # a canary step was judged: pass / fail / inconclusive
    "complete",   # the last step passed; the candidate now leads its segment
    "rollback",   # a rollout or a leader failed a gate, a guard or a constraint
    "eliminate",  # a variant proved worse and leaves exploration for a while
    "drift",      # a leader's quality distribution moved
    "anomaly",    # a metric jumped against its own recent history
    "tune",       # the tuning study created a variant to try
    "pause",
    "resume",
    "abort",
]

RolloutState = Literal["running", "paused", "completed", "rolled_back", "aborted"]


class Decision(BaseModel):
    """One decision with the evidence behind it (metric values, sample sizes, statistics).

    Example:
        >>> d = Decision(id="bot-1", app="bot", segment="*", kind="promote", time=0.0,
        ...              variant="small", baseline="big", reason="cheaper, quality non-inferior",
        ...              evidence={"quality": {"delta": -0.003, "candidate_n": 180}})
        >>> d.model_dump(mode="json")["evidence"]["quality"]["candidate_n"]
        180
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    app: str
    segment: str
    kind: DecisionKind
    time: float
    variant: str | None = None
    baseline: str | None = None
    verdict: Literal["pass", "fail", "inconclusive"] | None = None
    reason: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)


class GateResult(BaseModel):
    """The verdict of one gate of a rollout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: float
    step: int
    fraction: float
    verdict: Literal["pass", "fail", "inconclusive"]
    reason: str
    decision_id: str


class Rollout(BaseModel):
    """A canary rollout of ``candidate`` against ``baseline`` (the segment's leader).

    ``steps`` are the candidate's traffic shares; ``step`` indexes the current one.

    Example:
        >>> r = Rollout(app="bot", segment="*", candidate="small", baseline="big",
        ...             steps=[0.05, 0.25, 0.5, 1.0], started_at=0.0, step_started_at=0.0,
        ...             updated_at=0.0, decision_id="bot-1")
        >>> r.fraction, r.state
        (0.05, 'running')
    """

    model_config = ConfigDict(extra="forbid")

    app: str
    segment: str
    candidate: str
    baseline: str
    steps: list[float]
    step: int = 0
    state: RolloutState = "running"
    started_at: float
    step_started_at: float
    updated_at: float
    last_gate_at: float | None = None
    inconclusive_in_row: int = 0
    gates: list[GateResult] = Field(default_factory=list)
    decision_id: str
    reason: str = ""

    @property
    def fraction(self) -> float:
        """The candidate's current traffic share (0 once rolled back or aborted)."""
        if self.state in ("rolled_back", "aborted"):
            return 0.0
        return self.steps[min(self.step, len(self.steps) - 1)]

    @property
    def active(self) -> bool:
        """Whether the rollout still moves or holds traffic (running or paused)."""
        return self.state in ("running", "paused")
