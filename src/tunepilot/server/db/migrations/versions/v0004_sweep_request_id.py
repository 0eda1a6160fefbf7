"""Sweep creation requests carry an id, so a retried request makes one sweep.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tp_sweeps", sa.Column("request_id", sa.String(length=64), nullable=True))
    # A unique index, not a constraint: SQLite cannot add a constraint without copying
    # the table, which its foreign keys from tp_runs forbid.
    op.create_index("uq_tp_sweeps_request_id", "tp_sweeps", ["request_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_tp_sweeps_request_id", table_name="tp_sweeps")
    op.drop_column("tp_sweeps", "request_id")  # SQLite 3.35 or later drops columns in place
