"""A Rich progress bar for a running study: its name, trials done out of the budget, best value."""

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
    ``total`` is ``None`` when only a timeout bounds the study. A study with several
    directions shows its number of Pareto-optimal trials instead of a best value.

    Example:
        .. code-block:: python

            with StudyProgress(total=20, maximize=True, label="reward") as bar:
                study.optimize(objective, n_trials=20, callbacks=[bar])
    """

    def __init__(self, *, total: int | None, maximize: bool, best: float | None = None,
                 console: Console | None = None, label: str = "trials") -> None:
        self._maximize = maximize
        self._best = best
        self._best_text: str | None = None
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("best {task.fields[best]}"),
            console=console or Console(stderr=True),
        )
        self._task = self._progress.add_task(label, total=total, best=self._shown())

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
        single = trial.values is not None and len(trial.values) == 1
        value = trial.values[0] if single and trial.state == TrialState.COMPLETE else None
        if value is not None and math.isfinite(value) and (
            self._best is None or (value > self._best if self._maximize else value < self._best)
        ):
            self._best = value
        if trial.values is not None and len(trial.values) > 1:
            self._best_text = f"{len(study.best_trials)} on the Pareto front"
        self._progress.update(self._task, advance=1, best=self._shown())

    def _shown(self) -> str:
        if self._best_text is not None:
            return self._best_text
        return "–" if self._best is None else f"{self._best:.6g}"
