"""Runs keep the id of their last stored metric row.

Every log reads the run's last row. Found as ``ORDER BY id DESC LIMIT 1`` among
the run's rows, PostgreSQL scanned the primary key backwards and filtered on the
run: for a run that was quiet while others logged, every row logged since (8 ms a
log at 100,000 rows, growing with the table). The run now holds the row's id, and
existing runs get theirs from the stored rows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tp_runs", sa.Column("last_row_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE tp_runs SET last_row_id = "
        "(SELECT max(id) FROM tp_run_metrics WHERE tp_run_metrics.run_id = tp_runs.id)"
    )


def downgrade() -> None:
    op.drop_column("tp_runs", "last_row_id")  # SQLite 3.35 or later drops columns in place
