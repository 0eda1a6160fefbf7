"""Routes under ``/api/v1/sweeps``: CRUD, lifecycle, suggest, runs and analysis."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from tunepilot.server._analysis import Evaluator
from tunepilot.server.api import schemas
from tunepilot.server.api.deps import AnalysisDep, ContextDep, Limit, Offset, SweepsDep
from tunepilot.server.api.views import run_out, sweep_out, sweep_page
from tunepilot.server.db import repository

router = APIRouter(prefix="/sweeps", tags=["sweeps"])
_CONFLICT: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.Problem, "description": "No such sweep."},
    409: {"model": schemas.Problem, "description": "Not possible in the sweep's state."},
}
SweepId = Annotated[str, "sweep id"]


@router.post("", status_code=201, response_model=schemas.SweepOut,
             responses={409: {"model": schemas.Problem,
                              "description": "The request id made a sweep of another config."},
                        422: {"model": schemas.Problem}})
def create_sweep(body: schemas.SweepCreate, sweeps: SweepsDep, ctx: ContextDep) -> Any:
    """Create a sweep from a W&B sweep config (and its Optuna study)."""
    sweep = sweeps.create(body.config, project=body.project, name=body.name,
                          description=body.description, start=body.start,
                          request_id=body.request_id)
    return sweep_out(ctx, sweep)


@router.get("", response_model=schemas.SweepPage)
def list_sweeps(
    ctx: ContextDep,
    limit: Limit = 50,
    offset: Offset = 0,
    project: Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")] = None,
    state: schemas.SweepState | None = None,
    method: schemas.Method | None = None,
) -> Any:
    """Sweeps, newest first, filtered by project, state and method."""
    with ctx.db.session() as session:
        items, total = repository.list_sweeps(
            session, project=project, state=state, method=method, limit=limit, offset=offset
        )
        return sweep_page(session, items, total, limit, offset)


@router.get("/{sweep_id}", response_model=schemas.SweepOut, responses=_CONFLICT)
def get_sweep(sweep_id: str, ctx: ContextDep) -> Any:
    """One sweep."""
    with ctx.db.session() as session:
        return sweep_out(ctx, repository.get_sweep(session, sweep_id), session=session)


@router.patch("/{sweep_id}", response_model=schemas.SweepOut, responses=_CONFLICT)
def update_sweep(
    sweep_id: str, body: schemas.SweepUpdate, sweeps: SweepsDep, ctx: ContextDep
) -> Any:
    """Change the name, description or run cap."""
    return sweep_out(ctx, sweeps.update(sweep_id, body.model_dump(exclude_unset=True)))


@router.delete("/{sweep_id}", status_code=204, responses=_CONFLICT)
def delete_sweep(sweep_id: str, sweeps: SweepsDep) -> Response:
    """Delete the sweep, its runs, their metrics and its Optuna study."""
    sweeps.delete(sweep_id)
    return Response(status_code=204)


def _lifecycle(action: str) -> None:
    def endpoint(sweep_id: str, sweeps: SweepsDep, ctx: ContextDep) -> Any:
        return sweep_out(ctx, sweeps.transition(sweep_id, action))

    endpoint.__name__ = f"{action}_sweep"
    endpoint.__doc__ = {
        "start": "Start a pending sweep.",
        "pause": "Stop handing out runs until resumed; running runs go on.",
        "resume": "Hand out runs again after a pause.",
        "finish": "End the sweep; running runs may still finish and report.",
        "cancel": "End the sweep and ask every running run to stop.",
    }[action]
    router.post(f"/{{sweep_id}}/{action}", response_model=schemas.SweepOut,
                responses=_CONFLICT)(endpoint)


for _action in ("start", "pause", "resume", "finish", "cancel"):
    _lifecycle(_action)


@router.post("/{sweep_id}/suggest", response_model=schemas.Suggestion, status_code=201,
             responses=_CONFLICT)
def suggest(sweep_id: str, sweeps: SweepsDep, body: schemas.SuggestIn | None = None) -> Any:
    """Lease the next configuration as a new run.

    409 with ``reason`` ``paused``, ``not_started``, ``finished``, ``canceled``,
    ``run_cap_reached`` or ``grid_exhausted`` when there is nothing to hand out.
    """
    lease = sweeps.suggest(sweep_id, agent=body.agent if body else None,
                           request_id=body.request_id if body else None)
    run = lease.run
    return schemas.Suggestion(
        run_id=run.id, sweep_id=run.sweep_id, trial_number=run.trial_number,
        attempt=run.attempt, config=run.config, heartbeat_interval=lease.heartbeat_interval,
    )


@router.get("/{sweep_id}/runs", response_model=schemas.RunPage, responses=_CONFLICT)
def list_runs(
    sweep_id: str, ctx: ContextDep, limit: Limit = 100, offset: Offset = 0,
    state: schemas.RunState | None = None,
) -> Any:
    """The sweep's runs by trial number."""
    with ctx.db.session() as session:
        repository.get_sweep(session, sweep_id)
        items, total = repository.list_runs(
            session, sweep_id, state=state, limit=limit, offset=offset
        )
        return schemas.RunPage(items=[run_out(r) for r in items], total=total,
                               limit=limit, offset=offset)


@router.get("/{sweep_id}/stats", response_model=schemas.StatsOut, responses=_CONFLICT)
def stats(sweep_id: str, analysis: AnalysisDep) -> Any:
    """Run counts by state, and the best run with its value and config."""
    return analysis.stats(sweep_id)


@router.get("/{sweep_id}/importance", response_model=schemas.ImportanceOut, responses=_CONFLICT)
def importance(sweep_id: str, analysis: AnalysisDep, evaluator: Evaluator = "default") -> Any:
    """Parameter importance by Optuna's evaluators (over internal parameter values)."""
    return analysis.importance(sweep_id, evaluator)


@router.get("/{sweep_id}/parallel-coordinates", response_model=schemas.ParallelOut,
            responses=_CONFLICT)
def parallel_coordinates(sweep_id: str, analysis: AnalysisDep) -> Any:
    """Each finished run's config (dotted names) and value."""
    return analysis.parallel_coordinates(sweep_id)


@router.get("/{sweep_id}/history", response_model=schemas.HistoryOut, responses=_CONFLICT)
def history(sweep_id: str, analysis: AnalysisDep) -> Any:
    """Optimization history: value and best-so-far by trial number."""
    return analysis.history(sweep_id)
