"""Many agent processes against one live server: no lost, duplicated or extra runs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import optuna
import pytest

from tunepilot.server._settings import normalize_db_url
from tunepilot.server.db import make_storage
from tunepilot.testing import SweepServer

# An agent process: runs `count` trials of a cheap objective through the SDK and prints
# how many HTTP answers of each status class it saw (5xx included, even when retried).
AGENT = """
import json, sys, httpx
import tunepilot.sdk as wandb
from tunepilot.sdk import Client

url, sweep_id, count = sys.argv[1], sys.argv[2], sys.argv[3]
statuses = {}

class Counting(httpx.HTTPTransport):
    def handle_request(self, request):
        response = super().handle_request(request)
        key = f"{response.status_code // 100}xx"
        statuses[key] = statuses.get(key, 0) + 1
        return response

def train():
    wandb.init()
    x = wandb.config["x"]
    wandb.log({"loss": (x - 0.3) ** 2})

client = Client(url, transport=Counting())
n = wandb.agent(sweep_id, function=train, count=None if count == "all" else int(count),
                client=client)
print(json.dumps({"runs": n, "statuses": statuses}))
"""


def run_agents(url: str, sweep_id: str, n_agents: int, count: str) -> list[dict[str, Any]]:
    processes = [
        subprocess.Popen([sys.executable, "-c", AGENT, url, sweep_id, count],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(n_agents)
    ]
    reports = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def all_runs(url: str, sweep_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    while True:
        page = httpx.get(f"{url}/api/v1/sweeps/{sweep_id}/runs",
                         params={"limit": 1000, "offset": len(runs)}).json()
        runs.extend(page["items"])
        if len(runs) >= page["total"]:
            return runs


def create(url: str, config: dict[str, Any]) -> str:
    response = httpx.post(f"{url}/api/v1/sweeps", json={"config": config, "project": "agents"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def server(db_url: str) -> Iterator[SweepServer]:
    with SweepServer(db_url, heartbeat_interval=2.0) as live:
        yield live


RANDOM = {"method": "random", "metric": {"name": "loss"},
          "parameters": {"x": {"min": 0.0, "max": 1.0}}}


@pytest.mark.slow
def test_run_cap_with_8_agents_ends_with_exactly_that_many_runs(server: SweepServer) -> None:
    sweep_id = create(server.url, {**RANDOM, "run_cap": 20})
    reports = run_agents(server.url, sweep_id, 8, "all")
    runs = all_runs(server.url, sweep_id)
    assert sum(r["runs"] for r in reports) == 20
    assert len(runs) == 20 and {r["state"] for r in runs} == {"finished"}
    assert sorted(r["trial_number"] for r in runs) == list(range(20))
    sweep = httpx.get(f"{server.url}/api/v1/sweeps/{sweep_id}").json()
    assert sweep["state"] == "finished" and sweep["n_suggested"] == 20
    assert all(r["statuses"].get("5xx", 0) == 0 for r in reports)


@pytest.mark.slow
def test_3x3_grid_with_8_agents_runs_each_configuration_once(server: SweepServer) -> None:
    sweep_id = create(server.url, {
        "method": "grid", "metric": {"name": "loss"},
        "parameters": {"x": {"values": [0.1, 0.2, 0.3]}, "y": {"values": ["a", "b", "c"]}},
    })
    run_agents(server.url, sweep_id, 8, "all")
    runs = all_runs(server.url, sweep_id)
    assert len(runs) == 9
    configs = {(r["config"]["x"], r["config"]["y"]) for r in runs}
    assert configs == {(x, y) for x in (0.1, 0.2, 0.3) for y in "abc"}
    assert httpx.get(f"{server.url}/api/v1/sweeps/{sweep_id}").json()["state"] == "finished"


@pytest.mark.slow
@pytest.mark.postgres
def test_16_agents_x_50_trials_on_postgres_lose_and_duplicate_nothing(postgres_url: str) -> None:
    with SweepServer(postgres_url, heartbeat_interval=5.0) as server:
        sweep_id = create(server.url, RANDOM)
        reports = run_agents(server.url, sweep_id, 16, "50")
        runs = all_runs(server.url, sweep_id)
        study_name = httpx.get(f"{server.url}/api/v1/sweeps/{sweep_id}").json()["study_name"]
    assert [r["runs"] for r in reports] == [50] * 16
    assert len(runs) == 800
    assert {r["state"] for r in runs} == {"finished"}
    assert sorted(r["trial_number"] for r in runs) == list(range(800))
    assert sum(r["statuses"].get("5xx", 0) for r in reports) == 0
    storage = make_storage(normalize_db_url(postgres_url))
    try:
        trials = optuna.load_study(study_name=study_name, storage=storage).get_trials()
    finally:
        storage.engine.dispose()
    assert sorted(t.number for t in trials) == list(range(800))
    assert {t.state for t in trials} == {optuna.trial.TrialState.COMPLETE}
