"""Projects, sweeps, runs, logged metric rows and API tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tp_projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tp_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_tp_projects_name")),
    )
    op.create_table(
        "tp_api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tp_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_tp_api_tokens_token_hash")),
    )
    op.create_table(
        "tp_sweeps",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("study_name", sa.String(length=512), nullable=False),
        sa.Column("metric_name", sa.String(length=256), nullable=True),
        sa.Column("metric_goal", sa.String(length=8), nullable=False),
        sa.Column("metric_target", sa.Float(), nullable=True),
        sa.Column("run_cap", sa.Integer(), nullable=True),
        sa.Column("n_suggested", sa.Integer(), nullable=False),
        sa.Column("n_queued", sa.Integer(), nullable=False),
        sa.Column("best_run_id", sa.String(length=16), nullable=True),
        sa.Column("best_value", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["tp_projects.id"], name=op.f("fk_tp_sweeps_project_id_tp_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tp_sweeps")),
        sa.UniqueConstraint("study_name", name=op.f("uq_tp_sweeps_study_name")),
    )
    op.create_index(op.f("ix_tp_sweeps_project_id"), "tp_sweeps", ["project_id"])
    op.create_index(op.f("ix_tp_sweeps_state"), "tp_sweeps", ["state"])
    op.create_table(
        "tp_runs",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("sweep_id", sa.String(length=16), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("trial_number", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retry_of", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("agent", sa.String(length=256), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("metric_history", sa.JSON(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("stop_requested", sa.Boolean(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("fail_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sweep_id"], ["tp_sweeps.id"], name=op.f("fk_tp_runs_sweep_id_tp_sweeps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tp_runs")),
        sa.UniqueConstraint("request_id", name=op.f("uq_tp_runs_request_id")),
        sa.UniqueConstraint("trial_id", name=op.f("uq_tp_runs_trial_id")),
    )
    op.create_index("ix_tp_runs_sweep_state", "tp_runs", ["sweep_id", "state"])
    op.create_table(
        "tp_run_metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["tp_runs.id"], name=op.f("fk_tp_run_metrics_run_id_tp_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tp_run_metrics")),
    )
    op.create_index(op.f("ix_tp_run_metrics_run_id"), "tp_run_metrics", ["run_id"])


def downgrade() -> None:
    op.drop_table("tp_run_metrics")
    op.drop_table("tp_runs")
    op.drop_table("tp_sweeps")
    op.drop_table("tp_api_tokens")
    op.drop_table("tp_projects")
