"""Run the study a spec declares, and summarize what happened."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.distributions import check_distribution_compatibility
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tunepilot.exceptions import SpecError, TunepilotError
from tunepilot.runner._objective import Objective, load_objective, make_objective
from tunepilot.runner._progress import StudyProgress
from tunepilot.runner._samplers import build_sampler
from tunepilot.runner._spec import StudySpec
from tunepilot.runner._storage import open_storage


@dataclass(frozen=True)
class RunResult:
    """What one :func:`run_study` call did.

    Counts describe the trials this call ran; ``best_*`` is the study's best trial,
    earlier runs on the same storage included.

    Attributes:
        study_name: the Optuna study name.
        storage: the storage URL the trials are in.
        direction: ``minimize`` or ``maximize``.
        sampler: the sampler's name in the spec (``llm``, ``tpe``, ...).
        n_trials: trials this call ran.
        total_trials: trials in the study, earlier runs included.
        states: this call's trials per state (``COMPLETE``, ``FAIL``, ``PRUNED``).
        best_value: the study's best value, ``None`` when no trial completed.
        best_params: the best trial's parameters.
        best_number: the best trial's number.
        first_value: the value of this call's first completed trial.
        sources: this call's trials per ``llm.source`` user attribute (``llm``,
            ``fallback``); empty for classical samplers.
        repaired_trials: this call's trials whose LLM proposal had to be repaired.
        failures: ``{"number", "reason"}`` for each failed trial of this call.
        llm_stats: the LLM sampler's counters (calls, tokens, cost, ...), if any.
        interrupted: whether the run was stopped with Ctrl-C.
        elapsed_s: wall-clock seconds.
    """

    study_name: str
    storage: str
    direction: str
    sampler: str
    n_trials: int
    total_trials: int
    states: dict[str, int]
    best_value: float | None
    best_params: dict[str, Any]
    best_number: int | None
    first_value: float | None
    sources: dict[str, int] = field(default_factory=dict)
    repaired_trials: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    llm_stats: dict[str, Any] | None = None
    interrupted: bool = False
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


def run_study(
    spec: StudySpec,
    *,
    storage: str | None = None,
    n_trials: int | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> RunResult:
    """Create (or resume) the spec's study and run its trials.

    Each trial samples the spec's parameters, calls the objective with them and
    stores the result. A trial whose objective raises, or returns something other
    than a finite number, is stored as failed (the reason in its ``fail_reason``
    user attribute) and the run goes on. Ctrl-C stops the run; finished trials stay
    in the storage and the result says ``interrupted``.

    Args:
        spec: the study to run.
        storage: overrides ``spec.storage``.
        n_trials: overrides ``spec.n_trials``.
        seed: overrides ``spec.seed``.
        progress: show a progress bar on stderr.

    Returns:
        What the run did and the study's best trial.

    Raises:
        SpecError: an override is invalid, the storage cannot be opened, or it holds
            a study of that name that conflicts with the spec.
        ObjectiveError: the objective cannot be imported or called.
        LLMConfigError: the LLM sampler's model cannot be used as configured (the
            run stops at the first trial that finds out).

    Example:
        .. code-block:: python

            from tunepilot.runner import load_spec, run_study

            result = run_study(load_spec("examples/quickstart.yaml"), n_trials=5)
            print(result.best_value, result.best_params)
    """
    changes = {k: v for k, v in (("storage", storage), ("n_trials", n_trials), ("seed", seed))
               if v is not None}
    if changes:
        spec = spec.replace(**changes)
    function = load_objective(spec.objective, base_dir=spec.base_dir, where=spec.where)
    objective = make_objective(function, spec.parameters, where=spec.where)
    sampler = build_sampler(spec)
    study = _open_study(spec, sampler)
    maximize = study.direction == StudyDirection.MAXIMIZE

    clock = time.perf_counter()
    interrupted = False
    bar = None
    if progress:
        bar = StudyProgress(total=spec.n_trials, maximize=maximize, best=_best_value(study))
    try:
        with _unlogged_when_fatal(objective):
            if bar is not None:
                with bar:
                    study.optimize(objective, n_trials=spec.n_trials, catch=(Exception,),
                                   callbacks=[bar])
            else:
                study.optimize(objective, n_trials=spec.n_trials, catch=(Exception,))
    except KeyboardInterrupt:
        interrupted = True
    elapsed = time.perf_counter() - clock
    if objective.fatal is not None:
        raise objective.fatal

    numbers = set(objective.numbers)
    trials = [t for t in study.get_trials(deepcopy=False) if t.number in numbers]
    return _summarize(spec, study, sampler, trials, interrupted=interrupted, elapsed=elapsed)


@contextmanager
def _unlogged_when_fatal(objective: Objective) -> Iterator[None]:
    """Keep Optuna from logging the trial that hit a fatal error, with its traceback.

    The error is raised to the caller once the study stops; a second, longer report
    of it would bury the one-line message the command line prints.
    """
    logger = logging.getLogger("optuna.study._optimize")

    def only_before_fatal(record: logging.LogRecord) -> bool:
        return objective.fatal is None

    logger.addFilter(only_before_fatal)
    try:
        yield
    finally:
        logger.removeFilter(only_before_fatal)


def _open_study(spec: StudySpec, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    try:
        # BEGIN IMMEDIATE on SQLite: workers sharing the file never take the same
        # enqueued trial (an LLM batch) twice.
        study = optuna.create_study(
            study_name=spec.name,
            storage=open_storage(spec.storage),
            direction=spec.direction,
            sampler=sampler,
            load_if_exists=True,
        )
    except TunepilotError:
        raise
    except Exception as exc:  # SQLAlchemy and driver errors: bad URL, unwritable file
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError(
            f"{spec.where}: storage: cannot open {spec.storage!r}: {first_line}; "
            "give an SQLAlchemy URL such as sqlite:///tunepilot.db"
        ) from None
    stored = study.direction.name.lower()
    if stored != spec.direction:
        raise SpecError(
            f"{spec.where}: direction: study {spec.name!r} in {spec.storage} was created to "
            f"{stored}, but the spec says {spec.direction}; change the name or the storage"
        )
    _check_compatible(spec, study)
    return study


def _check_compatible(spec: StudySpec, study: optuna.Study) -> None:
    # Optuna refuses a parameter whose kind or choices changed, but only inside each
    # trial; checking once up front turns N failed trials into one clear error.
    wanted = spec.parameters.to_optuna()
    for trial in study.get_trials(deepcopy=False):
        for name, stored in trial.distributions.items():
            if name not in wanted:
                continue
            try:
                check_distribution_compatibility(stored, wanted[name])
            except ValueError as exc:
                raise SpecError(
                    f"{spec.where}: parameters.{name}: study {spec.name!r} in {spec.storage} "
                    f"already has trials with a different definition ({exc}); change the "
                    "name or the storage to start a new study"
                ) from None


def _best_value(study: optuna.Study) -> float | None:
    try:
        return study.best_value
    except ValueError:  # no completed trial yet
        return None


def _summarize(
    spec: StudySpec,
    study: optuna.Study,
    sampler: optuna.samplers.BaseSampler,
    trials: list[FrozenTrial],
    *,
    interrupted: bool,
    elapsed: float,
) -> RunResult:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    try:
        best: FrozenTrial | None = study.best_trial
    except ValueError:
        best = None
    # LLMSampler keeps counters the trials alone do not show (calls, invalid answers).
    stats_as_dict = getattr(getattr(sampler, "stats", None), "as_dict", None)
    return RunResult(
        study_name=spec.name,
        storage=spec.storage,
        direction=spec.direction,
        sampler=spec.sampler.name,
        n_trials=len(trials),
        total_trials=len(study.get_trials(deepcopy=False)),
        states=dict(Counter(t.state.name for t in trials)),
        best_value=best.value if best is not None else None,
        best_params=dict(best.params) if best is not None else {},
        best_number=best.number if best is not None else None,
        first_value=complete[0].value if complete else None,
        sources=dict(Counter(
            str(t.user_attrs["llm.source"]) for t in trials if "llm.source" in t.user_attrs
        )),
        repaired_trials=sum(1 for t in trials if t.user_attrs.get("llm.repairs")),
        failures=[
            {"number": t.number, "reason": str(t.user_attrs.get("fail_reason", "unknown"))}
            for t in trials if t.state == TrialState.FAIL
        ],
        llm_stats=stats_as_dict() if callable(stats_as_dict) else None,
        interrupted=interrupted,
        elapsed_s=round(elapsed, 3),
    )
