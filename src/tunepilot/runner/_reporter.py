"""Report intermediate values from any training loop, and learn when to stop early.

The same two calls work wherever the loop runs:

* inside an objective function the runner (or the Hydra sweeper) calls: values go
  straight to the Optuna trial, and the study's pruner decides;
* inside a command the runner started (``objective: {command: ...}``): each report is
  one JSON line on stdout, and the runner answers on stdin whether to stop;
* anywhere else (the script run by hand): reports are dropped and nothing is pruned,
  so the training code needs no special case.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NoReturn

import optuna

#: Set by the runner in a command's environment: reports go over stdout and stdin.
REPORT_ENV = "TUNEPILOT_REPORT"
REPORT_STDIO = "stdio"
#: The answers the runner writes on a command's stdin after each report.
PRUNE, CONTINUE = "prune", "continue"

_current: ContextVar[Reporter | None] = ContextVar("tunepilot_reporter", default=None)
_stdio: Reporter | None = None


class Reporter:
    """Reports a training loop's progress to the running trial and says when to stop.

    Get the reporter for wherever the code runs with :func:`get_reporter`; build one
    directly from an Optuna trial with ``Reporter(trial)``.

    Example:
        .. code-block:: python

            from tunepilot.runner import get_reporter

            def objective(config):
                reporter = get_reporter()
                for epoch in range(20):
                    accuracy = train_one_epoch(config)  # your code
                    reporter.report(epoch, accuracy)
                    if reporter.should_prune():
                        reporter.prune()
                return accuracy
    """

    def __init__(self, trial: optuna.Trial | None = None, *, stdio: bool = False) -> None:
        self.trial = trial
        self.stdio = stdio
        self.last_step: int | None = None
        self._pruned = False

    @property
    def active(self) -> bool:
        """Whether reports reach a trial (false when the code runs outside a study)."""
        return self.trial is not None or self.stdio

    def report(self, step: int, value: float) -> None:
        """Report ``value`` (e.g. validation accuracy) after ``step`` (e.g. the epoch).

        Raises:
            ValueError: ``step`` is negative or ``value`` is not a number.
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a whole number >= 0, got {step!r}")
        number = float(value)
        self.last_step = step
        if self.trial is not None:
            self.trial.report(number, step)
        elif self.stdio:
            self._pruned = _ask_over_stdio(step, number)

    def should_prune(self) -> bool:
        """Whether the study's pruner says to stop this trial after the last report."""
        if self.trial is not None:
            return self.trial.should_prune()
        return self._pruned

    def prune(self) -> NoReturn:
        """End the trial as pruned.

        Raises ``optuna.TrialPruned`` inside an objective function; in a command the
        runner started, ends the process quietly (the runner already knows).
        """
        if self.stdio and self.trial is None:
            raise SystemExit(0)
        raise optuna.TrialPruned(f"pruned after step {self.last_step}")


def get_reporter() -> Reporter:
    """The reporter for the code that is running now.

    Inside a trial the runner or the Hydra sweeper is running in this process, it
    reports to that trial; in a command the runner started, over stdout; otherwise it
    is inactive: reports are dropped and :meth:`Reporter.should_prune` is false.
    """
    global _stdio
    current = _current.get()
    if current is not None:
        return current
    if os.environ.get(REPORT_ENV) == REPORT_STDIO:
        if _stdio is None:
            _stdio = Reporter(stdio=True)
        return _stdio
    return Reporter()


@contextmanager
def reporting(trial: optuna.Trial) -> Iterator[Reporter]:
    """Make :func:`get_reporter` return a reporter for ``trial`` inside the block.

    Example:
        .. code-block:: python

            def objective(trial):
                with reporting(trial):
                    return train(config)  # get_reporter() inside reports to trial
    """
    reporter = Reporter(trial)
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)


def _ask_over_stdio(step: int, value: float) -> bool:
    line = json.dumps({"step": step, "value": value if math.isfinite(value) else None})
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    try:
        answer = sys.stdin.readline().strip()
    except (OSError, ValueError):  # stdin closed: nobody to answer, keep going
        return False
    return answer == PRUNE
