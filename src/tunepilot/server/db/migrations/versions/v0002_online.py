"""Online optimizer: applications with their state, and decisions with their evidence.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tp_online_apps",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_tp_online_apps")),
    )
    op.create_table(
        "tp_online_decisions",
        sa.Column("id", sa.String(length=256), nullable=False),
        sa.Column("app", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tp_online_decisions")),
    )
    op.create_index("ix_tp_online_decisions_app_seq", "tp_online_decisions", ["app", "seq"])


def downgrade() -> None:
    op.drop_index("ix_tp_online_decisions_app_seq", table_name="tp_online_decisions")
    op.drop_table("tp_online_decisions")
    op.drop_table("tp_online_apps")
