"""Routes under ``/api/v1/runs``: heartbeat, log, finish, stop, and reading a run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tunepilot.server.api import schemas
from tunepilot.server.api.deps import ContextDep, Limit, Offset, RunsDep
from tunepilot.server.api.views import run_out
from tunepilot.server.db import repository

router = APIRouter(prefix="/runs", tags=["runs"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.Problem, "description": "No such run."},
    409: {"model": schemas.Problem,
          "description": "The run is no longer running, or a logged step is before its last."},
}


@router.get("/{run_id}", response_model=schemas.RunOut, responses=_ERRORS)
def get_run(run_id: str, ctx: ContextDep) -> Any:
    """One run: config, state, summary, lease."""
    with ctx.db.session() as session:
        return run_out(repository.get_run(session, run_id))


@router.post("/{run_id}/heartbeat", response_model=schemas.Signal, responses=_ERRORS)
def heartbeat(run_id: str, runs: RunsDep) -> Any:
    """Keep the run's lease; ``stop: true`` asks the agent to stop the run."""
    return runs.heartbeat(run_id).__dict__


@router.post("/{run_id}/log", response_model=schemas.Signal, responses=_ERRORS)
def log(run_id: str, body: schemas.LogIn, runs: RunsDep) -> Any:
    """Append metric rows; the summary keeps each key's last value.

    A row at the last row's step is merged into it (as W&B merges logs to one step);
    a step before the last row's is refused. With a ``request_id``, a retried request
    is stored once.
    """
    rows = [(row.step, row.metrics) for row in body.rows]
    return runs.log(run_id, rows, request_id=body.request_id).__dict__


@router.get("/{run_id}/metrics", response_model=list[schemas.MetricRowOut], responses=_ERRORS)
def metrics(run_id: str, ctx: ContextDep, limit: Limit = 1000, offset: Offset = 0) -> Any:
    """The run's logged rows in logging order."""
    with ctx.db.session() as session:
        repository.get_run(session, run_id)
        return [
            schemas.MetricRowOut(step=r.step, data=r.data, created_at=r.created_at)
            for r in repository.metric_rows(session, run_id, limit=limit, offset=offset)
        ]


@router.patch("/{run_id}/summary", response_model=schemas.RunOut, responses=_ERRORS)
def update_summary(run_id: str, body: schemas.SummaryIn, runs: RunsDep) -> Any:
    """Merge keys into the summary of a running run without logging a row."""
    return run_out(runs.update_summary(run_id, body.summary))


@router.post("/{run_id}/finish", response_model=schemas.RunOut, responses=_ERRORS)
def finish(run_id: str, body: schemas.FinishIn, runs: RunsDep) -> Any:
    """End the run with a state and a summary (the sweep metric is read from it)."""
    return run_out(runs.finish(run_id, state=body.state, summary=body.summary,
                               reason=body.reason))


@router.post("/{run_id}/stop", response_model=schemas.RunOut, responses=_ERRORS)
def stop(run_id: str, runs: RunsDep, body: schemas.StopIn | None = None) -> Any:
    """Ask the run's agent to stop it (SIGTERM, then SIGKILL after a grace period)."""
    reason = body.reason if body and body.reason else "stop requested"
    return run_out(runs.request_stop(run_id, reason))
