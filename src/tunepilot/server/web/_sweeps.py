"""What the dashboard shows of sweeps: list pages, run tables, stat cards, LLM trials.

Charts reuse :class:`~tunepilot.server._analysis.AnalysisService`; this module adds
what only the dashboard needs (search, sorting, per-page counts), as plain dicts
that both the templates and the live-update JSON use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from optuna.trial import TrialState
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tunepilot.server._analysis import AnalysisService, flatten
from tunepilot.server._context import ServerContext
from tunepilot.server.db import Project, Run, Sweep, repository

SWEEPS_PAGE = 20
RUNS_PAGE = 100
LLM_PAGE = 100
SWEEP_STATES = ("pending", "running", "paused", "finished", "failed", "canceled")
RUN_SORTS = {
    "trial": Run.trial_number, "state": Run.state, "value": Run.value, "agent": Run.agent,
    "started": Run.created_at, "finished": Run.finished_at,
}
#: Lifecycle actions a sweep in each state offers (finish and cancel ask to confirm).
ACTIONS = {
    "pending": ("start", "finish", "cancel"),
    "running": ("pause", "finish", "cancel"),
    "paused": ("resume", "finish", "cancel"),
}
DESTRUCTIVE = frozenset({"finish", "cancel"})
#: Optuna trial states in the words the runs table uses.
TRIAL_STATES = {TrialState.COMPLETE: "finished", TrialState.FAIL: "failed",
                TrialState.PRUNED: "pruned", TrialState.RUNNING: "running",
                TrialState.WAITING: "waiting"}


@dataclass(frozen=True)
class Page:
    """A page number and the number of pages (at least 1)."""

    number: int
    pages: int
    total: int

    @classmethod
    def of(cls, number: int, total: int, size: int) -> Page:
        pages = max(1, math.ceil(total / size))
        return cls(min(max(1, number), pages), pages, total)


def pages_of(total: int, size: int) -> int:
    return max(1, math.ceil(total / size))


def short_params(params: dict[str, Any], limit: int = 120) -> str:
    """``a=1, b=x`` in one line, cut at ``limit`` characters."""
    text = ", ".join(f"{k}={_short(v)}" for k, v in flatten(params).items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment is not None else None


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def run_row(run: Run) -> dict[str, Any]:
    """One row of a runs table (also the live-update JSON)."""
    return {
        "id": run.id, "href": f"/ui/runs/{run.id}", "label": run.id, "trial": run.trial_number,
        "state": run.state, "value": run.value, "agent": run.agent,
        "started": iso(run.created_at), "duration": seconds_between(run.created_at,
                                                                    run.finished_at),
        "params": short_params(run.config), "attempt": run.attempt,
    }


def list_sweeps(
    session: Session, *, query: str | None, project: str | None, state: str | None, page: int
) -> tuple[list[dict[str, Any]], Page]:
    """A page of sweeps, newest first, with project name and run count."""
    stmt = select(Sweep, Project.name).join(Project, Project.id == Sweep.project_id)
    if project:
        stmt = stmt.where(Project.name == project)
    if state:
        stmt = stmt.where(Sweep.state == state)
    if query:
        stmt = stmt.where(Sweep.name.icontains(query, autoescape=True)
                          | Sweep.id.icontains(query, autoescape=True))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    at = Page.of(page, total, SWEEPS_PAGE)
    rows = session.execute(
        stmt.order_by(Sweep.created_at.desc(), Sweep.id)
        .limit(SWEEPS_PAGE).offset((at.number - 1) * SWEEPS_PAGE)
    ).all()
    ids = [sweep.id for sweep, _ in rows]
    counts: dict[str, int] = {
        sweep_id: n for sweep_id, n in session.execute(
            select(Run.sweep_id, func.count()).where(Run.sweep_id.in_(ids))
            .group_by(Run.sweep_id))
    } if ids else {}
    items = [
        {"sweep": sweep, "project": name, "n_runs": counts.get(sweep.id, 0),
         "actions": ACTIONS.get(sweep.state, ())}
        for sweep, name in rows
    ]
    return items, at


def project_names(session: Session) -> list[str]:
    return list(session.scalars(select(Project.name).order_by(Project.name)))


def stats(ctx: ServerContext, sweep_id: str) -> dict[str, Any]:
    """The stat cards: counts by state and the best run, from the analysis service."""
    raw = AnalysisService(ctx).stats(sweep_id)
    counts = raw["counts"]
    best = raw["best_run_id"]
    return {
        "state": raw["state"], "total": raw["n_runs"], "finished": counts.get("finished", 0),
        "running": counts.get("running", 0), "failed": counts.get("failed", 0),
        "stopped": counts.get("stopped", 0), "best_value": raw["best_value"],
        "best_href": f"/ui/runs/{best}" if best else None, "best_label": best,
        "best_params": flatten(raw["best_config"]) if raw["best_config"] else None,
        "metric": raw["metric"], "goal": raw["goal"], "n_suggested": raw["n_suggested"],
    }


def run_page(
    session: Session, sweep_id: str, *, sort: str, descending: bool, page: int
) -> tuple[list[dict[str, Any]], Page]:
    """A page of the sweep's runs in the chosen order (unknown sort keys sort by trial)."""
    column = RUN_SORTS.get(sort, Run.trial_number)
    total = session.scalar(select(func.count()).where(Run.sweep_id == sweep_id)) or 0
    at = Page.of(page, total, RUNS_PAGE)
    # Runs without the value go last either way, as in W&B's tables.
    order: list[Any] = [column.is_(None), column.desc() if descending else column.asc(), Run.trial_number,
             Run.id]
    runs = session.scalars(
        select(Run).where(Run.sweep_id == sweep_id).order_by(*order)
        .limit(RUNS_PAGE).offset((at.number - 1) * RUNS_PAGE)
    )
    return [run_row(r) for r in runs], at


def llm_trials(ctx: ServerContext, sweep: Sweep, *, page: int) -> dict[str, Any]:
    """Each LLM-guided trial's ``llm.*`` attributes (newest first) and the totals."""
    study_id = ctx.storage.get_study_id_from_name(sweep.study_name)
    trials = ctx.storage.get_all_trials(study_id, deepcopy=False)
    with ctx.db.session() as session:
        runs: dict[int, str] = {
            trial_id: run_id for trial_id, run_id in session.execute(
                select(Run.trial_id, Run.id).where(Run.sweep_id == sweep.id))
        }
    rows = [
        llm_row(t.number, t.user_attrs, TRIAL_STATES[t.state], t.value if len(t.values or ()) == 1
                else None, href=f"/ui/runs/{runs[t._trial_id]}" if t._trial_id in runs else None,
                label=runs.get(t._trial_id))
        for t in trials if "llm.source" in t.user_attrs
    ]
    return llm_summary(rows, page=page)


def llm_row(
    number: int, attrs: dict[str, Any], state: str, value: float | None, *,
    href: str | None, label: str | None,
) -> dict[str, Any]:
    """One trial's LLM attributes, with absent ones as ``None``."""
    def num(key: str) -> float:
        item = attrs.get(key)
        return float(item) if isinstance(item, (int, float)) and not isinstance(item, bool) else 0.0

    repairs = attrs.get("llm.repairs")
    return {
        "trial": number, "href": href, "label": label or str(number), "state": state,
        "value": value, "source": str(attrs.get("llm.source", "")),
        "model": attrs.get("llm.model"), "rationale": attrs.get("llm.rationale"),
        "prompt_tokens": int(num("llm.prompt_tokens")),
        "completion_tokens": int(num("llm.completion_tokens")),
        "cost_usd": num("llm.cost_usd"), "latency_s": attrs.get("llm.latency_s"),
        "repairs": [str(r) for r in repairs] if isinstance(repairs, list) else [],
        "repair_details": attrs.get("llm.repair_details"),
        "fallback_reason": attrs.get("llm.fallback_reason"),
        "blend_part": attrs.get("llm.blend_part"), "cached": attrs.get("llm.cached"),
        "base": attrs.get("llm.base"),
    }


def llm_summary(rows: list[dict[str, Any]], *, page: int) -> dict[str, Any]:
    """Totals over every LLM trial and one page of them, newest first."""
    by_source: dict[str, int] = {}
    by_base: dict[str, int] = {}
    for row in rows:
        by_source[row["source"]] = by_source.get(row["source"], 0) + 1
        if row["base"]:
            by_base[str(row["base"])] = by_base.get(str(row["base"]), 0) + 1
    rows.sort(key=lambda r: r["trial"], reverse=True)
    at = Page.of(page, len(rows), LLM_PAGE)
    return {
        "rows": rows[(at.number - 1) * LLM_PAGE: at.number * LLM_PAGE], "page": at,
        "n_trials": len(rows), "by_source": by_source, "by_base": by_base,
        "cost_usd": sum(r["cost_usd"] for r in rows),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "repairs": sum(len(r["repairs"]) for r in rows),
    }


def get_sweep(session: Session, sweep_id: str) -> tuple[Sweep, str]:
    """The sweep and its project's name (``NotFoundError`` when missing)."""
    sweep = repository.get_sweep(session, sweep_id)
    names = repository.project_names(session, [sweep.project_id])
    return sweep, names.get(sweep.project_id, "?")
