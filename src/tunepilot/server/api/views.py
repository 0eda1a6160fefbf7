"""Rows to response bodies."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tunepilot.server._context import ServerContext
from tunepilot.server.api import schemas
from tunepilot.server.db import Run, Sweep, repository


def run_out(run: Run) -> schemas.RunOut:
    return schemas.RunOut(
        id=run.id, sweep_id=run.sweep_id, trial_number=run.trial_number, attempt=run.attempt,
        retry_of=run.retry_of, state=run.state, agent=run.agent, config=run.config,
        summary=run.summary or {}, value=run.value, n_rows=run.n_rows,
        stop_requested=run.stop_requested, stop_reason=run.stop_reason,
        fail_reason=run.fail_reason, created_at=run.created_at, heartbeat_at=run.heartbeat_at,
        finished_at=run.finished_at,
    )


def _sweep(sweep: Sweep, project: str) -> schemas.SweepOut:
    return schemas.SweepOut(
        id=sweep.id, project=project, name=sweep.name, description=sweep.description,
        method=sweep.method, state=sweep.state, state_reason=sweep.state_reason,
        study_name=sweep.study_name,
        metric=schemas.MetricOut(name=sweep.metric_name, goal=sweep.metric_goal,
                                 target=sweep.metric_target),
        run_cap=sweep.run_cap, n_suggested=sweep.n_suggested, best_run_id=sweep.best_run_id,
        best_value=sweep.best_value, config=sweep.config, created_at=sweep.created_at,
        updated_at=sweep.updated_at,
    )


def sweep_out(
    ctx: ServerContext, sweep: Sweep, *, session: Session | None = None
) -> schemas.SweepOut:
    if session is not None:
        names = repository.project_names(session, [sweep.project_id])
    else:
        with ctx.db.session() as own:
            names = repository.project_names(own, [sweep.project_id])
    return _sweep(sweep, names.get(sweep.project_id, "?"))


def sweep_page(
    session: Session, items: list[Sweep], total: int, limit: int, offset: int
) -> schemas.SweepPage:
    names = repository.project_names(session, sorted({s.project_id for s in items}))
    return schemas.SweepPage(
        items=[_sweep(s, names.get(s.project_id, "?")) for s in items],
        total=total, limit=limit, offset=offset,
    )
