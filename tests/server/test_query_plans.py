"""The per-log read of a run's last row: its cost must not grow with other runs' rows.

Every ``log()`` reads the run's last stored row. A run that has been quiet while
other runs logged (a long evaluation, a run resumed after a restart) has its last
row far back in the table. Found as ``ORDER BY id DESC LIMIT 1`` among the run's
rows, PostgreSQL answered with a backward scan of the primary key filtered on the
run, passing over every row logged since, on every log. The run keeps the row's id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, insert, text

from tunepilot.server.db import _repository as repository
from tunepilot.server.db._engine import Database
from tunepilot.server.db._models import MetricRow, Project, Run, Sweep
from tunepilot.server._settings import normalize_db_url

QUIET_ROWS = 500
OTHER_RUNS = 20
OTHER_ROWS = 1_000  # each, logged after the quiet run's last row


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(normalize_db_url(db_url))
    yield database
    database.dispose()


def _fill(db: Database) -> str:
    """A quiet run's rows, then ``OTHER_RUNS`` runs logging in turn; the quiet run's id.

    Rows stored directly, without Optuna trials behind them, so the sweep and its
    runs are finished: PostgreSQL is shared by the session's tests, and the reaper
    and the scheduler of other tests must not take them for live ones.
    """
    tag = uuid.uuid4().hex[:8]
    base = int(uuid.uuid4().int % 1_000_000_000)  # trial ids are unique across sweeps
    with db.session() as session:
        project = Project(name=f"plans-{tag}")
        session.add(project)
        session.flush()
        session.add(Sweep(id=f"pl{tag}", project_id=project.id, method="random", config={},
                          state="finished", study_name=f"plans-{tag}", metric_goal="minimize"))
        session.flush()
        runs = [f"q{tag}"] + [f"o{tag}{i:02d}" for i in range(OTHER_RUNS)]
        for i, run_id in enumerate(runs):
            session.add(Run(id=run_id, sweep_id=f"pl{tag}", trial_id=base + i, trial_number=i,
                            state="finished", config={}, params={}))
        session.flush()
        session.execute(insert(MetricRow), [
            {"run_id": runs[0], "step": step, "data": {"loss": 1.0}} for step in range(QUIET_ROWS)
        ])
        session.execute(insert(MetricRow), [
            {"run_id": run_id, "step": step, "data": {"loss": 1.0}}
            for step in range(OTHER_ROWS) for run_id in runs[1:]
        ])
        # What the log path keeps (and migration 0006 fills in): each run's last row.
        session.execute(text(
            "UPDATE tp_runs SET last_row_id = (SELECT max(id) FROM tp_run_metrics "
            "WHERE tp_run_metrics.run_id = tp_runs.id) WHERE sweep_id = :sweep"
        ), {"sweep": f"pl{tag}"})
    if not db.sqlite:
        with db.session() as session:
            session.execute(text("ANALYZE tp_run_metrics"))
    return runs[0]


def _captured_select(db: Database, run_id: str) -> tuple[str, Any]:
    """The statement and parameters that ``last_metric_row`` sends, as sent."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "tp_run_metrics" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.session() as session:
            run = session.get(Run, run_id)
            assert run is not None
            row = repository.last_metric_row(session, run)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert row is not None and row.step == QUIET_ROWS - 1
    assert len(seen) == 1
    return seen[0]


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def test_the_last_row_of_a_quiet_run_is_read_from_an_index_not_past_other_runs_rows(
    db: Database,
) -> None:
    run_id = _fill(db)
    statement, parameters = _captured_select(db, run_id)
    with db.engine.connect() as connection:
        if db.sqlite:
            plan = [row[-1] for row in connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters)]
            assert plan and all(step.startswith("SEARCH") for step in plan), plan
            assert not any("TEMP B-TREE" in step for step in plan), plan
            return
        raw = connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters).scalar()
    top = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes = list(_nodes(top))
    removed = sum(node.get("Rows Removed by Filter", 0) for node in nodes)
    scans = [node["Node Type"] for node in nodes if "Scan" in node["Node Type"]]
    # Found through an index: nothing read and thrown away, nothing sorted.
    assert removed == 0, json.dumps(top, indent=1)
    assert scans and all(scan.startswith("Index") for scan in scans), json.dumps(top, indent=1)
    assert not any(node["Node Type"] == "Sort" for node in nodes), json.dumps(top, indent=1)


def test_the_log_path_keeps_each_runs_last_row_id(client: TestClient, db_url: str) -> None:
    config = {"method": "random", "metric": {"name": "loss"},
              "parameters": {"x": {"min": 0.0, "max": 1.0}}}
    sweep_id = client.post("/api/v1/sweeps", json={"config": config}).json()["id"]
    runs = [client.post(f"/api/v1/sweeps/{sweep_id}/suggest", json={}).json()["run_id"]
            for _ in range(2)]

    def log(run_id: str, *rows: dict[str, Any]) -> None:
        answer = client.post(f"/api/v1/runs/{run_id}/log", json={"rows": list(rows)})
        assert answer.status_code == 200, answer.text

    log(runs[0], {"step": 0, "metrics": {"loss": 1.0}})
    log(runs[1], {"step": 0, "metrics": {"loss": 2.0}}, {"step": 1, "metrics": {"loss": 1.5}})
    log(runs[0], {"step": 0, "metrics": {"acc": 0.5}})  # merged into step 0: no new row
    log(runs[1], {"step": 2, "metrics": {"loss": 1.2}})
    log(runs[0], {"metrics": {"loss": 0.9}}, {"step": 1, "metrics": {"acc": 0.6}})

    database = Database(normalize_db_url(db_url))
    try:
        with database.session() as session:
            for run_id, steps in zip(runs, ([0, 1], [0, 1, 2])):
                run = session.get(Run, run_id)
                assert run is not None
                rows = repository.metric_rows(session, run_id, limit=10, offset=0)
                assert [row.step for row in rows] == steps
                assert run.last_row_id == max(row.id for row in rows)
                last = repository.last_metric_row(session, run)
                assert last is not None and last.data == (
                    {"loss": 0.9, "acc": 0.6} if run_id == runs[0] else {"loss": 1.2})
            first = repository.metric_rows(session, runs[0], limit=1, offset=0)[0]
            assert first.data == {"loss": 1.0, "acc": 0.5}
    finally:
        database.dispose()
