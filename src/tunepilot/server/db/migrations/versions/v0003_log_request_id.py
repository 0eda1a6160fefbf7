"""Log requests carry an id, so a retried request is stored once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tp_run_metrics", sa.Column("request_id", sa.String(length=64), nullable=True))
    op.create_index(
        "uq_tp_run_metrics_run_id_request_id", "tp_run_metrics", ["run_id", "request_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_tp_run_metrics_run_id_request_id", table_name="tp_run_metrics")
    op.drop_column("tp_run_metrics", "request_id")  # SQLite 3.35 or later drops columns in place
