"""Migrations: shipped in the package, checked on start, in step with the models."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

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


def _logged_runs(url: str, runs: int, logs: list[tuple[int, list[dict[str, Any]]]]) -> list[str]:
    """A migrated database with one sweep, ``runs`` leased runs and ``logs`` sent to them.

    ``logs`` holds (index of the run, rows of one log request), sent in order.
    """
    from fastapi.testclient import TestClient

    upgrade_database(url)
    with TestClient(create_app(Settings(db=url)), base_url="http://127.0.0.1") as client:
        config = {"method": "random", "metric": {"name": "loss"},
                  "parameters": {"x": {"min": 0.0, "max": 1.0}}}
        sweep_id = client.post("/api/v1/sweeps", json={"config": config}).json()["id"]
        ids = [client.post(f"/api/v1/sweeps/{sweep_id}/suggest", json={}).json()["run_id"]
               for _ in range(runs)]
        for index, rows in logs:
            answer = client.post(f"/api/v1/runs/{ids[index]}/log", json={"rows": rows})
            assert answer.status_code == 200, answer.text
    return ids


def _downgrade_and_upgrade(engine: Engine, revision: str, *as_left: str) -> None:
    """Downgrade to ``revision``, run ``as_left`` (what that revision's code left), upgrade."""
    from alembic import command

    from tunepilot.server.db._migrate import _config

    with engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        for statement in as_left:
            connection.execute(text(statement))
    assert upgrade_database(engine.url.render_as_string(hide_password=False)) == head_revision()


def test_upgrading_recounts_the_logged_rows_of_each_run(tmp_path: object) -> None:
    """Before migration 0005, n_rows held the step after the last row's."""
    url = f"sqlite:///{tmp_path}/recount.db"
    _logged_runs(url, 1, [(0, [{"step": 0, "metrics": {"loss": 1.0}},
                               {"step": 10, "metrics": {"loss": 0.5}}])])
    engine = make_engine(url)
    try:
        _downgrade_and_upgrade(engine, "0004", "UPDATE tp_runs SET n_rows = 11")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT n_rows FROM tp_runs")).scalar() == 2
    finally:
        engine.dispose()


def test_upgrading_gives_each_run_the_id_of_its_last_row(tmp_path: object) -> None:
    """Before migration 0006, the last row was searched for in tp_run_metrics."""
    url = f"sqlite:///{tmp_path}/lastrow.db"
    # The first two runs' rows interleave; the third logs nothing.
    runs = _logged_runs(url, 3, [(index, [{"step": step, "metrics": {"loss": 1.0}}])
                                 for step in range(3) for index in (0, 1)])
    engine = make_engine(url)
    select_last = text("SELECT id, last_row_id FROM tp_runs ORDER BY id")
    select_max = text("SELECT max(id) FROM tp_run_metrics WHERE run_id = :run")
    try:
        with engine.connect() as connection:
            kept = dict(connection.execute(select_last).all())
        _downgrade_and_upgrade(engine, "0005")
        with engine.connect() as connection:
            backfilled = dict(connection.execute(select_last).all())
            expected = {run: connection.execute(select_max, {"run": run}).scalar()
                        for run in runs}
    finally:
        engine.dispose()
    assert kept == backfilled == expected
    assert expected[runs[0]] != expected[runs[1]] and expected[runs[2]] is None
