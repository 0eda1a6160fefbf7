"""The REST API through FastAPI's TestClient, on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

RANDOM = {"method": "random", "metric": {"name": "loss"},
          "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 0.1},
                         "opt": {"parameters": {"name": {"values": ["adam", "sgd"]}}}}}


def create(client: TestClient, config: dict[str, Any] = RANDOM, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/v1/sweeps", json={"config": config, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def suggest(client: TestClient, sweep_id: str) -> Any:
    return client.post(f"/api/v1/sweeps/{sweep_id}/suggest", json={"agent": "test"})


def run_once(client: TestClient, sweep_id: str, loss: float) -> dict[str, Any]:
    lease = suggest(client, sweep_id)
    assert lease.status_code == 201, lease.text
    run_id = lease.json()["run_id"]
    client.post(f"/api/v1/runs/{run_id}/log", json={"rows": [{"metrics": {"loss": loss}}]})
    finished: dict[str, Any] = client.post(f"/api/v1/runs/{run_id}/finish", json={}).json()
    return finished


def test_create_and_read_a_sweep_with_w_and_b_defaults(client: TestClient) -> None:
    sweep = create(client, project="vision", name="first")
    assert sweep["state"] == "running" and sweep["project"] == "vision"
    assert sweep["metric"] == {"name": "loss", "goal": "minimize", "target": None}
    assert client.get(f"/api/v1/sweeps/{sweep['id']}").json()["name"] == "first"


def test_suggested_config_is_nested_and_inside_the_space(client: TestClient) -> None:
    sweep = create(client)
    config = suggest(client, sweep["id"]).json()["config"]
    assert 1e-4 <= config["lr"] <= 0.1
    assert config["opt"]["name"] in ("adam", "sgd")


def test_list_filters_and_pages(client: TestClient) -> None:
    ids = [create(client, project="paging")["id"] for _ in range(3)]
    create(client, project="other")
    client.post(f"/api/v1/sweeps/{ids[0]}/pause")
    page = client.get("/api/v1/sweeps", params={"project": "paging", "limit": 2}).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    rest = client.get("/api/v1/sweeps", params={"project": "paging", "limit": 2, "offset": 2})
    assert len(rest.json()["items"]) == 1
    paused = client.get("/api/v1/sweeps", params={"project": "paging", "state": "paused"}).json()
    assert [s["id"] for s in paused["items"]] == [ids[0]]


def test_lifecycle_and_the_reasons_suggest_refuses(client: TestClient) -> None:
    sweep = create(client, start=False)
    sid = sweep["id"]
    assert suggest(client, sid).json()["reason"] == "not_started"
    assert client.post(f"/api/v1/sweeps/{sid}/start").json()["state"] == "running"
    assert client.post(f"/api/v1/sweeps/{sid}/pause").json()["state"] == "paused"
    refused = suggest(client, sid)
    assert refused.status_code == 409 and refused.json()["reason"] == "paused"
    client.post(f"/api/v1/sweeps/{sid}/resume")
    assert suggest(client, sid).status_code == 201
    assert client.post(f"/api/v1/sweeps/{sid}/finish").json()["state"] == "finished"
    assert suggest(client, sid).json()["reason"] == "finished"
    again = client.post(f"/api/v1/sweeps/{sid}/resume")
    assert again.status_code == 409 and again.json()["reason"] == "sweep_finished"


def test_cancel_asks_running_runs_to_stop(client: TestClient) -> None:
    sid = create(client)["id"]
    run_id = suggest(client, sid).json()["run_id"]
    assert client.post(f"/api/v1/runs/{run_id}/heartbeat").json()["stop"] is False
    client.post(f"/api/v1/sweeps/{sid}/cancel")
    signal = client.post(f"/api/v1/runs/{run_id}/heartbeat").json()
    assert signal["stop"] is True and "canceled" in signal["reason"]


def test_run_cap_refuses_the_next_run_and_finishes_the_sweep(client: TestClient) -> None:
    sid = create(client, {**RANDOM, "run_cap": 2})["id"]
    run_once(client, sid, 1.0)
    run_once(client, sid, 0.5)
    refused = suggest(client, sid)
    assert refused.status_code == 409
    sweep = client.get(f"/api/v1/sweeps/{sid}").json()
    assert sweep["state"] == "finished" and sweep["n_suggested"] == 2


def test_run_cap_waits_for_running_runs_before_finishing(client: TestClient) -> None:
    sid = create(client, {**RANDOM, "run_cap": 1})["id"]
    run_id = suggest(client, sid).json()["run_id"]
    assert suggest(client, sid).json()["reason"] == "run_cap_reached"
    assert client.get(f"/api/v1/sweeps/{sid}").json()["state"] == "running"
    client.post(f"/api/v1/runs/{run_id}/finish", json={"summary": {"loss": 1}})
    assert client.get(f"/api/v1/sweeps/{sid}").json()["state"] == "finished"


def test_metric_target_ends_the_sweep(client: TestClient) -> None:
    config = {**RANDOM, "metric": {"name": "acc", "goal": "maximize", "target": 0.9}}
    sid = create(client, config)["id"]
    lease = suggest(client, sid).json()
    client.post(f"/api/v1/runs/{lease['run_id']}/finish", json={"summary": {"acc": 0.95}})
    sweep = client.get(f"/api/v1/sweeps/{sid}").json()
    assert sweep["state"] == "finished" and "target" in sweep["state_reason"]
    assert suggest(client, sid).json()["reason"] == "finished"


def test_log_builds_the_summary_and_metric_rows(client: TestClient) -> None:
    sid = create(client)["id"]
    run_id = suggest(client, sid).json()["run_id"]
    client.post(f"/api/v1/runs/{run_id}/log", json={"rows": [
        {"metrics": {"loss": 3.0, "epoch": 0}}, {"metrics": {"loss": 2.0, "epoch": 1}}]})
    client.post(f"/api/v1/runs/{run_id}/log",
                json={"rows": [{"step": 10, "metrics": {"loss": 1.5}}]})
    rows = client.get(f"/api/v1/runs/{run_id}/metrics").json()
    assert [r["step"] for r in rows] == [0, 1, 10]
    run = client.post(f"/api/v1/runs/{run_id}/finish", json={"summary": {"note": "ok"}}).json()
    assert run["summary"] == {"loss": 1.5, "epoch": 1, "note": "ok"}
    assert run["value"] == 1.5 and run["state"] == "finished"


def _history(db_url: str, run_id: str) -> list[Any]:
    from tunepilot.server._settings import normalize_db_url
    from tunepilot.server.db import Database, repository

    db = Database(normalize_db_url(db_url))
    try:
        with db.session() as session:
            return list(repository.get_run(session, run_id).metric_history)
    finally:
        db.dispose()


def test_a_retried_log_is_stored_once(client: TestClient, db_url: str) -> None:
    run_id = suggest(client, create(client)["id"]).json()["run_id"]
    url = f"/api/v1/runs/{run_id}/log"
    body = {"rows": [{"metrics": {"loss": 3.0}}, {"metrics": {"loss": 2.0}}],
            "request_id": "log-request-0001"}
    assert client.post(url, json=body).json() == {"state": "running", "stop": False,
                                                   "reason": None}
    again = client.post(url, json=body)
    assert again.status_code == 200 and again.json()["stop"] is False
    client.post(url, json={"rows": [{"metrics": {"loss": 1.5}}], "request_id": "log-request-0002"})
    for _ in range(2):  # without an id, every request is stored
        client.post(url, json={"rows": [{"metrics": {"loss": 1.0}}]})
    rows = client.get(f"/api/v1/runs/{run_id}/metrics").json()
    assert [(r["step"], r["data"]["loss"]) for r in rows] == [
        (0, 3.0), (1, 2.0), (2, 1.5), (3, 1.0), (4, 1.0)]
    assert client.get(f"/api/v1/runs/{run_id}").json()["n_rows"] == 5
    assert _history(db_url, run_id) == [3.0, 2.0, 1.5, 1.0, 1.0]
    bad = client.post(url, json={"rows": [{"metrics": {"loss": 1.0}}], "request_id": "no spaces"})
    assert bad.status_code == 422 and "request_id" in bad.text


def test_a_row_at_the_last_step_is_merged_and_a_step_before_it_refused(
    client: TestClient, db_url: str
) -> None:
    sweep = create(client)
    run_id = suggest(client, sweep["id"]).json()["run_id"]

    def log(*rows: dict[str, Any], request_id: str | None = None) -> Any:
        body: dict[str, Any] = {"rows": list(rows)}
        if request_id:
            body["request_id"] = request_id
        return client.post(f"/api/v1/runs/{run_id}/log", json=body)

    log({"step": 0, "metrics": {"loss": 3.0}})
    log({"step": 0, "metrics": {"acc": 0.5}})
    assert _history(db_url, run_id) == [3.0]
    log({"step": 0, "metrics": {"loss": 2.5}})  # replaces the value hyperband sees
    assert _history(db_url, run_id) == [2.5]
    log({"metrics": {"loss": 2.0}})  # no step: the next one
    log({"step": 3, "metrics": {"acc": 0.7}}, {"step": 3, "metrics": {"loss": 1.0}})
    for _ in range(2):  # a retried request that only merged changes nothing
        log({"step": 3, "metrics": {"acc": 0.75}}, request_id="merge-only-0001")
    refused = log({"step": 4, "metrics": {"loss": 0.5}}, {"step": 2, "metrics": {"loss": 0.1}})
    assert refused.status_code == 409 and refused.json()["reason"] == "step_before_last"
    assert "step 2 is before the last logged step 4" in refused.json()["detail"]
    rows = client.get(f"/api/v1/runs/{run_id}/metrics").json()
    assert [(r["step"], r["data"]) for r in rows] == [
        (0, {"loss": 2.5, "acc": 0.5}), (1, {"loss": 2.0}), (3, {"acc": 0.75, "loss": 1.0})]
    assert _history(db_url, run_id) == [2.5, 2.0, 1.0]
    run = client.get(f"/api/v1/runs/{run_id}").json()
    assert run["n_rows"] == 3 and run["summary"] == {"loss": 1.0, "acc": 0.75}
    from tunepilot.server._settings import normalize_db_url
    from tunepilot.server.db import make_storage

    storage = make_storage(normalize_db_url(db_url))
    try:
        trial = optuna.load_study(study_name=sweep["study_name"], storage=storage).trials[0]
        assert trial.intermediate_values == {0: 2.5, 1: 2.0, 3: 1.0}
    finally:
        storage.engine.dispose()


def _wait_for_lock_waiters(db: Any, count: int) -> None:
    """On PostgreSQL, wait until ``count`` sessions wait on a lock (fail after 10 s)."""
    from sqlalchemy import text

    deadline = time.monotonic() + 10
    with db.engine.connect() as watcher:
        while watcher.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        )) < count:
            assert time.monotonic() < deadline, f"fewer than {count} requests waited on a lock"
            time.sleep(0.05)


def test_a_retry_sent_while_its_twin_is_being_stored_is_stored_once(
    client: TestClient, db_url: str
) -> None:
    """The twin holds the run as log() does; the retry waits for it and stores nothing."""
    import threading

    from tunepilot.server._settings import normalize_db_url
    from tunepilot.server.db import Database, MetricRow, Run

    run_id = suggest(client, create(client)["id"]).json()["run_id"]
    body = {"rows": [{"metrics": {"loss": 2.0}}], "request_id": "log-request-twin"}
    answers: list[Any] = []
    retry = threading.Thread(
        target=lambda: answers.append(client.post(f"/api/v1/runs/{run_id}/log", json=body)))
    db = Database(normalize_db_url(db_url))
    try:
        with db.session() as twin:
            twin.get(Run, run_id, with_for_update=True)
            twin.add(MetricRow(run_id=run_id, step=0, data={"loss": 2.0},
                               request_id="log-request-twin"))
            twin.flush()
            retry.start()
            if db.sqlite:
                time.sleep(0.5)
            else:
                _wait_for_lock_waiters(db, 1)
            assert retry.is_alive()  # it waits for the twin's transaction
        retry.join(30)
    finally:
        db.dispose()
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    rows = client.get(f"/api/v1/runs/{run_id}/metrics").json()
    assert [(r["step"], r["data"]) for r in rows] == [(0, {"loss": 2.0})]


def test_concurrent_logs_to_one_run_lose_nothing(client: TestClient, db_url: str) -> None:
    """Two logs with different ids (two threads of one program) both reach the summary.

    A session holding the run's row makes both requests arrive while the other is in
    flight; without a lock on the run, each wrote back the summary and history it
    had read, and the later one erased the earlier one's keys and value.
    """
    import threading

    from tunepilot.server._settings import normalize_db_url
    from tunepilot.server.db import Database, Run

    run_id = suggest(client, create(client)["id"]).json()["run_id"]
    answers: list[Any] = []

    def log(metrics: dict[str, float], request_id: str) -> None:
        body = {"rows": [{"metrics": metrics}], "request_id": request_id}
        answers.append(client.post(f"/api/v1/runs/{run_id}/log", json=body))

    threads = [threading.Thread(target=log, args=({"loss": 2.0, "train": 1.0}, "log-request-a")),
               threading.Thread(target=log, args=({"loss": 1.0, "val": 3.0}, "log-request-b"))]
    db = Database(normalize_db_url(db_url))
    try:
        with db.session() as holder:
            holder.get(Run, run_id, with_for_update=True)
            for thread in threads:
                thread.start()
            if db.sqlite:
                time.sleep(0.5)
            else:
                _wait_for_lock_waiters(db, 2)
        for thread in threads:
            thread.join(30)
        with db.session() as session:
            history = session.get(Run, run_id).metric_history
    finally:
        db.dispose()
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    run = client.get(f"/api/v1/runs/{run_id}").json()
    assert {"train", "val"} <= set(run["summary"]), run["summary"]
    assert sorted(history) == [1.0, 2.0]
    rows = client.get(f"/api/v1/runs/{run_id}/metrics").json()
    assert [r["step"] for r in rows] == [0, 1] and run["n_rows"] == 2


def test_finish_is_idempotent_but_a_finished_run_takes_no_logs(client: TestClient) -> None:
    sid = create(client)["id"]
    run = run_once(client, sid, 0.2)
    again = client.post(f"/api/v1/runs/{run['id']}/finish", json={})
    assert again.status_code == 200 and again.json()["value"] == 0.2
    late = client.post(f"/api/v1/runs/{run['id']}/log", json={"rows": [{"metrics": {"x": 1}}]})
    assert late.status_code == 409 and late.json()["reason"] == "run_not_running"


def test_finished_without_the_metric_is_recorded_as_failed_in_optuna(client: TestClient) -> None:
    sid = create(client)["id"]
    run_id = suggest(client, sid).json()["run_id"]
    run = client.post(f"/api/v1/runs/{run_id}/finish", json={"summary": {"acc": 1}}).json()
    assert run["state"] == "finished" and "no finite 'loss'" in run["fail_reason"]


def test_stats_history_parallel_coordinates_and_importance(client: TestClient) -> None:
    sid = create(client)["id"]
    assert client.get(f"/api/v1/sweeps/{sid}/importance").json()["reason"] == "not_enough_runs"
    for loss in (3.0, 1.0, 2.0, 0.5):
        run_once(client, sid, loss)
    stats = client.get(f"/api/v1/sweeps/{sid}/stats").json()
    assert stats["counts"] == {"finished": 4} and stats["best_value"] == 0.5
    assert set(stats["best_config"]) == {"lr", "opt"}
    history = client.get(f"/api/v1/sweeps/{sid}/history").json()["points"]
    assert [p["best_value"] for p in history] == [3.0, 1.0, 1.0, 0.5]
    coords = client.get(f"/api/v1/sweeps/{sid}/parallel-coordinates").json()
    assert coords["params"] == ["lr", "opt.name"] and len(coords["rows"]) == 4
    importance = client.get(f"/api/v1/sweeps/{sid}/importance").json()["importances"]
    assert set(importance) == {"lr", "opt.name"}


def test_importance_is_computed_once_per_set_of_finished_runs(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A spy around Optuna's real function: it counts the computations, nothing else.
    calls: list[int] = []
    real = optuna.importance.get_param_importances

    def counting_spy(study: optuna.Study, **kwargs: Any) -> dict[str, float]:
        calls.append(len(study.trials))
        return real(study, **kwargs)

    monkeypatch.setattr(optuna.importance, "get_param_importances", counting_spy)
    sid = create(client)["id"]
    for loss in (3.0, 1.0, 2.0):
        run_once(client, sid, loss)
    url = f"/api/v1/sweeps/{sid}/importance"
    first = client.get(url).json()
    assert client.get(url).json() == first and len(calls) == 1  # an unchanged sweep
    assert client.get(url, params={"evaluator": "ped_anova"}).status_code == 200
    assert len(calls) == 2  # another evaluator is another answer
    suggest(client, sid)  # a running run changes nothing that importance reads
    assert client.get(url).json() == first and len(calls) == 2
    run_once(client, sid, 0.5)
    assert set(client.get(url).json()["importances"]) == {"lr", "opt.name"}
    assert len(calls) == 3  # a newly finished run is read


def test_update_and_delete(client: TestClient) -> None:
    sid = create(client)["id"]
    run_once(client, sid, 1.0)
    changed = client.patch(f"/api/v1/sweeps/{sid}", json={"run_cap": 5, "name": "renamed"})
    assert changed.json()["run_cap"] == 5 and changed.json()["name"] == "renamed"
    assert client.delete(f"/api/v1/sweeps/{sid}").status_code == 204
    assert client.get(f"/api/v1/sweeps/{sid}").status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"config": {"method": "bayes", "parameters": {"x": {"min": 0, "max": 1}}}},
         "needs a 'metric'"),
        ({"config": {"method": "grid", "parameters": {"x": {"min": 0.0, "max": 1.0}}}},
         "grid sweep cannot enumerate"),
        ({"config": {"method": "random", "parameters": {"x": {"distribution": "zipf"}}}},
         "unknown distribution 'zipf'"),
        ({"config": {"method": "bayes", "metric": {"name": "l"}, "sampler": {"n_startup": 3},
                     "parameters": {"x": {"min": 0, "max": 1}}}},
         "did you mean 'n_startup_trials'"),
    ],
)
def test_invalid_configs_are_refused_with_the_field_named(
    client: TestClient, body: dict[str, Any], fragment: str
) -> None:
    response = client.post("/api/v1/sweeps", json=body)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


def test_non_finite_metrics_are_refused(client: TestClient) -> None:
    sid = create(client)["id"]
    run_id = suggest(client, sid).json()["run_id"]
    response = client.post(f"/api/v1/runs/{run_id}/log",
                           content=b'{"rows": [{"metrics": {"loss": NaN}}]}',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_unknown_ids_are_404(client: TestClient) -> None:
    assert client.get("/api/v1/sweeps/nope").status_code == 404
    assert client.post("/api/v1/runs/nope/heartbeat").status_code == 404
    assert client.post("/api/v1/sweeps/nope/suggest").status_code == 404


def test_hyperband_asks_a_bad_run_to_stop(client: TestClient) -> None:
    config = {**RANDOM, "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2}}
    sid = create(client, config)["id"]
    for history in ((1.0, 0.5, 0.4), (1.0, 0.6)):
        good = suggest(client, sid).json()["run_id"]
        answer = client.post(f"/api/v1/runs/{good}/log",
                             json={"rows": [{"metrics": {"loss": v}} for v in history]})
        assert answer.json()["stop"] is False
    bad = suggest(client, sid).json()["run_id"]
    answer = client.post(f"/api/v1/runs/{bad}/log",
                         json={"rows": [{"metrics": {"loss": v}} for v in (2.0, 1.9)]}).json()
    assert answer["stop"] is True and "hyperband" in answer["reason"]
    assert client.post(f"/api/v1/runs/{bad}/heartbeat").json()["stop"] is True
    stopped = client.post(f"/api/v1/runs/{bad}/finish", json={"state": "stopped"}).json()
    assert stopped["state"] == "stopped"


def test_the_database_is_an_optuna_storage(client: TestClient, db_url: str) -> None:
    import optuna

    from tunepilot.server.db import make_storage
    from tunepilot.server._settings import normalize_db_url

    sweep = create(client)
    run_once(client, sweep["id"], 0.25)
    storage = make_storage(normalize_db_url(db_url))
    try:
        study = optuna.load_study(study_name=sweep["study_name"], storage=storage)
        assert study.best_value == 0.25 and study.user_attrs["tunepilot.sweep_id"] == sweep["id"]
    finally:
        storage.engine.dispose()


def test_a_retried_create_makes_one_sweep(client: TestClient, db_url: str) -> None:
    from tunepilot.server._settings import normalize_db_url
    from tunepilot.server.db import make_storage

    body = {"config": RANDOM, "project": "retry", "request_id": "create-request-0001"}
    first = client.post("/api/v1/sweeps", json=body)
    again = client.post("/api/v1/sweeps", json=body)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert client.get("/api/v1/sweeps", params={"project": "retry"}).json()["total"] == 1
    storage = make_storage(normalize_db_url(db_url))
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        assert names.count(first.json()["study_name"]) == 1
        assert len([n for n in names if n.startswith("tunepilot-sweep-")]) == len(
            client.get("/api/v1/sweeps", params={"limit": 500}).json()["items"])
    finally:
        storage.engine.dispose()
    other = client.post("/api/v1/sweeps", json={**body, "config": {**RANDOM, "method": "bayes"}})
    assert other.status_code == 409 and other.json()["reason"] == "request_id_reused"
    elsewhere = client.post("/api/v1/sweeps", json={**body, "project": "another"})
    assert elsewhere.status_code == 409 and elsewhere.json()["reason"] == "request_id_reused"


def test_a_retried_suggest_gets_the_same_run(client: TestClient) -> None:
    sid = create(client)["id"]
    body = {"agent": "a", "request_id": "retry-me-0001"}
    first = client.post(f"/api/v1/sweeps/{sid}/suggest", json=body).json()
    again = client.post(f"/api/v1/sweeps/{sid}/suggest", json=body).json()
    assert again["run_id"] == first["run_id"] and again["config"] == first["config"]
    assert client.get(f"/api/v1/sweeps/{sid}").json()["n_suggested"] == 1
    other = client.post(f"/api/v1/sweeps/{sid}/suggest",
                        json={"agent": "a", "request_id": "retry-me-0002"}).json()
    assert other["run_id"] != first["run_id"]
    elsewhere = client.post(f"/api/v1/sweeps/{create(client)['id']}/suggest", json=body)
    assert elsewhere.status_code == 409 and elsewhere.json()["reason"] == "request_id_reused"


def test_a_log_stored_while_the_run_finishes_keeps_its_summary_keys(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault injection: a log lands between finish()'s first read and its write.

    Before, finish wrote back the summary it had read first, erasing the log's keys.
    """
    from tunepilot.server._runs import RunService

    ctx = client.app.state.tunepilot  # type: ignore[attr-defined]
    sweep = create(client)
    run_id = suggest(client, sweep["id"]).json()["run_id"]
    assert client.post(f"/api/v1/runs/{run_id}/log",
                       json={"rows": [{"metrics": {"loss": 2.0}}]}).status_code == 200
    real = ctx.storage.set_trial_state_values

    def log_first_then_tell_optuna(*args: Any, **kwargs: Any) -> Any:
        RunService(ctx).log(run_id, [(None, {"loss": 1.5, "val_acc": 0.9})])
        return real(*args, **kwargs)

    monkeypatch.setattr(ctx.storage, "set_trial_state_values", log_first_then_tell_optuna)
    done = client.post(f"/api/v1/runs/{run_id}/finish", json={"summary": {"epochs": 3}})
    assert done.status_code == 200, done.text
    run = client.get(f"/api/v1/runs/{run_id}").json()
    assert run["summary"] == {"loss": 1.5, "val_acc": 0.9, "epochs": 3}
    # The value is the one Optuna recorded, and the mismatch is said.
    assert run["state"] == "finished" and run["value"] == 2.0
    trial = optuna.load_study(study_name=sweep["study_name"], storage=ctx.storage).trials[0]
    assert trial.value == 2.0
    assert any("a log arrived while it finished" in r.getMessage() for r in caplog.records)


def test_a_failed_runs_reason_is_stored_redacted(client: TestClient, db_url: str) -> None:
    sid = create(client)["id"]
    run_id = suggest(client, sid).json()["run_id"]
    reason = "OperationalError: cannot reach postgresql://train:pw-33ab9@db:5432/runs"
    run = client.post(f"/api/v1/runs/{run_id}/finish",
                      json={"state": "failed", "reason": reason}).json()
    assert run["fail_reason"] == "OperationalError: cannot reach postgresql://train:***@db:5432/runs"
    from tunepilot.server._settings import normalize_db_url
    from tunepilot.server.db import make_storage

    study_name = client.get(f"/api/v1/sweeps/{sid}").json()["study_name"]
    storage = make_storage(normalize_db_url(db_url))
    try:
        trial = optuna.load_study(study_name=study_name, storage=storage).trials[0]
        assert trial.user_attrs["fail_reason"] == run["fail_reason"]
    finally:
        storage.engine.dispose()


@pytest.mark.parametrize(("name", "missing"), [("gp", "torch"), ("cmaes", "cmaes")])
def test_a_sampler_whose_package_is_missing_is_refused_when_made(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, name: str, missing: str
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    config = {**RANDOM, "method": "bayes", "sampler": {"name": name}}
    refused = client.post("/api/v1/sweeps", json={"config": config})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == (
        f"sampler.name: the {name} sampler needs {missing}, not installed on the server: "
        f"pip install {missing} (or use another sampler)")
