"""Lost runs: failed by the reaper and their configuration handed out again, once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tunepilot.server import Settings
from tunepilot.server._context import ServerContext
from tunepilot.server._runs import RunService
from tunepilot.server.db._models import utcnow
from tunepilot.testing import SweepServer

CONFIG = {"method": "random", "metric": {"name": "loss"},
          "parameters": {"x": {"min": 0.0, "max": 1.0}}}


def _reaper(db_url: str, **settings: Any) -> tuple[ServerContext, RunService]:
    ctx = ServerContext.open(Settings(db=db_url, **settings))
    ctx.liveness.started -= 3600  # as if the server had been up for a while
    return ctx, RunService(ctx)


def test_a_silent_run_is_failed_and_its_config_comes_back_once(
    client: TestClient, db_url: str
) -> None:
    sid = client.post("/api/v1/sweeps", json={"config": CONFIG}).json()["id"]
    lost = client.post(f"/api/v1/sweeps/{sid}/suggest").json()
    ctx, runs = _reaper(db_url, heartbeat_interval=1.0, max_retries=1)
    try:
        assert lost["run_id"] not in runs.reap()  # just leased: not lost yet
        assert lost["run_id"] in runs.reap(now=utcnow() + timedelta(seconds=5))
        failed = client.get(f"/api/v1/runs/{lost['run_id']}").json()
        assert failed["state"] == "failed"
        assert failed["fail_reason"].startswith("lost: no heartbeat from its agent (unnamed) for ")
        retry = client.post(f"/api/v1/sweeps/{sid}/suggest").json()
        assert retry["config"] == lost["config"] and retry["attempt"] == 2
        assert client.get(f"/api/v1/runs/{retry['run_id']}").json()["retry_of"] == lost["run_id"]
        # Lost again: max_retries=1 is spent, so it is not queued a third time.
        assert retry["run_id"] in runs.reap(now=utcnow() + timedelta(seconds=5))
        fresh = client.post(f"/api/v1/sweeps/{sid}/suggest").json()
        assert fresh["attempt"] == 1 and fresh["config"] != lost["config"]
    finally:
        ctx.close()


def test_the_reason_names_the_agent(client: TestClient, db_url: str) -> None:
    sid = client.post("/api/v1/sweeps", json={"config": CONFIG}).json()["id"]
    lost = client.post(f"/api/v1/sweeps/{sid}/suggest", json={"agent": "gpu-7:4242"}).json()
    ctx, runs = _reaper(db_url, heartbeat_interval=1.0)
    try:
        assert lost["run_id"] in runs.reap(now=utcnow() + timedelta(seconds=5))  # PostgreSQL is shared
        reason = client.get(f"/api/v1/runs/{lost['run_id']}").json()["fail_reason"]
        assert reason.startswith("lost: no heartbeat from agent gpu-7:4242 for ")
    finally:
        ctx.close()


def test_a_run_that_beats_is_not_reaped(client: TestClient, db_url: str) -> None:
    sid = client.post("/api/v1/sweeps", json={"config": CONFIG}).json()["id"]
    run_id = client.post(f"/api/v1/sweeps/{sid}/suggest").json()["run_id"]
    ctx, runs = _reaper(db_url, heartbeat_interval=1.0)
    try:
        client.post(f"/api/v1/runs/{run_id}/heartbeat")
        assert run_id not in runs.reap(now=utcnow() + timedelta(seconds=1))
    finally:
        ctx.close()


def test_nothing_is_reaped_until_the_server_was_up_for_a_timeout(
    client: TestClient, db_url: str
) -> None:
    sid = client.post("/api/v1/sweeps", json={"config": CONFIG}).json()["id"]
    client.post(f"/api/v1/sweeps/{sid}/suggest")
    ctx = ServerContext.open(Settings(db=db_url, heartbeat_interval=1.0))
    try:
        # Agents could not beat while this server was down: give them a full timeout.
        assert RunService(ctx).reap(now=utcnow() + timedelta(seconds=1)) == []
    finally:
        ctx.close()


def test_a_jump_of_the_wall_clock_fails_no_run_that_beats(
    client: TestClient, db_url: str
) -> None:
    sid = client.post("/api/v1/sweeps", json={"config": CONFIG}).json()["id"]
    run_id = client.post(f"/api/v1/sweeps/{sid}/suggest").json()["run_id"]
    ctx, runs = _reaper(db_url, heartbeat_interval=1.0)
    monotonic = [1000.0]
    ctx.liveness.clock, ctx.liveness.started = (lambda: monotonic[0]), monotonic[0] - 3600
    try:
        runs.heartbeat(run_id)
        # The wall clock jumps 1 h ahead: every heartbeat in the database looks an hour old.
        jumped = utcnow() + timedelta(hours=1)
        assert run_id not in runs.reap(now=jumped)
        monotonic[0] += 1.0
        runs.heartbeat(run_id)
        assert run_id not in runs.reap(now=jumped + timedelta(seconds=1))
        assert client.get(f"/api/v1/runs/{run_id}").json()["state"] == "running"
        # Then the agent goes silent, on the monotonic clock too.
        monotonic[0] += 5.0
        assert run_id in runs.reap(now=jumped + timedelta(seconds=6))
        reason = client.get(f"/api/v1/runs/{run_id}").json()["fail_reason"]
        assert reason == "lost: no heartbeat from its agent (unnamed) for 5.0 s"
    finally:
        ctx.close()


def test_runs_of_a_sweep_whose_model_is_gone_are_still_reaped_and_finished(
    make_client: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tunepilot.testing import FakeOpenAIServer

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeOpenAIServer() as llm:
        client = make_client(llm_model="openai/test-model", llm_api_base=llm.base_url)
        config = {**CONFIG, "method": "llm", "run_cap": 2, "sampler": {"safeguard": False}}
        sid = client.post("/api/v1/sweeps", json={"config": config}).json()["id"]
        lost, done = (client.post(f"/api/v1/sweeps/{sid}/suggest").json()["run_id"]
                      for _ in range(2))
    # Restarted without the key: the sampler cannot be made any more.
    monkeypatch.delenv("OPENAI_API_KEY")
    ctx, runs = _reaper(db_url, heartbeat_interval=1.0, llm_model="openai/test-model")
    try:
        # The run cap is reached: finishing reads the config, to see if the sweep ends.
        finished = runs.finish(done, state="finished", summary={"loss": 0.5}, reason=None)
        assert finished.state == "finished" and finished.value == 0.5
        assert lost in runs.reap(now=utcnow() + timedelta(seconds=5))
    finally:
        ctx.close()


AGENT = """
import sys, time
import tunepilot.sdk as wandb

def train():
    wandb.init()
    print("started", flush=True)
    time.sleep(120)

wandb.agent(sys.argv[2], function=train, url=sys.argv[1])
"""


@pytest.mark.slow
def test_kill_9_of_the_only_agent(db_url: str) -> None:
    interval = 1.0
    with SweepServer(db_url, heartbeat_interval=interval) as server:
        api = f"{server.url}/api/v1"
        sid = httpx.post(f"{api}/sweeps", json={"config": CONFIG}).json()["id"]
        agent = subprocess.Popen([sys.executable, "-c", AGENT, server.url, sid],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert agent.stdout is not None and agent.stdout.readline().strip() == "started"
            time.sleep(interval * 1.5)  # a heartbeat or two
            runs = httpx.get(f"{api}/sweeps/{sid}/runs").json()["items"]
            assert [r["state"] for r in runs] == ["running"]
            lost = runs[0]
        finally:
            agent.send_signal(signal.SIGKILL)
            agent.wait()
            assert agent.stdout is not None
            agent.stdout.close()
        killed_at = time.monotonic()
        while httpx.get(f"{api}/runs/{lost['id']}").json()["state"] == "running":
            assert time.monotonic() - killed_at < 10, "the lost run was never failed"
            time.sleep(0.05)
        noticed = time.monotonic() - killed_at
        print(f"the lost run was failed {noticed:.2f} s after kill -9")  # shown with -s
        assert noticed <= 3 * interval, f"failed {noticed:.2f} s after kill -9"

        retry = httpx.post(f"{api}/sweeps/{sid}/suggest", json={}).json()
        assert retry["config"] == lost["config"] and retry["attempt"] == 2
        httpx.post(f"{api}/runs/{retry['run_id']}/finish", json={"summary": {"loss": 0.1}})
        after = httpx.post(f"{api}/sweeps/{sid}/suggest", json={}).json()
        assert after["attempt"] == 1 and after["config"] != lost["config"]
        runs = httpx.get(f"{api}/sweeps/{sid}/runs").json()["items"]
        same = [r for r in runs if r["config"] == lost["config"]]
        assert sorted(r["state"] for r in same) == ["failed", "finished"]
