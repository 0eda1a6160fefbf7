"""tunepilot's own tables: only what Optuna's tables cannot hold.

A sweep is an Optuna study (``study_name``), a run is an Optuna trial (``trial_id``)
plus a row here with the agent, the lease, the logged metric rows and the summary.
Every table is prefixed ``tp_`` so it never collides with Optuna's.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Alembic's version table for our migrations; Optuna's own migrations use alembic_version.
VERSION_TABLE = "tp_alembic_version"



def include_name(name: str | None, type_: str, *_: object) -> bool:
    """Alembic filter: Optuna's tables share the database; only ours are compared."""
    return type_ != "table" or (name or "").startswith("tp_")


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Naive UTC now: what every timestamp column stores, on SQLite and PostgreSQL alike."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base of tunepilot's tables, with deterministic constraint names."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Project(Base):
    """A namespace for sweeps, as in W&B."""

    __tablename__ = "tp_projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Sweep(Base):
    """A sweep's config and lifecycle; its trials live in the Optuna study ``study_name``."""

    __tablename__ = "tp_sweeps"
    __table_args__ = (Index("uq_tp_sweeps_request_id", "request_id", unique=True),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("tp_projects.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_reason: Mapped[str | None] = mapped_column(Text)
    study_name: Mapped[str] = mapped_column(String(512), unique=True)
    metric_name: Mapped[str | None] = mapped_column(String(256))
    metric_goal: Mapped[str] = mapped_column(String(8))
    metric_target: Mapped[float | None] = mapped_column(Float)
    run_cap: Mapped[int | None] = mapped_column(Integer)
    # Fresh configurations handed out; a grid sweep's next grid index. Retries of a
    # lost run's configuration do not count.
    n_suggested: Mapped[int] = mapped_column(Integer, default=0)
    # Configurations of lost runs waiting as WAITING Optuna trials to be handed out again;
    # kept here so that handing out and finishing runs skip that query when it is 0.
    n_queued: Mapped[int] = mapped_column(Integer, default=0)
    best_run_id: Mapped[str | None] = mapped_column(String(16))
    best_value: Mapped[float | None] = mapped_column(Float)
    # The client's id for its create request: a retried request gets this sweep back.
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Run(Base):
    """One leased configuration: the Optuna trial plus the agent's side of it."""

    __tablename__ = "tp_runs"
    __table_args__ = (Index("ix_tp_runs_sweep_state", "sweep_id", "state"),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    sweep_id: Mapped[str] = mapped_column(ForeignKey("tp_sweeps.id"))
    trial_id: Mapped[int] = mapped_column(Integer, unique=True)
    trial_number: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    retry_of: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    agent: Mapped[str | None] = mapped_column(String(256))
    # The agent's id for its suggest request: a retried request gets this run back.
    request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The sweep metric's values in logging order: what hyperband compares.
    metric_history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # How many metric rows are stored (logs to one step are merged into one row).
    n_rows: Mapped[int] = mapped_column(Integer, default=0)
    # The id of the last stored metric row, read on every log. Kept here because
    # finding it in tp_run_metrics costs PostgreSQL, whose LIMIT costing assumes a
    # run's rows are spread evenly through the table, a scan of every row other runs
    # logged since this one's last. (No foreign key: the rows already refer to runs.)
    last_row_id: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    fail_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class MetricRow(Base):
    """One ``log()`` call of a run: a step and a JSON object of metrics."""

    __tablename__ = "tp_run_metrics"
    __table_args__ = (
        Index("uq_tp_run_metrics_run_id_request_id", "run_id", "request_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("tp_runs.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The client's id for the log request, on the first row it stored (NULL on the
    # others and without an id); unique per run, so a retried request is stored once.
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    """An API token made with ``tunepilot token create``; only its SHA-256 is stored."""

    __tablename__ = "tp_api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class OnlineApp(Base):
    """An online-optimizer application: its config and its state (leaders, rollouts, paused)."""

    __tablename__ = "tp_online_apps"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class OnlineDecision(Base):
    """One decision of the online optimizer, with its evidence."""

    __tablename__ = "tp_online_decisions"
    __table_args__ = (Index("ix_tp_online_decisions_app_seq", "app", "seq"),)

    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    app: Mapped[str] = mapped_column(String(200))
    # The decision's number within its app: the order decisions are read back in.
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    time: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
