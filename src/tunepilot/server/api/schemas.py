"""Request and response bodies of the REST API (the OpenAPI schema is made from these)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

#: The largest integer accepted anywhere in a body: beyond it databases and floats disagree.
MAX_INT = 2**63 - 1
MAX_DEPTH = 32
INT32 = 2**31 - 1


def clean_json(value: Any, depth: int = 0) -> Any:
    """Reject what does not come back the same from JSON and the databases.

    NaN, infinities, NUL characters, lone surrogates, integers beyond 64 bits, keys
    that are not text, and values JSON has no type for (dates, bytes, sets: YAML
    makes them) are refused with a message, whichever way the value came in.
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite (no NaN or Infinity)")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ValueError(f"integers must be within ±{MAX_INT}")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (a lone surrogate such as \\ud800 "
                             "cannot be stored)") from None
    elif not isinstance(value, (dict, list, int, float, type(None))):
        # ValueError, not TypeError: pydantic turns only ValueError into a 422.
        raise ValueError(  # noqa: TRY004
            f"a {type(value).__name__} is not a JSON value; write it as text or a number")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(  # noqa: TRY004
                    f"keys must be text, got {type(key).__name__} {key!r:.40}")
            clean_json(key, depth + 1)
            clean_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            clean_json(item, depth + 1)
    return value


def clean_text(value: str) -> str:
    """Text JSON and the databases give back the same: no NUL, no lone surrogate."""
    clean_json(value)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(clean_json)]
Text = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(clean_text)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(clean_text)]
#: A sweep's name, an agent's label.
Label = Annotated[str, StringConstraints(max_length=256), AfterValidator(clean_text)]
SweepState = Literal["pending", "running", "paused", "finished", "failed", "canceled"]
RunState = Literal["running", "finished", "failed", "stopped"]
Method = Literal["random", "grid", "bayes", "llm", "blend"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: A client's id for one request, the same on its retries.
RequestId = Annotated[
    str, StringConstraints(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
]


class SweepCreate(_Body):
    """A new sweep: a W&B sweep config, its project, and whether to start it now."""

    config: JsonObject = Field(
        description="W&B sweep config: method, metric, parameters, early_terminate, run_cap...; "
        "with method blend, a parameter may carry prior and confidence (low, medium, high), "
        "and prior_from may name earlier sweeps to start from.",
        examples=[{"method": "random", "metric": {"name": "loss"},
                   "parameters": {"lr": {"min": 0.0001, "max": 0.1}}}],
    )
    project: Name = "uncategorized"
    name: Label | None = None
    description: Text | None = None
    start: bool = Field(default=True, description="Start handing out runs at once.")
    request_id: RequestId | None = Field(
        default=None,
        description="A unique id for this request; a retry with the same id returns the same "
        "sweep.",
    )


class SweepUpdate(_Body):
    """Fields of a sweep that may change; absent fields stay as they are."""

    name: Label | None = None
    description: Text | None = None
    run_cap: Annotated[int, Field(ge=1, le=INT32)] | None = None


class MetricOut(BaseModel):
    name: str | None
    goal: str
    target: float | None


class SweepOut(BaseModel):
    """A sweep as the API shows it."""

    id: str
    project: str
    name: str | None
    description: str | None
    method: str
    state: str
    state_reason: str | None
    study_name: str
    metric: MetricOut
    run_cap: int | None
    n_suggested: int
    best_run_id: str | None
    best_value: float | None
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SweepPage(BaseModel):
    items: list[SweepOut]
    total: int
    limit: int
    offset: int


class SuggestIn(_Body):
    """Who asks (an agent name shown on the run, host:pid in the SDK), and a request id."""

    agent: Label | None = None
    request_id: RequestId | None = Field(
        default=None,
        description="A unique id for this request; a retry with the same id returns the same run.",
    )


class Suggestion(BaseModel):
    """A leased configuration; keep it alive with heartbeats every ``heartbeat_interval`` s."""

    run_id: str
    sweep_id: str
    trial_number: int
    attempt: int
    config: dict[str, Any]
    heartbeat_interval: float


class RunOut(BaseModel):
    """A run as the API shows it."""

    id: str
    sweep_id: str
    trial_number: int
    attempt: int
    retry_of: str | None
    state: str
    agent: str | None
    config: dict[str, Any]
    summary: dict[str, Any]
    value: float | None
    n_rows: int
    stop_requested: bool
    stop_reason: str | None
    fail_reason: str | None
    created_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None


class RunPage(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class LogRow(_Body):
    """One ``log()`` call: metrics and an optional step (the next step by default)."""

    step: Annotated[int, Field(ge=0, le=INT32)] | None = None
    metrics: JsonObject


class LogIn(_Body):
    rows: Annotated[list[LogRow], Field(min_length=1, max_length=1000)]
    request_id: RequestId | None = Field(
        default=None,
        description="A unique id for this request; a retry with the same id stores nothing "
        "more and answers the run's current signal.",
    )


class SummaryIn(_Body):
    summary: JsonObject


class StopIn(_Body):
    reason: Text | None = None


class FinishIn(_Body):
    """How the run ended; ``summary`` is merged into the summary built from logged rows."""

    state: Literal["finished", "failed", "stopped"] = "finished"
    summary: JsonObject | None = None
    reason: Text | None = None


class Signal(BaseModel):
    """The answer to a heartbeat or a log: whether the agent should stop the run."""

    state: str
    stop: bool
    reason: str | None


class MetricRowOut(BaseModel):
    step: int
    data: dict[str, Any]
    created_at: datetime


class StatsOut(BaseModel):
    sweep_id: str
    state: str
    counts: dict[str, int]
    n_runs: int
    n_suggested: int
    metric: str | None
    goal: str
    best_run_id: str | None
    best_value: float | None
    best_config: dict[str, Any] | None
    best_trial_number: int | None


class ImportanceOut(BaseModel):
    sweep_id: str
    evaluator: str
    importances: dict[str, float]


class CoordinateRow(BaseModel):
    run_id: str
    trial_number: int
    params: dict[str, Any]
    value: float | None


class ParallelOut(BaseModel):
    sweep_id: str
    params: list[str]
    rows: list[CoordinateRow]


class HistoryPoint(BaseModel):
    trial_number: int
    run_id: str
    value: float
    best_value: float


class HistoryOut(BaseModel):
    sweep_id: str
    goal: str
    points: list[HistoryPoint]


class Problem(BaseModel):
    """An error: ``reason`` is a short code for 409 answers."""

    detail: str
    reason: str | None = None
