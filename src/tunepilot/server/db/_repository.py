"""Queries over tunepilot's tables; a missing row becomes :class:`NotFoundError` here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tunepilot.exceptions import NotFoundError
from tunepilot.server.db._models import MetricRow, Project, Run, Sweep


#: What ids look like; anything else is not looked up (PostgreSQL rejects NUL bytes).
_ID = re.compile(r"[a-z0-9]{1,16}")


def get_sweep(session: Session, sweep_id: str) -> Sweep:
    """The sweep ``sweep_id``.

    Raises:
        NotFoundError: there is no such sweep.
    """
    sweep = session.get(Sweep, sweep_id) if _ID.fullmatch(sweep_id) else None
    if sweep is None:
        raise NotFoundError(f"no sweep {sweep_id!r}; list sweeps with GET /api/v1/sweeps")
    return sweep


def get_run(session: Session, run_id: str, *, for_update: bool = False) -> Run:
    """The run ``run_id``; with ``for_update``, its row is locked until the transaction ends.

    The lock matters on PostgreSQL, where a read-modify-write of the run's summary and
    history would otherwise lose a concurrent one; SQLite's writers queue on the file.

    Raises:
        NotFoundError: there is no such run.
    """
    run = session.get(Run, run_id, with_for_update=for_update) if _ID.fullmatch(run_id) else None
    if run is None:
        raise NotFoundError(f"no run {run_id!r}")
    return run


def run_for_request(session: Session, request_id: str) -> Run | None:
    """The run an earlier suggest request with this id created, if any."""
    return session.scalar(select(Run).where(Run.request_id == request_id))


def sweep_for_request(session: Session, request_id: str) -> Sweep | None:
    """The sweep an earlier create request with this id made, if any."""
    return session.scalar(select(Sweep).where(Sweep.request_id == request_id))


def project_named(session: Session, name: str) -> Project:
    """The project ``name``, created if it does not exist (safe under concurrent creates)."""
    project = session.scalar(select(Project).where(Project.name == name))
    if project is not None:
        return project
    try:
        with session.begin_nested():
            project = Project(name=name)
            session.add(project)
        return project
    except IntegrityError:  # created by a concurrent request in between
        return session.scalars(select(Project).where(Project.name == name)).one()


def project_names(session: Session, project_ids: Sequence[int]) -> dict[int, str]:
    """Names of the given projects by id."""
    if not project_ids:
        return {}
    rows = session.execute(select(Project.id, Project.name).where(Project.id.in_(project_ids)))
    return {row.id: row.name for row in rows}


def list_sweeps(
    session: Session,
    *,
    project: str | None,
    state: str | None,
    method: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Sweep], int]:
    """A page of sweeps, newest first, and how many match in all."""
    query = select(Sweep)
    if project is not None:
        query = query.join(Project, Project.id == Sweep.project_id).where(Project.name == project)
    if state is not None:
        query = query.where(Sweep.state == state)
    if method is not None:
        query = query.where(Sweep.method == method)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = session.scalars(
        query.order_by(Sweep.created_at.desc(), Sweep.id).limit(limit).offset(offset)
    )
    return list(page), total


def list_runs(
    session: Session, sweep_id: str, *, state: str | None, limit: int, offset: int
) -> tuple[list[Run], int]:
    """A page of a sweep's runs by trial number, and how many match in all."""
    query = select(Run).where(Run.sweep_id == sweep_id)
    if state is not None:
        query = query.where(Run.state == state)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = session.scalars(query.order_by(Run.trial_number, Run.id).limit(limit).offset(offset))
    return list(page), total


def run_counts(session: Session, sweep_id: str) -> dict[str, int]:
    """How many runs of the sweep are in each state."""
    rows = session.execute(
        select(Run.state, func.count()).where(Run.sweep_id == sweep_id).group_by(Run.state)
    )
    return {state: count for state, count in rows}


def metric_rows(
    session: Session, run_id: str, *, limit: int, offset: int
) -> list[MetricRow]:
    """A page of a run's logged rows in logging order."""
    return list(
        session.scalars(
            select(MetricRow).where(MetricRow.run_id == run_id)
            .order_by(MetricRow.id).limit(limit).offset(offset)
        )
    )


def last_metric_row(session: Session, run: Run) -> MetricRow | None:
    """The run's most recently stored metric row, if any: a primary-key lookup."""
    return None if run.last_row_id is None else session.get(MetricRow, run.last_row_id)


def histories(session: Session, sweep_id: str) -> list[tuple[str, str, list[Any]]]:
    """``(run id, state, metric history)`` of every run of the sweep."""
    rows = session.execute(
        select(Run.id, Run.state, Run.metric_history).where(Run.sweep_id == sweep_id)
    )
    return [(row.id, row.state, list(row.metric_history or [])) for row in rows]
