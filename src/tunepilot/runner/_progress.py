"""A Rich progress bar for a running study: trials done out of the budget, best value."""

from __future__ import annotations

import math
from types import TracebackType

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)


class StudyProgress:
    """An Optuna callback that advances a progress bar on stderr after each trial.

    Use it as a context manager around ``study.optimize(..., callbacks=[progress])``.
    """

    def __init__(self, *, total: int, maximize: bool, best: float | None = None,
                 console: Console | None = None) -> None:
        self._maximize = maximize
        self._best = best
        self._progress = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("best {task.fields[best]}"),
            console=console or Console(stderr=True),
        )
        self._task = self._progress.add_task("trials", total=total, best=self._shown())

    def __enter__(self) -> StudyProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        value = trial.value if trial.state == TrialState.COMPLETE else None
        if value is not None and math.isfinite(value) and (
            self._best is None or (value > self._best if self._maximize else value < self._best)
        ):
            self._best = value
        self._progress.update(self._task, advance=1, best=self._shown())

    def _shown(self) -> str:
        return "–" if self._best is None else f"{self._best:.6g}"
