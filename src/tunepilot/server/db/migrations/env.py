"""Alembic environment for tunepilot's tables (Optuna migrates its own tables itself)."""

from __future__ import annotations

from alembic import context

from tunepilot.server.db._models import VERSION_TABLE, Base, include_name


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
