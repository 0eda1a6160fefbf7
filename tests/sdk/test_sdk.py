"""The W&B-compatible SDK against a real server (uvicorn in a thread, SQLite)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import tunepilot.sdk as wandb
from tunepilot.exceptions import ClientError
from tunepilot.sdk import Client, SweepController, expand_command
from tunepilot.testing import SweepServer

CONFIG = {"method": "random", "metric": {"name": "loss"},
          "parameters": {"lr": {"min": 0.01, "max": 0.1},
                         "model": {"parameters": {"depth": {"values": [2, 4]}}}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SweepServer]:
    db = tmp_path_factory.mktemp("sdk") / "sweeps.db"
    with SweepServer(f"sqlite:///{db}", heartbeat_interval=1.0) as live:
        yield live


def runs(server: SweepServer, sweep_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(
        f"{server.url}/api/v1/sweeps/{sweep_id}/runs").json()["items"]
    return items


def test_sweep_agent_init_config_log_summary(server: SweepServer) -> None:
    sweep_id = wandb.sweep(CONFIG, project="sdk", url=server.url)
    seen: list[dict[str, Any]] = []

    def train() -> None:
        run = wandb.init(config={"lr": 123.0, "epochs": 2, "model": {"width": 8}})
        seen.append(dict(wandb.config))
        assert run.config is wandb.config
        for epoch in range(wandb.config.epochs):
            wandb.log({"loss": wandb.config.lr * (epoch + 1)}, step=epoch)
        wandb.summary["note"] = "done"

    assert wandb.agent(sweep_id, function=train, count=3, url=server.url) == 3
    for config in seen:
        assert 0.01 <= config["lr"] <= 0.1  # the sweep's value overrides init's
        assert config["epochs"] == 2  # init's extra key is merged in
        assert config["model"]["width"] == 8 and config["model"]["depth"] in (2, 4)
    finished = runs(server, sweep_id)
    assert [r["state"] for r in finished] == ["finished"] * 3
    assert all(r["summary"]["note"] == "done" for r in finished)
    assert all(r["value"] == pytest.approx(r["config"]["lr"] * 2) for r in finished)


def test_a_stop_from_the_server_ends_the_function_with_run_stopped(server: SweepServer) -> None:
    sweep_id = wandb.sweep(CONFIG, url=server.url)
    stopped_at: list[int] = []

    def train() -> None:
        wandb.init()
        for step in range(1000):
            if step == 3:
                current = runs(server, sweep_id)[0]["id"]
                httpx.post(f"{server.url}/api/v1/runs/{current}/stop", json={"reason": "enough"})
            try:
                wandb.log({"loss": 1.0})
            except wandb.RunStopped:
                stopped_at.append(step)
                raise
            time.sleep(0.1)

    wandb.agent(sweep_id, function=train, count=1, url=server.url)
    (run,) = runs(server, sweep_id)
    assert run["state"] == "stopped" and stopped_at and stopped_at[0] < 40


def test_the_agent_gives_up_after_three_failures(server: SweepServer) -> None:
    sweep_id = wandb.sweep(CONFIG, url=server.url)

    def train() -> None:
        wandb.init()
        raise RuntimeError("out of memory")

    assert wandb.agent(sweep_id, function=train, url=server.url) == 3
    failed = runs(server, sweep_id)
    assert [r["state"] for r in failed] == ["failed"] * 3
    assert "RuntimeError: out of memory" in failed[0]["fail_reason"]


def test_sweep_controller(server: SweepServer) -> None:
    with SweepController(config={**CONFIG, "method": "bayes"}, url=server.url) as controller:
        for _ in range(4):
            suggestion = controller.suggest()
            controller.report(suggestion, (suggestion.config["lr"] - 0.05) ** 2)
        best = controller.best_params()
        assert best is not None and set(best) == {"lr", "model"}
        controller.pause()
        with pytest.raises(ClientError) as refused:
            controller.suggest()
        assert refused.value.status == 409 and refused.value.reason == "paused"
        controller.resume()
        assert controller.stats()["counts"] == {"finished": 4}
        assert controller.finish()["state"] == "finished"


def test_init_outside_an_agent_is_a_local_run() -> None:
    run = wandb.init(config={"a": 1})
    wandb.log({"x": 1})
    wandb.log({"x": 2})
    assert wandb.config.a == 1 and run.id is None
    assert [row["x"] for row in run.history] == [1, 2] and wandb.summary["x"] == 2
    wandb.finish()


def _mock(handler: Any) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def test_client_retries_while_the_server_restarts() -> None:
    answers = iter([503, 502, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(status, json={"ok": status == 200})

    client = Client("http://test", transport=_mock(handler))
    assert client.get("/sweeps") == {"ok": True}
    client.close()


def test_client_reads_url_and_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUNEPILOT_URL", "http://from-env:9")
    monkeypatch.setenv("TUNEPILOT_TOKEN", "tok")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"detail": "missing or invalid API token"})

    with pytest.raises(ClientError, match="set TUNEPILOT_TOKEN") as refused:
        Client(transport=_mock(handler)).get("/sweeps")
    assert refused.value.status == 401
    assert str(seen[0].url) == "http://from-env:9/api/v1/sweeps"
    assert seen[0].headers["authorization"] == "Bearer tok"


def test_an_unreachable_server_is_named_in_the_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(ClientError, match="start it with 'tunepilot server'"):
        Client("http://127.0.0.1:9", retry_for=0.2, transport=_mock(handler)).get("/sweeps")


def test_command_macros(tmp_path: Path) -> None:
    config = {"a": 1, "flag": True, "off": False, "opt": {"lr": 0.1}}
    sweep = {"program": "train.py", "command": [
        "${env}", "${interpreter}", "${program}", "${args}", "--", "${args_no_hyphens}",
        "${args_no_boolean_flags}", "${args_json}", "${args_json_file}"]}
    argv = expand_command(sweep, config, str(tmp_path))
    start = argv.index("train.py")
    assert argv[start - 1] == sys.executable
    assert argv[start + 1:start + 5] == ["--a=1", "--flag=True", "--off=False", "--opt.lr=0.1"]
    rest = argv[argv.index("--") + 1:]
    assert rest[:4] == ["a=1", "flag=True", "off=False", "opt.lr=0.1"]
    assert rest[4:7] == ["--a=1", "--flag", "--opt.lr=0.1"]
    assert json.loads(rest[7]) == config
    assert json.loads(Path(rest[8]).read_text()) == config
    assert expand_command({"program": "t.py"}, {"a": 1}, str(tmp_path))[-2:] == ["t.py", "--a=1"]


def test_the_sdk_never_imports_the_server() -> None:
    code = "import tunepilot.sdk, sys; print(any(m.startswith('tunepilot.server') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False"


class AnswerLostTransport(httpx.HTTPTransport):
    """Fault injection: the first POST to a path ending in ``suffix`` reaches the server,
    and its answer is lost."""

    def __init__(self, suffix: str) -> None:
        super().__init__()
        self.suffix = suffix
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith(self.suffix) and not self.lost:
            self.lost += 1
            response.read()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


def test_a_log_whose_answer_was_lost_is_stored_once(server: SweepServer) -> None:
    from tunepilot.sdk._run import Run

    sweep_id = wandb.sweep(CONFIG, project="sdk", url=server.url)
    plain, transport = Client(server.url), AnswerLostTransport("/log")
    lossy = Client(server.url, transport=transport)
    try:
        lease = plain.post(f"/sweeps/{sweep_id}/suggest", {"agent": "test"})
        run = Run(client=lossy, run_id=lease["run_id"], config=lease["config"],
                  sweep_id=sweep_id)
        run.log({"loss": 0.5})
        run.log({"loss": 0.25})
    finally:
        plain.close()
        lossy.close()
    assert transport.lost == 1  # the first log was sent twice
    rows = httpx.get(f"{server.url}/api/v1/runs/{run.id}/metrics").json()
    assert [(r["step"], r["data"]) for r in rows] == [(0, {"loss": 0.5}), (1, {"loss": 0.25})]
    assert httpx.get(f"{server.url}/api/v1/runs/{run.id}").json()["n_rows"] == 2


def test_a_sweep_whose_create_answer_was_lost_is_made_once(server: SweepServer) -> None:
    transport = AnswerLostTransport("/sweeps")
    with SweepController(config=CONFIG, project="sdk-lost-create",
                         client=Client(server.url, transport=transport)) as controller:
        assert transport.lost == 1  # the create was sent twice
    page = httpx.get(f"{server.url}/api/v1/sweeps", params={"project": "sdk-lost-create"}).json()
    assert [s["id"] for s in page["items"]] == [controller.sweep_id]


def test_log_steps_and_commit_follow_w_and_b(
    server: SweepServer, caplog: pytest.LogCaptureFixture
) -> None:
    from tunepilot.sdk._run import Run

    sweep_id = wandb.sweep(CONFIG, project="sdk", url=server.url)
    client = Client(server.url)
    try:
        lease = client.post(f"/sweeps/{sweep_id}/suggest", {"agent": "test"})
        run = Run(client=client, run_id=lease["run_id"], config=lease["config"],
                  sweep_id=sweep_id)
        run.log({"train_loss": 1.0}, commit=False)  # step 0 stays open
        run.log({"loss": 0.5})  # completes step 0
        run.log({"acc": 0.1}, step=1)  # with a step, the step stays open ...
        run.log({"loss": 0.4}, step=1)
        run.log({"lr": 0.01})  # ... for logs without one, which then complete it
        with caplog.at_level("WARNING", logger="tunepilot.sdk"):
            run.log({"loss": 9.0}, step=0)  # before the current step: dropped
        run.log({"loss": 0.3})
    finally:
        client.close()
    assert "before the current step 2" in caplog.text
    expected = [{"_step": 0, "train_loss": 1.0, "loss": 0.5},
                {"_step": 1, "acc": 0.1, "loss": 0.4, "lr": 0.01},
                {"_step": 2, "loss": 0.3}]
    assert run.history == expected
    rows = httpx.get(f"{server.url}/api/v1/runs/{run.id}/metrics").json()
    assert [{"_step": r["step"], **r["data"]} for r in rows] == expected
    assert run.summary["loss"] == 0.3


def test_logs_from_two_threads_of_one_run_are_all_kept(server: SweepServer) -> None:
    """A training loop and a monitoring thread log to one run at the same time."""
    import threading

    from tunepilot.sdk._run import Run

    sweep_id = wandb.sweep(CONFIG, project="sdk", url=server.url)
    client = Client(server.url)
    errors: list[BaseException] = []
    try:
        lease = client.post(f"/sweeps/{sweep_id}/suggest", {"agent": "test"})
        run = Run(client=client, run_id=lease["run_id"], config=lease["config"],
                  sweep_id=sweep_id)

        def loop(name: str) -> None:
            try:
                for i in range(30):
                    run.log({name: i})
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=loop, args=(n,)) for n in ("train", "monitor")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        client.close()
    assert errors == []
    assert [row["_step"] for row in run.history] == list(range(60))
    rows = httpx.get(f"{server.url}/api/v1/runs/{run.id}/metrics").json()
    assert [{"_step": r["step"], **r["data"]} for r in rows] == run.history
    for name in ("train", "monitor"):
        assert [row[name] for row in run.history if name in row] == list(range(30))


def test_numpy_values_and_nan_are_logged_and_a_nan_metric_counts_as_failed(
    server: SweepServer,
) -> None:
    """What training code has at hand: numpy scalars and arrays, a loss gone NaN."""
    import math

    import numpy as np

    from tunepilot.exceptions import LogValueError

    sweep_id = wandb.sweep(CONFIG, project="sdk", url=server.url)
    refused: list[str] = []

    def train() -> None:
        wandb.init()
        wandb.log({"loss": np.float32(0.5), "epoch": np.int64(1), "ok": np.bool_(True),
                   "weights": np.array([[1.0, 2.5]]), "scale": np.array(3.0)})
        with pytest.raises(LogValueError) as bad_log:
            wandb.log({"loss": 0.1, "image": object()})  # refused whole: loss stays 0.5
        with pytest.raises(LogValueError) as bad_summary:
            wandb.summary["model"] = object()
        refused.extend([str(bad_log.value), str(bad_summary.value)])
        wandb.summary["best"] = np.float64(0.25)
        wandb.log({"loss": float("nan"), "grad_norm": -math.inf})

    assert wandb.agent(sweep_id, function=train, count=1, url=server.url) == 1
    assert "log()['image']: a builtins.object cannot be logged" in refused[0]
    assert "summary['model']" in refused[1]
    (run,) = runs(server, sweep_id)
    rows = httpx.get(f"{server.url}/api/v1/runs/{run['id']}/metrics").json()
    assert [(r["step"], r["data"]) for r in rows] == [
        (0, {"loss": 0.5, "epoch": 1, "ok": True, "weights": [[1.0, 2.5]], "scale": 3.0}),
        (1, {"loss": "NaN", "grad_norm": "-Infinity"}),
    ]
    assert run["summary"]["best"] == 0.25 and run["summary"]["loss"] == "NaN"
    # The run ended, but with no finite metric: Optuna records its trial as failed.
    assert run["state"] == "finished" and run["value"] is None
    assert "no finite 'loss'" in run["fail_reason"]


def test_the_sweeps_parameters_are_locked_in_the_config(
    server: SweepServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Code that loads its defaults after init() still trains with the sweep's values."""
    import argparse

    sweep_id = wandb.sweep(CONFIG, project="sdk", url=server.url)
    seen: list[dict[str, Any]] = []

    def train() -> None:
        wandb.init(config={"lr": 123.0})
        swept = dict(wandb.config)
        wandb.config.update({"lr": 0.5, "epochs": 3, "model": {"depth": 99, "width": 8}})
        wandb.config.lr = 7.0
        wandb.config["lr"] = 7.0
        wandb.config.update(argparse.Namespace(batch=32, lr=1.0), allow_val_change=True)
        wandb.config.update(seed=4)
        seen.extend([swept, dict(wandb.config)])
        wandb.log({"loss": wandb.config.lr})

    with caplog.at_level("WARNING", logger="tunepilot.sdk"):
        assert wandb.agent(sweep_id, function=train, count=1, url=server.url) == 1
    swept, final = seen
    assert final == {"lr": swept["lr"], "epochs": 3, "batch": 32, "seed": 4,
                     "model": {"depth": swept["model"]["depth"], "width": 8}}
    assert caplog.text.count("is set by the sweep") == 5  # lr four times, model.depth once
    (run,) = runs(server, sweep_id)
    assert run["value"] == swept["lr"]
    # Outside a sweep nothing is locked.
    local = wandb.init(config=argparse.Namespace(lr=1.0))
    wandb.config.update({"lr": 2.0})
    wandb.config.lr = 3.0
    assert local.config == {"lr": 3.0}


def test_the_w_and_b_sweep_tutorial_function_runs_as_written(server: SweepServer) -> None:
    """``with wandb.init(config=config):`` and ``wandb.run``, as W&B's sweep tutorial has them."""
    sweep_id = wandb.sweep(CONFIG, project="sdk", url=server.url)
    names: list[str] = []

    def train(config: dict[str, Any] | None = None) -> None:
        with wandb.init(config=config) as run:
            config = wandb.config
            assert wandb.run is run
            names.append(wandb.run.name)
            for epoch in range(2):
                wandb.log({"loss": config.lr / (epoch + 1), "epoch": epoch})
            run.summary["note"] = "tutorial"

    assert wandb.run is None or not wandb.run.id  # no sweep run outside the agent
    # W&B prints agent commands as entity/project/sweep_id.
    assert wandb.agent(f"me/sdk/{sweep_id}", function=train, count=2, url=server.url) == 2
    finished = runs(server, sweep_id)
    assert [r["state"] for r in finished] == ["finished"] * 2
    assert sorted(names) == sorted(r["id"] for r in finished)
    assert all(r["summary"]["note"] == "tutorial" for r in finished)
    assert all(r["value"] == pytest.approx(r["config"]["lr"] / 2) for r in finished)
    assert wandb.login() is True
    with wandb.init(config={"lr": 0.1}) as local:  # outside a sweep: ends with the block
        wandb.log({"loss": 1.0})
    assert local.finished and local.name == "local"


def test_watch_and_define_metric_are_ignored_with_one_warning_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="tunepilot.sdk"):
        for _ in range(2):
            wandb.watch(object(), log="all")
            wandb.define_metric("loss", summary="min")
    assert caplog.text.count("watch() is accepted and ignored") == 1
    assert caplog.text.count("define_metric() is accepted and ignored") == 1
    assert "wandb.summary[name] = best" in caplog.text
