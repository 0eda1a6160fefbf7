"""JSON the dashboard's scripts poll: live stat cards and tables, and chart data.

Under ``/ui/api`` so the session cookie authenticates them; the charts come from
the same :class:`~tunepilot.server._analysis.AnalysisService` as ``/api/v1``.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, JSONResponse

from tunepilot.exceptions import ConflictError
from tunepilot.server.api.deps import AnalysisDep, ContextDep
from tunepilot.server.db import repository
from tunepilot.server.web import _sweeps as sweeps
from tunepilot.server.web._studies import StudyView

router = APIRouter(prefix="/ui", include_in_schema=False)

PageNo = Annotated[int, Query(ge=1, le=10**6)]
Sort = Annotated[str, Query(max_length=16, pattern=r"^[a-z]*$")]
Order = Annotated[str, Query(pattern=r"^(asc|desc)$")]
METRIC_ROWS = 10_000
#: How the SDK sends NaN and the infinities, which JSON has no numbers for.
NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})


def _page(at: sweeps.Page) -> dict[str, int]:
    return {"number": at.number, "pages": at.pages, "total": at.total}


def _unavailable(exc: ConflictError) -> JSONResponse:
    # A chart that cannot be drawn yet (too few runs) is a normal answer, not an error.
    return JSONResponse({"unavailable": str(exc), "reason": exc.reason})


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    """Plotly's JavaScript from the installed ``plotly`` package (no CDN)."""
    path = resources.files("plotly") / "package_data" / "plotly.min.js"
    return FileResponse(str(path), media_type="text/javascript",
                        headers={"cache-control": "public, max-age=86400"})


@router.get("/api/sweeps/{sweep_id}/live")
def sweep_live(sweep_id: str, ctx: ContextDep, sort: Sort = "trial", order: Order = "asc",
               page: PageNo = 1) -> dict[str, Any]:
    """Stat cards and one page of the runs table, for polling."""
    with ctx.db.session() as session:
        sweep = repository.get_sweep(session, sweep_id)
        state, reason = sweep.state, sweep.state_reason
        rows, at = sweeps.run_page(session, sweep_id, sort=sort, descending=order == "desc",
                                   page=page)
    return {"state": state, "state_reason": reason, "stats": sweeps.stats(ctx, sweep_id),
            "rows": rows, "page": _page(at), "actions": list(sweeps.ACTIONS.get(state, ()))}


@router.get("/api/sweeps/{sweep_id}/importance", response_model=None)
def sweep_importance(sweep_id: str, analysis: AnalysisDep) -> dict[str, Any] | JSONResponse:
    try:
        return analysis.importance(sweep_id)
    except ConflictError as exc:
        return _unavailable(exc)


@router.get("/api/sweeps/{sweep_id}/parallel")
def sweep_parallel(sweep_id: str, analysis: AnalysisDep) -> dict[str, Any]:
    data = analysis.parallel_coordinates(sweep_id)
    data["best_run_id"] = analysis.stats(sweep_id)["best_run_id"]
    return data


@router.get("/api/sweeps/{sweep_id}/history")
def sweep_history(sweep_id: str, analysis: AnalysisDep) -> dict[str, Any]:
    return analysis.history(sweep_id)


@router.get("/api/sweeps/{sweep_id}/llm")
def sweep_llm(sweep_id: str, ctx: ContextDep, page: PageNo = 1) -> dict[str, Any]:
    """The LLM tab as JSON: each LLM-guided trial's attributes, newest first, and totals."""
    with ctx.db.session() as session:
        sweep = repository.get_sweep(session, sweep_id)
    data = sweeps.llm_trials(ctx, sweep, page=page)
    return {**data, "page": _page(data["page"])}


@router.get("/api/runs/{run_id}/metrics")
def run_metrics(run_id: str, ctx: ContextDep) -> dict[str, Any]:
    """Each numeric metric the run logged, as ``{name: {steps, values}}``.

    A NaN or infinite value (stored as the text the SDK sends for it) is a null, a
    gap in the line at its step.
    """
    with ctx.db.session() as session:
        repository.get_run(session, run_id)
        rows = [(r.step, r.data) for r in
                repository.metric_rows(session, run_id, limit=METRIC_ROWS, offset=0)]
    series: dict[str, dict[str, list[float | None]]] = {}
    for step, data in rows:
        for key, value in data.items():
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if numeric or value in NON_FINITE:
                line = series.setdefault(key, {"steps": [], "values": []})
                line["steps"].append(step)
                line["values"].append(value if numeric else None)
    return {"series": series, "truncated": len(rows) == METRIC_ROWS}


@router.get("/api/studies/{study_id}/live")
def study_live(study_id: int, ctx: ContextDep, sort: Sort = "trial", order: Order = "asc",
               page: PageNo = 1) -> dict[str, Any]:
    view = StudyView(ctx, study_id)
    rows, at = view.trial_page(sort=sort, descending=order == "desc", page=page)
    stats = view.stats()
    return {"state": stats["state"], "state_reason": None, "stats": stats, "rows": rows,
            "page": _page(at), "actions": []}


@router.get("/api/studies/{study_id}/importance", response_model=None)
def study_importance(study_id: int, ctx: ContextDep) -> dict[str, Any] | JSONResponse:
    try:
        return StudyView(ctx, study_id).importance()
    except ConflictError as exc:
        return _unavailable(exc)


@router.get("/api/studies/{study_id}/parallel")
def study_parallel(study_id: int, ctx: ContextDep) -> dict[str, Any]:
    view = StudyView(ctx, study_id)
    data = view.parallel_coordinates()
    best = view.best()
    data["best_run_id"] = str(best.number) if best else None
    return data


@router.get("/api/studies/{study_id}/history")
def study_history(study_id: int, ctx: ContextDep) -> dict[str, Any]:
    return StudyView(ctx, study_id).history()


@router.get("/api/studies/{study_id}/llm")
def study_llm(study_id: int, ctx: ContextDep, page: PageNo = 1) -> dict[str, Any]:
    data = StudyView(ctx, study_id).llm(page=page)
    return {**data, "page": _page(data["page"])}


@router.get("/api/studies/{study_id}/trials/{number}/metrics")
def trial_metrics(study_id: int, number: int, ctx: ContextDep) -> dict[str, Any]:
    """The trial's intermediate values, in the shape of a run's metrics."""
    trial = StudyView(ctx, study_id).trial(number)
    steps = sorted(trial.intermediate_values)
    series = {"intermediate value": {"steps": steps,
                                     "values": [trial.intermediate_values[s] for s in steps]}}
    return {"series": series if steps else {}, "truncated": False}
