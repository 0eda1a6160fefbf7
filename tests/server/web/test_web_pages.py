"""Dashboard pages over HTTP: every page, headers, the create form, lifecycle, sorting, studies."""

from __future__ import annotations

import uuid

import re
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from tunepilot.server import Settings, create_app
from tunepilot.server.db import make_storage
from tunepilot.server.web import CSP, CSP_WEBGL
from tunepilot.server.web._studies import list_studies

LOCAL = "http://127.0.0.1"
#: The API refuses writes that are not JSON, bodyless ones included.
JSON = {"Content-Type": "application/json"}
CONFIG = {"method": "random", "metric": {"name": "loss", "goal": "minimize"},
          "parameters": {"lr": {"min": 0.001, "max": 0.1}, "opt": {"values": ["adam", "sgd"]}}}


@pytest.fixture
def ui(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(db=db_url, reaper=False)), base_url=LOCAL) as client:
        yield client


def make_sweep(client: TestClient, runs: int, **fields: object) -> tuple[str, list[str]]:
    created = client.post("/api/v1/sweeps", json={"config": CONFIG, **fields})
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    ids = []
    for i in range(runs):
        lease = client.post(f"/api/v1/sweeps/{sweep_id}/suggest", headers=JSON).json()
        ids.append(lease["run_id"])
        client.post(f"/api/v1/runs/{lease['run_id']}/log",
                    json={"rows": [{"metrics": {"loss": 2.0, "acc": 0.1}},
                                   {"metrics": {"loss": 1.0, "acc": 0.2}}]})
        client.post(f"/api/v1/runs/{lease['run_id']}/finish",
                    json={"summary": {"loss": (i * 7 % 5) + 0.5}})
    return sweep_id, ids


def test_every_page_answers_with_security_headers(ui: TestClient) -> None:
    sweep_id, runs = make_sweep(ui, 4, name="pages", description="a <b>bold</b> claim")
    tabs = ["overview", "runs", "best", "importance", "parallel", "history"]
    pages = ["/ui/sweeps", "/ui/sweeps?state=running&project=uncategorized&q=pag",
             "/ui/sweeps/new", f"/ui/runs/{runs[0]}", "/ui/studies"]
    pages += [f"/ui/sweeps/{sweep_id}?tab={tab}" for tab in tabs]
    for path in pages:
        page = ui.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        assert page.headers["content-type"].startswith("text/html")
        policy = CSP_WEBGL if "tab=parallel" in path else CSP
        assert page.headers["content-security-policy"] == policy, path
        assert page.headers["x-frame-options"] == "DENY"
        assert re.fullmatch(r"app;dur=[0-9.]+", page.headers["server-timing"])
    assert "unsafe-eval" not in CSP and "'unsafe-eval'" in CSP_WEBGL
    assert "'unsafe-inline'" not in CSP.split("script-src")[1].split(";")[0]
    detail = ui.get(f"/ui/sweeps/{sweep_id}").text
    assert "a &lt;b&gt;bold&lt;/b&gt; claim" in detail and "<b>bold" not in detail
    assert ui.get("/", follow_redirects=False).headers["location"] == "/ui/sweeps"
    missing = ui.get("/ui/sweeps/nosuchsweep")
    assert missing.status_code == 404 and "no sweep &#39;nosuchsweep&#39;" in missing.text
    assert ui.get("/ui/runs/nosuchrun").status_code == 404


def test_the_json_behind_live_updates_and_charts(ui: TestClient) -> None:
    sweep_id, runs = make_sweep(ui, 4)
    live = ui.get(f"/ui/api/sweeps/{sweep_id}/live").json()
    assert live["stats"]["total"] == 4 and live["stats"]["finished"] == 4
    assert [row["trial"] for row in live["rows"]] == [0, 1, 2, 3]
    assert live["actions"] == ["pause", "finish", "cancel"]
    values = [r["value"] for r in live["rows"]]
    assert live["stats"]["best_value"] == min(values)
    history = ui.get(f"/ui/api/sweeps/{sweep_id}/history").json()
    assert history == ui.get(f"/api/v1/sweeps/{sweep_id}/history").json()
    parallel = ui.get(f"/ui/api/sweeps/{sweep_id}/parallel").json()
    assert parallel["params"] == ["lr", "opt"] and len(parallel["rows"]) == 4
    assert parallel["best_run_id"] == live["stats"]["best_label"]
    importance = ui.get(f"/ui/api/sweeps/{sweep_id}/importance").json()
    assert set(importance["importances"]) == {"lr", "opt"}
    metrics = ui.get(f"/ui/api/runs/{runs[0]}/metrics").json()
    assert metrics["series"]["loss"] == {"steps": [0, 1], "values": [2.0, 1.0]}
    lease = ui.post(f"/api/v1/sweeps/{sweep_id}/suggest", headers=JSON).json()
    ui.post(f"/api/v1/runs/{lease['run_id']}/log", json={"rows": [
        {"metrics": {"loss": 2.0}}, {"metrics": {"loss": "NaN", "note": "diverged"}},
        {"metrics": {"loss": 1.0}}]})
    gaps = ui.get(f"/ui/api/runs/{lease['run_id']}/metrics").json()["series"]
    assert gaps == {"loss": {"steps": [0, 1, 2], "values": [2.0, None, 1.0]}}
    empty, _ = make_sweep(ui, 1)
    assert "unavailable" in ui.get(f"/ui/api/sweeps/{empty}/importance").json()


def test_runs_sort_and_page(ui: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from tunepilot.server.web import _sweeps

    monkeypatch.setattr(_sweeps, "RUNS_PAGE", 4)
    sweep_id, _ = make_sweep(ui, 10)
    rows = ui.get(f"/ui/api/sweeps/{sweep_id}/live?sort=value&order=desc&page=1").json()
    everything = []
    for page in (1, 2, 3):
        answer = ui.get(f"/ui/api/sweeps/{sweep_id}/live?sort=value&order=desc&page={page}")
        everything += [r["value"] for r in answer.json()["rows"]]
    assert rows["page"] == {"number": 1, "pages": 3, "total": 10}
    assert everything == sorted(everything, reverse=True) and len(everything) == 10
    html = ui.get(f"/ui/sweeps/{sweep_id}?tab=runs&sort=value&order=asc&page=3").text
    assert "page 3 of 3 (10)" in html and html.count('data-run="') == 2


def test_the_create_form_shows_errors_inline_and_creates(ui: TestClient, csrf: Any) -> None:
    token = csrf(ui)
    bad_yaml = ui.post("/ui/sweeps/new", data={"config": "method: [", "project": "p",
                                               "csrf": token})
    assert bad_yaml.status_code == 422 and "not valid YAML" in bad_yaml.text
    assert "method: [" in bad_yaml.text  # the text is kept for fixing
    not_a_map = ui.post("/ui/sweeps/new", data={"config": "- 1\n- 2", "csrf": token})
    assert not_a_map.status_code == 422 and "must be a YAML mapping" in not_a_map.text
    invalid = ui.post("/ui/sweeps/new", data={
        "config": "method: random\nparameters:\n  lr: {min: 1, max: 0.1}", "csrf": token})
    assert invalid.status_code == 422 and "The sweep config is invalid" in invalid.text
    created = ui.post("/ui/sweeps/new", follow_redirects=False, data={
        "config": "method: grid\nparameters:\n  x: {values: [1, 2]}", "project": "forms",
        "name": "from the form", "description": "made in a browser", "csrf": token})
    assert created.status_code == 303
    sweep_id = created.headers["location"].rsplit("/", 1)[1]
    sweep = ui.get(f"/api/v1/sweeps/{sweep_id}").json()
    assert (sweep["state"], sweep["project"], sweep["name"], sweep["description"]) == (
        "pending", "forms", "from the form", "made in a browser")


def test_lifecycle_buttons_and_refused_actions(ui: TestClient, csrf: Any) -> None:
    sweep_id, _ = make_sweep(ui, 0, start=False)
    state = lambda: ui.get(f"/api/v1/sweeps/{sweep_id}").json()["state"]  # noqa: E731
    token = csrf(ui, f"/ui/sweeps/{sweep_id}")
    for action, expected in [("start", "running"), ("pause", "paused"), ("resume", "running"),
                             ("finish", "finished")]:
        answer = ui.post(f"/ui/sweeps/{sweep_id}/{action}",
                         data={"next": "/ui/sweeps", "csrf": token}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/sweeps"
        assert state() == expected
    refused = ui.post(f"/ui/sweeps/{sweep_id}/resume", data={"csrf": token})
    assert refused.status_code == 200 and "cannot resume sweep" in refused.text
    assert ui.post(f"/ui/sweeps/{sweep_id}/explode", data={"csrf": token}).status_code == 404
    # Another site's form cannot act on a sweep, even with the token.
    forged = ui.post(f"/ui/sweeps/{sweep_id}/cancel", data={"csrf": token},
                     headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403 and state() == "finished"


def test_studies_without_a_sweep_are_listed_read_only(
    ui: TestClient, db_url: str, request: pytest.FixtureRequest
) -> None:
    sweep_id, _ = make_sweep(ui, 2)
    name = f"runner-{sweep_id}"
    # One storage, disposed at the end: PostgreSQL connections must not outlive the test.
    storage = make_storage(db_url)
    request.addfinalizer(storage.engine.dispose)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for i in range(3):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        trial.set_user_attr("llm.source", "llm")
        trial.set_user_attr("llm.cost_usd", 0.001)
        trial.set_user_attr("llm.prompt_tokens", 100)
        trial.report(i / 2, step=0)
        study.tell(trial, float(i))
    optuna.create_study(study_name=f"{name}-empty", storage=storage)
    listing = ui.get("/ui/studies").text
    assert name in listing and f"tunepilot-sweep-{sweep_id}" not in listing
    listed = {s["name"]: s for s in list_studies(ui.app.state.tunepilot)}  # type: ignore[attr-defined]
    assert listed[name]["n_trials"] == 3 and listed[name]["best_value"] == 2
    assert listed[f"{name}-empty"]["n_trials"] == 0 and listed[f"{name}-empty"]["best_value"] is None
    study_id = study._study_id
    overview = ui.get(f"/ui/studies/{study_id}").text
    assert 'data-stat="total">3<' in overview and "/sweeps/" not in overview.split("<main>")[1]
    llm = ui.get(f"/ui/studies/{study_id}?tab=llm").text
    assert 'id="llm-cost">$0.0030<' in llm and 'id="llm-trials">3<' in llm
    as_json = ui.get(f"/ui/api/studies/{study_id}/llm").json()
    assert as_json["cost_usd"] == pytest.approx(0.003) and as_json["prompt_tokens"] == 300
    assert as_json["by_source"] == {"llm": 3} and as_json["page"]["total"] == 3
    assert ui.get(f"/ui/api/sweeps/{sweep_id}/llm").json()["n_trials"] == 0
    best = ui.get(f"/ui/studies/{study_id}?tab=best").text
    assert "trial 2" in best
    assert ui.get(f"/ui/api/studies/{study_id}/history").json()["points"][-1]["best_value"] == 2
    importance = ui.get(f"/ui/api/studies/{study_id}/importance").json()["importances"]
    assert importance == {"x": pytest.approx(1.0)}  # the only parameter
    trial = ui.get(f"/ui/api/studies/{study_id}/trials/1/metrics").json()
    assert trial["series"]["intermediate value"] == {"steps": [0], "values": [0.5]}
    sweep_study = optuna.load_study(study_name=f"tunepilot-sweep-{sweep_id}", storage=storage)
    assert ui.get(f"/ui/studies/{sweep_study._study_id}").status_code == 404
    assert ui.get("/ui/studies/999999").status_code == 404


def test_the_llm_tab_shows_the_blends_base_per_trial_and_in_all(
    ui: TestClient, db_url: str, request: pytest.FixtureRequest
) -> None:
    storage = make_storage(db_url)
    request.addfinalizer(storage.engine.dispose)
    study = optuna.create_study(study_name=f"blend-bases-{uuid.uuid4().hex[:8]}", storage=storage)
    for base in ("gp", "gp", "tpe"):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        for key, value in (("llm.source", "blend"), ("llm.blend_part", base), ("llm.base", base)):
            trial.set_user_attr(key, value)
        study.tell(trial, 1.0)
    as_json = ui.get(f"/ui/api/studies/{study._study_id}/llm").json()
    assert as_json["by_base"] == {"gp": 2, "tpe": 1}
    assert [row["base"] for row in as_json["rows"]] == ["tpe", "gp", "gp"]
    page = ui.get(f"/ui/studies/{study._study_id}?tab=llm").text
    assert "blend base: gp 2, tpe 1" in page and "(gp, base gp)" in page


def test_on_sqlite_reads_answer_while_another_program_holds_the_write_lock(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3
    import time

    from tunepilot.server import upgrade_database
    from tunepilot.server.db import _engine

    path = f"{tmp_path}/sweeps.db"
    upgrade_database(f"sqlite:///{path}")
    # Writers give up after 4 s here: a read that waited for the lock would take that long,
    # while one that does not wait stays far below it even on a loaded machine.
    monkeypatch.setattr(_engine, "SQLITE_TIMEOUT", 4.0)
    with TestClient(create_app(Settings(db=f"sqlite:///{path}", reaper=False)),
                    base_url=LOCAL) as ui:
        sweep_id, runs = make_sweep(ui, 3)
        storage = make_storage(f"sqlite:///{path}")
        study = optuna.create_study(study_name="runner-locked", storage=storage)
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
        storage.engine.dispose()
        study_id = study._study_id
        # Another program holds the write lock, as a slow bulk writer does.
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            reads = [
                "/ui/sweeps", f"/ui/sweeps/{sweep_id}", f"/ui/sweeps/{sweep_id}?tab=runs",
                f"/ui/api/sweeps/{sweep_id}/live", f"/ui/api/sweeps/{sweep_id}/importance",
                f"/ui/api/sweeps/{sweep_id}/history", f"/ui/runs/{runs[0]}",
                "/ui/studies", f"/ui/studies/{study_id}", f"/ui/api/studies/{study_id}/live",
                f"/ui/api/studies/{study_id}/history", f"/api/v1/sweeps/{sweep_id}",
                f"/api/v1/sweeps/{sweep_id}/runs", "/health",
            ]
            for path_ in reads:
                started = time.perf_counter()
                answer = ui.get(path_)
                took = time.perf_counter() - started
                assert answer.status_code == 200, (path_, answer.status_code, answer.text[:200])
                assert took < 3.0, (path_, took)  # no wait for the lock (4 s here, 60 by default)
            # A write still queues for the lock, and says so when it cannot have it.
            refused = ui.post(f"/api/v1/sweeps/{sweep_id}/suggest", headers=JSON)
            assert refused.status_code == 503 and "locked" in refused.text, refused.text
        finally:
            writer.rollback()
            writer.close()
        # The lock released, the write goes through and the next read sees it.
        assert ui.post(f"/api/v1/sweeps/{sweep_id}/suggest", headers=JSON).status_code == 201
        assert ui.get(f"/ui/api/sweeps/{sweep_id}/live").json()["stats"]["total"] == 4
