"""One validator for every way in: the dashboard's form refuses what the API refuses, and a
refused or failed create leaves neither a sweep row nor an Optuna study."""

from __future__ import annotations

import re
from collections.abc import Iterator

import optuna
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tunepilot.server import Settings, create_app

LOCAL = "http://127.0.0.1"
JSON = {"Content-Type": "application/json"}
HEAD = "method: random\nmetric: {name: loss}\nparameters:\n  x: {values: [1, 2]}\n"


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:
    app = create_app(Settings(db=db_url, reaper=False))
    yield app
    app.state.tunepilot.close()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


def stored(app: FastAPI, client: TestClient) -> tuple[int, int]:
    """(sweeps, Optuna studies) in the database, to compare before and after."""
    studies = optuna.get_all_study_names(storage=app.state.tunepilot.storage)
    total: int = client.get("/api/v1/sweeps").json()["total"]
    return total, len(studies)


def post_form(client: TestClient, config: str) -> tuple[int, str]:
    page = client.get("/ui/sweeps/new").text
    token = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page)
    assert token
    answer = client.post("/ui/sweeps/new", data={"config": config, "csrf": token.group(1)})
    return answer.status_code, answer.text


@pytest.mark.parametrize(("extra", "message"), [
    ("description: 2024-01-01\n", "a date is not a JSON value"),
    ("notes: !!binary aGVsbG8=\n", "a bytes is not a JSON value"),
    ("tags: !!set {a, b}\n", "a set is not a JSON value"),
    ("notes: \"a\\0b\"\n", "NUL characters"),
    ("notes: \"\\ud800\"\n", "lone surrogate"),
    (f"big: {'9' * 4000}\n", "integers must be within"),
    (f"big: {2**63}\n", "integers must be within"),
    ("deep: " + "[" * 5000 + "]" * 5000 + "\n", "nest more than 64 deep"),
    ("weights: {1: a}\n", "keys must be text"),
])
def test_the_form_refuses_what_json_cannot_carry_back(
    app: FastAPI, client: TestClient, extra: str, message: str
) -> None:
    before = stored(app, client)
    status, text = post_form(client, HEAD + extra)
    assert status == 422, text[-500:]
    assert message in text.replace("&#39;", "'")
    assert stored(app, client) == before


def test_a_lone_surrogate_is_refused_before_anything_is_stored(
    app: FastAPI, client: TestClient
) -> None:
    before = stored(app, client)
    config = '{"method": "random", "parameters": {"x": {"values": [1]}}, "note": "\\ud800"}'
    for body in (f'{{"config": {config}}}',
                 '{"config": {"method": "random", "parameters": {"\\udc80": {"values": [1]}}}}',
                 ('{"config": {"method": "random", "parameters": {"x": {"values": [1]}}}, '
                  '"name": "\\ud800"}')):
        answer = client.post("/api/v1/sweeps", content=body.encode(), headers=JSON)
        assert answer.status_code == 422, answer.text
        assert re.search("lone surrogate|unicode string", answer.text), answer.text
    assert stored(app, client) == before
    assert client.get("/api/v1/sweeps").status_code == 200
    assert client.get("/ui/sweeps").status_code == 200


def test_a_metric_key_json_cannot_carry_back_is_refused(client: TestClient) -> None:
    created = client.post("/api/v1/sweeps", headers=JSON, json={
        "config": {"method": "random", "parameters": {"x": {"values": [1]}}}})
    lease = client.post(f"/api/v1/sweeps/{created.json()['id']}/suggest", headers=JSON).json()
    run = lease["run_id"]
    answer = client.post(f"/api/v1/runs/{run}/log", headers=JSON,
                         content=b'{"rows": [{"metrics": {"\\udcff": 1.0}}]}')
    assert answer.status_code == 422 and "lone surrogate" in answer.text
    assert client.get(f"/ui/runs/{run}").status_code == 200
    assert client.get(f"/ui/api/runs/{run}/metrics").status_code == 200


def test_a_create_that_fails_after_its_study_leaves_no_study(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tunepilot.server.db import repository

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the database went away mid-create")

    # The one fault no validator can prevent: an unexpected error between study and row.
    monkeypatch.setattr(repository, "project_named", broken)
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as client:
        before = len(optuna.get_all_study_names(storage=app.state.tunepilot.storage))
        answer = client.post("/api/v1/sweeps", headers=JSON, json={
            "config": {"method": "random", "parameters": {"x": {"values": [1]}}}})
        assert answer.status_code == 500
        after = len(optuna.get_all_study_names(storage=app.state.tunepilot.storage))
    assert after == before
