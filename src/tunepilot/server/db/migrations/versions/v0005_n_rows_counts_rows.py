"""``tp_runs.n_rows`` counts the stored metric rows.

Before, it held the step after the last row's, which is more than the rows when a
program logged with explicit steps. The data is recounted; the schema is unchanged.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE tp_runs SET n_rows = "
        "(SELECT count(*) FROM tp_run_metrics WHERE tp_run_metrics.run_id = tp_runs.id)"
    )


def downgrade() -> None:
    """Nothing to undo: a count is a valid value for the older code too."""
