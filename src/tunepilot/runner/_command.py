"""Objectives that run a command line per trial and read its metrics back.

The sampled parameters reach the command as ``{name}`` placeholders, as
``name=value`` arguments for the parameters without a placeholder (Hydra's
override syntax, so a Hydra app needs no glue), and as JSON in ``TUNEPILOT_PARAMS``.

The command's stdout is read line by line. A JSON object with a ``step`` key is an
intermediate value (its ``value``, or its ``metric``): it is reported to the trial,
and the runner answers ``prune`` or ``continue`` on the command's stdin, which
:func:`~tunepilot.runner.get_reporter` reads. After a ``prune`` the command has a few
seconds to exit before it is stopped. The result is the last JSON line printed, or
the JSON in ``metrics_file`` when the spec names one.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

import optuna

from tunepilot._redact import redact
from tunepilot.exceptions import ObjectiveError
from tunepilot.runner._objective import Caller
from tunepilot.runner._reporter import CONTINUE, PRUNE, REPORT_ENV, REPORT_STDIO
from tunepilot.runner._spec import CommandSpec

#: Seconds a command gets to exit by itself after it was told to prune.
PRUNE_GRACE_S = 10.0
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")
_EOF = object()


def make_command_caller(
    spec: CommandSpec, *, base_dir: Path, metric: str | list[str] | None = None
) -> Caller:
    """A caller that runs ``spec``'s command for each trial's configuration.

    Args:
        spec: the command, its working directory, metrics file and timeout.
        base_dir: the spec file's directory; relative paths start there.
        metric: the key read from each intermediate report (the ``value`` key otherwise).
    """
    cwd = (base_dir / spec.cwd) if spec.cwd else base_dir
    first = metric if isinstance(metric, str) else None

    def call(config: dict[str, Any], trial: optuna.Trial) -> Any:
        return run_command(spec, config, trial=trial, cwd=cwd, metric=first)

    return call


def command_line(argv: list[str], config: Mapping[str, Any]) -> list[str]:
    """``argv`` with ``{name}`` placeholders filled and the other parameters appended.

    Example:
        .. code-block:: python

            assert command_line(["train.py", "--lr={lr}"], {"lr": 0.1, "opt": "sgd"}) == [
                "train.py", "--lr=0.1", "opt=sgd"]
    """
    used: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in config:
            return match.group(0)
        used.add(name)
        return _text(config[name])

    filled = [_PLACEHOLDER.sub(fill, arg) for arg in argv]
    return filled + [f"{n}={override_text(v)}" for n, v in config.items() if n not in used]


def run_command(
    spec: CommandSpec,
    config: Mapping[str, Any],
    *,
    trial: optuna.Trial,
    cwd: Path,
    metric: str | None = None,
) -> Any:
    """Run the command for one trial and return the metrics it gave (parsed JSON).

    Raises:
        optuna.TrialPruned: the study's pruner stopped the trial.
        ObjectiveError: the command could not start, failed, ran past its timeout or
            gave no metrics.
    """
    argv = command_line(spec.argv(), config)
    metrics_file = _metrics_file(spec, cwd, trial.number)
    env = dict(os.environ, **{
        REPORT_ENV: REPORT_STDIO,
        "TUNEPILOT_PARAMS": json.dumps(dict(config), default=str),
        "TUNEPILOT_TRIAL_NUMBER": str(trial.number),
        "TUNEPILOT_STUDY": trial.study.study_name,
    })
    if metrics_file is not None:
        env["TUNEPILOT_METRICS_FILE"] = str(metrics_file)
        metrics_file.unlink(missing_ok=True)  # a file left by an earlier trial is not ours
    try:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, text=True, bufsize=1,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
    except OSError as exc:
        raise ObjectiveError(f"cannot run {argv[0]!r} in {cwd}: {exc.strerror or exc}") from None

    stderr_tail: deque[str] = deque(maxlen=20)
    lines: queue.Queue[object] = queue.Queue()
    readers = [
        threading.Thread(target=_pump, args=(process.stdout, lines.put, _EOF), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, stderr_tail.append, None),
                         daemon=True),
    ]
    for reader in readers:
        reader.start()
    assert process.stdin is not None
    _make_nonblocking(process.stdin)
    multi = len(trial.study.directions) > 1
    start = time.monotonic()
    deadline = start + spec.timeout if spec.timeout is not None else None
    pruned_at: float | None = None
    pruned_step: int | None = None
    last: Any = None
    try:
        for line in _lines(lines, deadline, lambda: pruned_at):
            parsed = _json(line)
            if parsed is None:
                continue
            last = parsed
            step, value = _intermediate(parsed, metric)
            if step is None or value is None or multi or pruned_at is not None:
                continue
            trial.report(value, step)
            prune = trial.should_prune()
            _answer(process.stdin, PRUNE if prune else CONTINUE)
            if prune:
                pruned_at, pruned_step = time.monotonic(), step
        timed_out = _finish(process, deadline, pruned_at)
    except BaseException:
        _stop(process)
        raise
    finally:
        with suppress(OSError):
            process.stdin.close()
        for reader in readers:
            reader.join(timeout=1)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                with suppress(OSError):
                    stream.close()
    if pruned_at is not None:
        raise optuna.TrialPruned(f"pruned after step {pruned_step}")
    if timed_out:
        raise ObjectiveError(f"the command ran past its timeout of {spec.timeout:g} s and was stopped")
    if process.returncode != 0:
        said = next((s for s in reversed(stderr_tail) if s.strip()), "")
        raise ObjectiveError(
            f"the command exited with status {process.returncode}"
            + (f": {redact(said.strip())}" if said else "")
        )
    if metrics_file is not None:
        return _read_metrics(metrics_file)
    if last is None:
        raise ObjectiveError(
            "the command printed no JSON line; print the result last, e.g. "
            "print(json.dumps({'val_loss': loss})), or set objective.metrics_file"
        )
    return last


def _metrics_file(spec: CommandSpec, cwd: Path, number: int) -> Path | None:
    if spec.metrics_file is None:
        return None
    return (cwd / spec.metrics_file.replace("{trial}", str(number))).resolve()


def _read_metrics(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ObjectiveError(f"the command wrote no metrics file {path}") from None
    except (OSError, ValueError) as exc:
        raise ObjectiveError(f"the metrics file {path} is not JSON: {exc}") from None


def _lines(
    lines: queue.Queue[object], deadline: float | None, pruned_at: Callable[[], float | None]
) -> Iterator[str]:
    while True:
        limits = [d for d in (deadline, _grace_end(pruned_at())) if d is not None]
        wait = max(0.0, min(limits) - time.monotonic()) if limits else None
        try:
            item = lines.get(timeout=wait)
        except queue.Empty:
            return  # past the deadline or the grace period: _finish stops the command
        if item is _EOF:
            return
        yield str(item)


def _grace_end(pruned_at: float | None) -> float | None:
    return pruned_at + PRUNE_GRACE_S if pruned_at is not None else None


def _finish(process: subprocess.Popen[str], deadline: float | None,
            pruned_at: float | None) -> bool:
    """Wait for the command to exit; stop it past its time. Whether it timed out."""
    limits = [d for d in (deadline, _grace_end(pruned_at)) if d is not None]
    try:
        process.wait(timeout=max(0.0, min(limits) - time.monotonic()) if limits else None)
    except subprocess.TimeoutExpired:
        _stop(process)
        return pruned_at is None
    return False


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _pump(stream: IO[str] | None, put: Callable[[Any], None], end: object) -> None:
    if stream is not None:
        with suppress(ValueError, OSError):
            for line in stream:
                put(line.rstrip("\n"))
    if end is not None:
        put(end)


def _json(line: str) -> Any:
    text = line.strip()
    if not text or text[0] not in "{[-0123456789":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _intermediate(parsed: Any, metric: str | None) -> tuple[int | None, float | None]:
    if not isinstance(parsed, dict) or "step" not in parsed:
        return None, None
    step = parsed["step"]
    value = parsed.get(metric) if metric is not None and metric in parsed else parsed.get("value")
    if isinstance(step, bool) or not isinstance(step, int):
        return None, None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return step, None
    return step, float(value)


def _answer(stdin: IO[str], answer: str) -> None:
    # A command that does not read its stdin must not block the runner once the pipe fills.
    with suppress(BlockingIOError, BrokenPipeError, OSError, ValueError):
        stdin.write(answer + "\n")
        stdin.flush()


def _make_nonblocking(stream: IO[str]) -> None:
    if sys.platform != "win32":
        os.set_blocking(stream.fileno(), False)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


def override_text(value: Any) -> str:
    """``value`` as Hydra's override grammar reads it back: ``true``, ``null``, ``'a b'``."""
    text = _text(value)
    if isinstance(value, str) and not re.fullmatch(r"[\w./:-]+", value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return text
