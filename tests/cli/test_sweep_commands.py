"""``tunepilot sweep``, ``agent``, ``server``, ``db upgrade`` and ``token create``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tunepilot.cli import app
from tunepilot.testing import SweepServer
from tunepilot.testing._sweep_server import free_port

runner = CliRunner()

PROGRAM = '''
import signal, sys, time
from pathlib import Path
import tunepilot.sdk as wandb

out = Path(sys.argv[0]).with_name("seen.txt")
def on_term(*_):
    out.open("a").write("sigterm\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
run = wandb.init(config={"extra": 1})
out.open("a").write(" ".join(sys.argv[1:]) + "\\n")
for step in range(3):
    wandb.log({"loss": wandb.config["x"] * (3 - step)})
wandb.summary["extra_seen"] = wandb.config["extra"]
wandb.finish()
time.sleep(float(wandb.config.get("sleep", 0)))
'''

STUBBORN = '''
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(120)
'''

SLEEPER = '''
import os, signal, sys, time
from pathlib import Path
here = Path(sys.argv[0]).parent
def on_term(*_):
    (here / "got.txt").write_text("sigterm")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
(here / "pid.part").write_text(str(os.getpid()))
(here / "pid.part").rename(here / "pid.txt")
time.sleep(120)
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SweepServer]:
    db = tmp_path_factory.mktemp("cli") / "sweeps.db"
    with SweepServer(f"sqlite:///{db}", heartbeat_interval=0.5) as live:
        yield live


def _sweep(tmp_path: Path, server: SweepServer, config: dict[str, Any]) -> str:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["sweep", str(path), "--project", "cli", "--url", server.url])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def _runs(server: SweepServer, sweep_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(
        f"{server.url}/api/v1/sweeps/{sweep_id}/runs").json()["items"]
    return items


def test_sweep_prints_the_id_and_agent_runs_the_program(
    tmp_path: Path, server: SweepServer
) -> None:
    (tmp_path / "train.py").write_text(PROGRAM)
    sweep_id = _sweep(tmp_path, server, {
        "program": str(tmp_path / "train.py"), "method": "grid", "metric": {"name": "loss"},
        "parameters": {"x": {"values": [1, 2]}},
    })
    result = runner.invoke(app, ["agent", sweep_id, "--url", server.url])
    assert result.exit_code == 0, result.output
    runs = _runs(server, sweep_id)
    assert [r["state"] for r in runs] == ["finished", "finished"]
    assert [r["value"] for r in runs] == [1.0, 2.0]  # the last logged loss: x * 1
    assert all(r["summary"]["extra_seen"] == 1 for r in runs)
    assert (tmp_path / "seen.txt").read_text().splitlines() == ["--x=1", "--x=2"]


def test_sweep_says_it_retries_a_server_that_is_down_and_where(tmp_path: Path) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"method": "random", "parameters": {"x": {"min": 0, "max": 1}}}))
    later = SweepServer(f"sqlite:///{tmp_path / 'late.db'}")
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", "from tunepilot.cli import main; main()", "sweep", str(config),
         "--url", later.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:
        assert process.stderr is not None and process.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")))
        reader.start()
        try:
            deadline = time.monotonic() + 20
            while not any("retrying" in line for line in lines):
                assert time.monotonic() < deadline, f"no word of retrying: {lines}"
                time.sleep(0.05)
            with later:  # the server comes up: the sweep is made
                assert process.wait(timeout=60) == 0, lines
            sweep_id = process.stdout.read().strip()
        finally:
            if process.poll() is None:
                process.kill()
            reader.join(10)
    said = next(line for line in lines if "retrying" in line)
    assert f"the sweep server at {later.url}: cannot reach it" in said
    assert "retrying for up to 60 s" in said and "tunepilot server" in said
    assert any(f"the sweep server at {later.url} answered after" in line for line in lines)
    assert len(sweep_id) == 8


def _stop_when_running(server: SweepServer, sweep_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = [r for r in _runs(server, sweep_id) if r["state"] == "running"]
        if running:
            time.sleep(1.0)
            httpx.post(f"{server.url}/api/v1/runs/{running[0]['id']}/stop", json={})
            return
        time.sleep(0.1)


def test_a_stop_reaches_the_program_as_sigterm(
    tmp_path: Path, server: SweepServer, capfd: pytest.CaptureFixture[str]
) -> None:
    # The program's log() learns of the stop first: it must not raise RunStopped there,
    # which would end the program before its own SIGTERM handler could run.
    (tmp_path / "train.py").write_text(PROGRAM.replace(
        "wandb.finish()\ntime.sleep(float(wandb.config.get(\"sleep\", 0)))",
        "deadline = time.monotonic() + float(wandb.config.get(\"sleep\", 0))\n"
        "while time.monotonic() < deadline:\n"
        "    wandb.log({\"loss\": 1.0})\n"
        "    time.sleep(0.05)"))
    sweep_id = _sweep(tmp_path, server, {
        "program": str(tmp_path / "train.py"), "method": "grid", "metric": {"name": "loss"},
        "parameters": {"x": {"value": 1}, "sleep": {"value": 60}},
    })
    stopper = threading.Thread(target=_stop_when_running, args=(server, sweep_id))
    stopper.start()
    result = runner.invoke(app, ["agent", sweep_id, "--url", server.url, "--count", "1"])
    stopper.join()
    assert result.exit_code == 0, result.output
    assert [r["state"] for r in _runs(server, sweep_id)] == ["stopped"]
    assert (tmp_path / "seen.txt").read_text().splitlines()[-1] == "sigterm"
    assert "RunStopped" not in capfd.readouterr().err


def test_a_program_ignoring_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path, server: SweepServer
) -> None:
    (tmp_path / "stubborn.py").write_text(STUBBORN)
    sweep_id = _sweep(tmp_path, server, {
        "program": str(tmp_path / "stubborn.py"), "method": "grid",
        "parameters": {"x": {"value": 1}},
    })
    stopper = threading.Thread(target=_stop_when_running, args=(server, sweep_id))
    stopper.start()
    started = time.monotonic()
    result = runner.invoke(app, ["agent", sweep_id, "--url", server.url, "--count", "1",
                                 "--grace-period", "0.5"])
    stopper.join()
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 30
    assert [r["state"] for r in _runs(server, sweep_id)] == ["stopped"]


# The CLI with a terminal's Ctrl-C handling, even where this test runs with SIGINT ignored.
CLI_WITH_CTRL_C = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "from tunepilot.cli import main; main()")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize(("signum", "exit_code", "reason"), [
    (signal.SIGINT, 130, "interrupted (Ctrl-C)"),
    (signal.SIGTERM, 143, "the agent received SIGTERM"),
])
def test_ctrl_c_or_sigterm_to_the_agent_stops_its_program_and_reports_the_run(
    tmp_path: Path, server: SweepServer, signum: int, exit_code: int, reason: str
) -> None:
    # The program runs in a session of its own, so a terminal's Ctrl-C reaches only
    # the agent: the agent must pass it on rather than leave the program running.
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    sweep_id = _sweep(tmp_path, server, {
        "program": str(tmp_path / "sleeper.py"), "method": "grid",
        "parameters": {"x": {"value": 1}},
    })
    log = tmp_path / "agent.log"
    with log.open("w") as out:  # a file, not a pipe that a left-over program would hold open
        agent = subprocess.Popen(
            [sys.executable, "-c", CLI_WITH_CTRL_C, "agent", sweep_id, "--url", server.url,
             "--grace-period", "5"],
            start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
        )
    program = None
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "pid.txt").exists():
            assert agent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the program never started"
            time.sleep(0.1)
        program = int((tmp_path / "pid.txt").read_text())
        os.killpg(agent.pid, signum)  # as a terminal signals its foreground group
        agent.wait(timeout=30)
        assert agent.returncode == exit_code, log.read_text()
        assert not _alive(program), "the agent left its program running"
    finally:
        for group in (agent.pid, program):
            if group is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
    assert (tmp_path / "got.txt").read_text() == "sigterm"  # asked first, not killed
    [run] = _runs(server, sweep_id)
    assert (run["state"], run["fail_reason"]) == ("failed", reason)


def test_a_bad_config_file_exits_2_naming_the_problem(tmp_path: Path, server: SweepServer) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"method": "grid", "parameters": {"x": {"min": 0.0, "max": 1.0}}}))
    result = runner.invoke(app, ["sweep", str(path), "--url", server.url])
    assert result.exit_code == 2 and "grid sweep cannot enumerate" in result.output


def test_db_upgrade_and_token_create(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    refused = runner.invoke(app, ["token", "create", "--db", url])
    assert refused.exit_code == 2 and "tunepilot db upgrade" in refused.output
    upgraded = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert upgraded.exit_code == 0 and "database at migration" in upgraded.output
    token = runner.invoke(app, ["token", "create", "--db", url, "--name", "ci"])
    assert token.exit_code == 0 and token.stdout.strip().startswith("tp_")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from tunepilot.cli import main; main()", *args],
        capture_output=True, text=True, timeout=120, check=False)


def test_db_upgrade_on_a_newer_database_says_what_to_do(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from tunepilot.server.db import head_revision
    from tunepilot.server.db._models import VERSION_TABLE

    url = f"sqlite:///{tmp_path}/newer.db"
    assert _cli("db", "upgrade", "--db", url).returncode == 0
    engine = create_engine(url)
    with engine.begin() as connection:  # as a later tunepilot would leave it
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    engine.dispose()
    head = head_revision()
    said = (f"error: the database is at migration 0099, newer than this tunepilot (its newest "
            f"is {head}); use the newer tunepilot, or go back with it first: 'tunepilot db "
            f"downgrade {head} --db {url}' (back the database up first)")
    for command in (["db", "upgrade"], ["db", "downgrade", "0001", "--yes"],
                    ["token", "create"]):
        done = _cli(*command, "--db", url)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [said], command


def test_db_downgrade_goes_back_and_upgrade_forward_again(tmp_path: Path) -> None:
    from tunepilot.server.db import head_revision

    url = f"sqlite:///{tmp_path}/back.db"
    assert _cli("db", "upgrade", "--db", url).returncode == 0
    back = _cli("db", "downgrade", "0004", "--db", url, "--yes")
    assert back.returncode == 0, back.stderr
    assert back.stdout.strip() == "database at migration 0004"
    assert _cli("db", "current", "--db", url).stdout.strip() == "0004"
    refused = _cli("token", "create", "--db", url)
    assert refused.returncode == 2 and "tunepilot db upgrade" in refused.stderr
    later = _cli("db", "downgrade", "0005", "--db", url, "--yes")
    assert later.returncode == 2
    assert "at migration 0004, before 0005; 'tunepilot db upgrade' goes forward" in later.stderr
    unknown = _cli("db", "downgrade", "0042", "--db", url, "--yes")
    assert unknown.returncode == 2 and "no migration '0042'; this tunepilot knows 0001" in (
        unknown.stderr)
    asked = subprocess.run(
        [sys.executable, "-c", "from tunepilot.cli import main; main()", "db", "downgrade",
         "base", "--db", url], input="n\n", capture_output=True, text=True, timeout=120,
        check=False)
    assert asked.returncode == 1 and "What later migrations added is dropped" in asked.stderr
    assert _cli("db", "current", "--db", url).stdout.strip() == "0004"
    forward = _cli("db", "upgrade", "--db", url)
    assert forward.stdout.strip() == f"database at migration {head_revision()}"


def test_server_refuses_a_public_host_without_a_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/public.db"
    runner.invoke(app, ["db", "upgrade", "--db", url])
    result = runner.invoke(app, ["server", "--db", url, "--host", "0.0.0.0",
                                 "--port", str(free_port())], env={"TUNEPILOT_TOKEN": ""})
    assert result.exit_code == 2 and "without an API token" in result.output


def test_server_on_a_taken_port_says_so_before_anything_else(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", "from tunepilot.cli import main; main()", "server",
             "--db", f"sqlite:///{tmp_path}/busy.db", "--port", str(port)],
            capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [(
        f"error: port {port} on 127.0.0.1 is taken (another 'tunepilot server'?); stop that "
        "process, or pick another port with --port or TUNEPILOT_PORT")]
