"""Migrations: shipped in the package, checked on start, in step with the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tunepilot.exceptions import DatabaseError
from tunepilot.server import Settings, create_app, database_revision, upgrade_database
from tunepilot.server.db import Base, head_revision
from tunepilot.server.db._engine import make_engine
from tunepilot.server.db._models import VERSION_TABLE, include_name
from tunepilot.server._settings import normalize_db_url


def test_a_fresh_database_is_refused_with_the_command_to_run(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    with pytest.raises(DatabaseError, match=r"tunepilot db upgrade --db sqlite:///"):
        create_app(Settings(db=url))
    assert database_revision(url) is None


def test_upgrade_is_idempotent(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/twice.db"
    assert upgrade_database(url) == head_revision()
    assert upgrade_database(url) == head_revision()


def test_migrations_match_the_models(db_url: str) -> None:
    engine = make_engine(normalize_db_url(db_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={
                "version_table": VERSION_TABLE, "compare_type": True, "include_name": include_name,
            })
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/wal.db"
    upgrade_database(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
