"""Restarting the server mid-sweep: nothing is lost and agents carry on."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tunepilot.testing import SweepServer

AGENT = """
import sys, time
import tunepilot.sdk as wandb

def train():
    wandb.init()
    for step in range(3):
        time.sleep(0.1)
        wandb.log({"loss": wandb.config["x"] + step})

wandb.agent(sys.argv[2], function=train, url=sys.argv[1])
"""
CAP = 40


def finished(api: str, sweep_id: str) -> list[dict[str, object]]:
    items = httpx.get(f"{api}/sweeps/{sweep_id}/runs", params={"limit": 1000}).json()["items"]
    return [r for r in items if r["state"] == "finished"]


@pytest.mark.slow
def test_kill_9_and_restart_of_the_server_mid_sweep(db_url: str) -> None:
    with SweepServer(db_url, process=True, heartbeat_interval=1.0) as server:
        api = f"{server.url}/api/v1"
        sid = httpx.post(f"{api}/sweeps", json={"config": {
            "method": "random", "metric": {"name": "loss"}, "run_cap": CAP,
            "parameters": {"x": {"min": 0.0, "max": 1.0}}}}).json()["id"]
        agents = [subprocess.Popen([sys.executable, "-c", AGENT, server.url, sid])
                  for _ in range(4)]
        try:
            deadline = time.monotonic() + 120
            while len(finished(api, sid)) < 8:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            server.kill()
            time.sleep(1.0)
            restarted = time.monotonic()  # counted from the restart, start-up included
            server.start()
            before = len(finished(api, sid))
            while len(finished(api, sid)) <= before:
                assert time.monotonic() - restarted < 10, "agents did not carry on within 10 s"
                time.sleep(0.05)
            print(f"agents carried on {time.monotonic() - restarted:.2f} s after the restart")
            for agent in agents:
                assert agent.wait(timeout=300) == 0
        finally:
            for agent in agents:
                agent.kill()
                agent.wait()
        runs = httpx.get(f"{api}/sweeps/{sid}/runs", params={"limit": 1000}).json()["items"]
        sweep = httpx.get(f"{api}/sweeps/{sid}").json()
    done = [r for r in runs if r["state"] == "finished"]
    # Every configuration handed out ended finished: a run lost in the crash was
    # failed by the reaper and its configuration finished on retry.
    assert sweep["n_suggested"] == CAP and sweep["state"] == "finished"
    assert len(done) == CAP and len({str(r["config"]) for r in done}) == CAP
    assert {str(r["config"]) for r in runs} == {str(r["config"]) for r in done}
