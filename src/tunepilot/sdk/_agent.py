"""Agents: lease a configuration, run a function or a program, keep the lease alive, report."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tunepilot._redact import redact
from tunepilot.exceptions import ClientError, LogValueError
from tunepilot.sdk._client import Client
from tunepilot.sdk._run import Run, RunStopped, current
from tunepilot.sdk._values import to_json

_logger = logging.getLogger("tunepilot.sdk")

#: An agent stops after this many failed runs within FAILURE_WINDOW seconds.
MAX_FAILURES = 3
FAILURE_WINDOW = 60.0
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]


def default_agent_name() -> str:
    """``host:pid``, shown on every run the agent leases."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Background thread renewing a run's lease; sets ``run.stop_event`` when told to stop."""

    def __init__(self, client: Client, run: Run, interval: float) -> None:
        self.client, self.run, self.interval = client, run, interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tunepilot-heartbeat",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=self.interval + 5)

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            try:
                # A short retry window: the next beat comes soon anyway.
                answer = self.client.request(
                    "POST", f"/runs/{self.run.id}/heartbeat", retry_for=self.interval
                )
            except ClientError as exc:
                _logger.warning("heartbeat for run %s failed: %s", self.run.id, exc)
                continue
            if answer.get("stop") and not self.run.stop_event.is_set():
                self.run.stop_reason = answer.get("reason")
                self.run.stop_event.set()


class AgentTerminated(SystemExit):
    """Raised in the agent's main thread on SIGTERM; exits with status 143, as the signal would."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def _raise_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into AgentTerminated, so the run is reported and its program stopped.

    Only in the main thread and only over the default handler; returns the undo.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        raise AgentTerminated

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, handler)
    return restore


@dataclass
class _Failures:
    times: deque[float]

    def add(self) -> bool:
        """Record a failure; True when the agent should give up."""
        now = time.monotonic()
        self.times.append(now)
        while self.times and now - self.times[0] > FAILURE_WINDOW:
            self.times.popleft()
        return len(self.times) >= MAX_FAILURES


def agent(
    sweep_id: str,
    function: Callable[[], Any] | None = None,
    entity: str | None = None,
    project: str | None = None,
    count: int | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
    name: str | None = None,
    grace_period: float = 10.0,
    client: Client | None = None,
) -> int:
    """Run ``count`` runs of the sweep (all it hands out by default), as ``wandb.agent``.

    With ``function``, each run calls it in this process; inside it, ``init()``,
    ``config``, ``log()`` and ``summary`` belong to the leased run. Without it, the
    sweep config's ``program``/``command`` is started for each run. The agent stops
    when the sweep hands out nothing more, after ``count`` runs, or after 3 failed
    runs within 60 seconds. On Ctrl-C or SIGTERM it stops the running program (its
    process group: SIGTERM, then SIGKILL after ``grace_period`` seconds), reports
    the run as failed with the reason, and raises ``KeyboardInterrupt`` or
    ``AgentTerminated`` (exit status 143).

    ``sweep_id`` may also be W&B's ``entity/project/sweep_id`` form; the agent uses
    its last part.

    Returns:
        The number of runs started.
    """
    sweep_id = sweep_id.rstrip("/").rsplit("/", 1)[-1]
    client = client or Client(url, token)
    agent_name = name or default_agent_name()
    sweep = client.get(f"/sweeps/{sweep_id}")
    runner = _FunctionRunner(function) if function is not None else _ProgramRunner(
        sweep["config"], grace_period=grace_period, client=client
    )
    failures = _Failures(deque())
    started = 0
    restore_sigterm = _raise_on_sigterm()
    try:
        while count is None or started < count:
            try:
                # The request id lets the server answer a retried request (after a
                # restart) with the run it already made, rather than a second one.
                lease = client.post(f"/sweeps/{sweep_id}/suggest",
                                    {"agent": agent_name, "request_id": uuid.uuid4().hex})
            except ClientError as exc:
                if exc.status == 409:
                    _logger.info("sweep %s: %s", sweep_id, exc)
                    break
                raise
            started += 1
            run = Run(client=client, run_id=lease["run_id"], config=lease["config"],
                      sweep_id=sweep_id)
            try:
                with Heartbeat(client, run, float(lease["heartbeat_interval"])):
                    state, reason = runner(run)
            except (KeyboardInterrupt, AgentTerminated) as exc:
                # Report the run now rather than leave it to the reaper, then stop.
                why = ("interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt)
                       else "the agent received SIGTERM")
                finish_run(client, run, "failed", why)
                raise
            finish_run(client, run, state, reason)
            if state == "failed" and failures.add():
                _logger.error("%d runs failed within %.0f s; the agent stops", MAX_FAILURES,
                              FAILURE_WINDOW)
                break
    finally:
        restore_sigterm()
        client.close()
    return started


def finish_run(client: Client, run: Run, state: str, reason: str | None) -> None:
    """Report the run's end with the hand-set summary keys; a reaped run is only logged."""
    changed = {k: run.summary[k] for k in run.summary.changed if k in run.summary}
    try:
        summary = to_json(changed, "summary")
    except LogValueError as exc:  # changed in place after it was set: the run fails, not the agent
        state, reason, summary = "failed", str(exc), {}
    body: dict[str, Any] = {"state": state, "summary": summary or None}
    if reason:
        body["reason"] = redact(reason)[-2000:]
    try:
        client.post(f"/runs/{run.id}/finish", body)
    except ClientError as exc:
        if exc.status not in (404, 409):  # reaped meanwhile, or its sweep was deleted
            raise
        _logger.warning("run %s could not be finished: %s", run.id, exc)


class _FunctionRunner:
    def __init__(self, function: Callable[[], Any]) -> None:
        self.function = function

    def __call__(self, run: Run) -> tuple[str, str | None]:
        current.run, current.sweep_config = run, dict(run.config)
        from tunepilot.sdk._run import _attach

        _attach(run)
        try:
            self.function()
        except RunStopped as exc:
            return "stopped", str(exc) or run.stop_reason
        except Exception:  # noqa: BLE001 - a failing run must not end the agent
            text = traceback.format_exc()
            print(text, file=sys.stderr)
            return "failed", text.strip().splitlines()[-1]
        finally:
            current.run, current.sweep_config = None, None
        if run.stop_event.is_set():
            return "stopped", run.stop_reason
        return "finished", None


class _ProgramRunner:
    """Starts the sweep's program for each run, with W&B's command macros."""

    def __init__(self, config: Mapping[str, Any], *, grace_period: float, client: Client) -> None:
        if not config.get("program") and not config.get("command"):
            raise ClientError(
                "the sweep config has no 'program' or 'command'; add one, or call "
                "tunepilot.sdk.agent(sweep_id, function=train) from Python"
            )
        self.config = config
        self.grace_period = grace_period
        self.client = client

    def __call__(self, run: Run) -> tuple[str, str | None]:
        with tempfile.TemporaryDirectory(prefix="tunepilot-run-") as tmp:
            argv = expand_command(self.config, dict(run.config), tmp)
            env = dict(os.environ, TUNEPILOT_RUN_ID=str(run.id),
                       TUNEPILOT_SWEEP_ID=str(run.sweep_id), TUNEPILOT_URL=self.client.url)
            if self.client.token:
                env["TUNEPILOT_TOKEN"] = self.client.token
            # Its own session, so that a stop can signal the whole process group; a
            # Ctrl-C at the terminal then reaches only the agent, which passes it on.
            process = subprocess.Popen(argv, env=env, start_new_session=True)
            stopped = False
            try:
                while process.poll() is None:
                    if run.stop_event.wait(0.2) and not stopped:
                        stopped = True
                        terminate(process, self.grace_period)
            except BaseException:  # Ctrl-C or SIGTERM to the agent: no orphaned program
                terminate(process, self.grace_period)
                raise
            if stopped:
                return "stopped", run.stop_reason
            if process.returncode != 0:
                return "failed", f"{shlex.join(argv)} exited with status {process.returncode}"
            return "finished", None


def terminate(process: subprocess.Popen[Any], grace_period: float) -> None:
    """SIGTERM the run's process group, then SIGKILL it after ``grace_period`` seconds.

    A second Ctrl-C or SIGTERM while waiting kills the group at once and is raised again.
    """
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace_period)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait()
    except BaseException:
        _signal_group(process, signal.SIGKILL)
        process.wait()
        raise


def _signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has already exited
        os.killpg(process.pid, signum)


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def expand_command(sweep_config: Mapping[str, Any], run_config: dict[str, Any],
                   workdir: str) -> list[str]:
    """The argv of one run: the config's ``command`` (W&B's default if absent), macros expanded.

    Macros: ``${env}`` (``/usr/bin/env``), ``${interpreter}`` (this Python),
    ``${program}``, ``${args}`` (``--key=value``, nested keys dotted),
    ``${args_no_hyphens}`` (``key=value``), ``${args_no_boolean_flags}`` (``--flag``
    for true, nothing for false), ``${args_json}`` (the config as one JSON
    argument) and ``${args_json_file}`` (the path of a file holding it).
    """
    flat = _flat(run_config)
    command: Sequence[str] = sweep_config.get("command") or DEFAULT_COMMAND
    json_file = os.path.join(workdir, "config.json")
    with open(json_file, "w", encoding="utf-8") as handle:
        json.dump(run_config, handle)
    lists: dict[str, list[str]] = {
        "${args}": [f"--{k}={_text(v)}" for k, v in flat.items()],
        "${args_no_hyphens}": [f"{k}={_text(v)}" for k, v in flat.items()],
        "${args_no_boolean_flags}": [
            f"--{k}" if v is True else f"--{k}={_text(v)}" for k, v in flat.items()
            if v is not False
        ],
        "${args_json}": [json.dumps(run_config)],
        "${args_json_file}": [json_file],
    }
    words = {"${env}": "/usr/bin/env", "${interpreter}": sys.executable,
             "${program}": str(sweep_config.get("program") or "")}
    argv: list[str] = []
    for part in command:
        if part in lists:
            argv.extend(lists[part])
        elif part in words:
            if part != "${env}" or os.path.exists(words[part]):
                argv.append(words[part])
        else:
            argv.append(str(part))
    return argv


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)
