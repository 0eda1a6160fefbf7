"""Run the studies a spec declares, and summarize what happened.

``n_trials`` is the study's budget, earlier runs included: running a finished spec
again adds no trial, and raising ``n_trials`` continues the study where it stopped.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.distributions import check_distribution_compatibility
from optuna.study import MaxTrialsCallback, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tunepilot.exceptions import SpecError, TunepilotError
from tunepilot.runner._command import make_command_caller
from tunepilot.runner._objective import Objective, load_objective, make_caller
from tunepilot.runner._priors import check_prior_from
from tunepilot.runner._progress import StudyProgress
from tunepilot.runner._pruners import make_pruner
from tunepilot.runner._samplers import build_sampler
from tunepilot.runner._spec import StudySpec
from tunepilot.runner._storage import open_storage

#: Trial states that use up a study's ``n_trials`` budget.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class RunResult:
    """What one :func:`run_study` call did.

    Counts describe the trials this call ran; ``best_*`` is the study's best trial,
    earlier runs on the same storage included.

    Attributes:
        study_name: the Optuna study name.
        storage: the storage URL the trials are in.
        direction: ``minimize`` or ``maximize``; the directions joined by commas for a
            study with several.
        sampler: the sampler's name in the spec (``llm``, ``tpe``, ...).
        n_trials: trials this call ran.
        total_trials: trials in the study, earlier runs included.
        states: this call's trials per state (``COMPLETE``, ``FAIL``, ``PRUNED``).
        best_value: the study's best value, ``None`` when no trial completed or the
            study has several directions.
        best_params: the best trial's parameters.
        best_number: the best trial's number.
        first_value: the value of this call's first completed trial.
        budget: the spec's ``n_trials``, the study's total budget (``None``: timeout only).
        pruner: the pruner's name in the spec.
        steps: intermediate values this call's trials reported (epochs, for a training
            loop that reports once an epoch).
        best_trials: for several directions, the Pareto-optimal trials as
            ``{"number", "values", "params"}``.
        sources: this call's trials per ``llm.source`` user attribute (``llm``,
            ``fallback``); empty for classical samplers.
        bases: this call's blend trials per base they were sampled with (``llm.base``:
            ``gp``, ``tpe``); empty for other samplers.
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
    budget: int | None = None
    pruner: str = "none"
    steps: int = 0
    best_trials: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    bases: dict[str, int] = field(default_factory=dict)
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
    """Create (or resume) the spec's study and run its trials until its budget is used.

    Each trial samples the spec's parameters, calls the objective with them and
    stores the result. A trial whose objective raises, or returns something other
    than a finite number, is stored as failed (the reason in its ``fail_reason``
    user attribute) and the run goes on; one the pruner stops is stored as pruned.
    Trials run until the study holds ``n_trials`` finished trials (earlier runs
    included) or ``timeout`` seconds pass. Ctrl-C stops the run once the running
    trial is stored; the result says ``interrupted``.

    Args:
        spec: the study to run.
        storage: overrides ``spec.storage``.
        n_trials: overrides ``spec.n_trials``, the study's total budget.
        seed: overrides ``spec.seed``.
        progress: show a progress bar on stderr.

    Returns:
        What the run did and the study's best trial.

    Raises:
        SpecError: an override is invalid, the storage cannot be opened, it holds a
            study of that name that conflicts with the spec, or a ``prior_from`` study
            does not exist or has no completed trial (before any trial runs).
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
    objective = _objective(spec)
    check_prior_from(spec)
    sampler = build_sampler(spec)
    pruner = make_pruner(spec.pruner, where=spec.where)
    study = _open_study(spec, sampler, pruner)
    maximize = study.directions[0] == StudyDirection.MAXIMIZE

    remaining = None
    callbacks: list[Any] = []
    if spec.n_trials is not None:
        done = len(study.get_trials(deepcopy=False, states=FINISHED))
        remaining = max(spec.n_trials - done, 0)
        # Other processes on the same storage count too: stop when the study is full.
        callbacks.append(MaxTrialsCallback(spec.n_trials, states=FINISHED))
    clock = time.perf_counter()
    interrupted = False
    bar = None
    if progress and remaining != 0:
        bar = StudyProgress(total=remaining, maximize=maximize, label=spec.name,
                            best=_best_value(study) if len(study.directions) == 1 else None)
        callbacks.append(bar)
    try:
        if remaining != 0:
            with _unlogged_when_fatal(objective), bar if bar is not None else nullcontext():
                study.optimize(objective, n_trials=remaining, timeout=spec.timeout,
                               n_jobs=spec.n_jobs, catch=(Exception,), callbacks=callbacks)
    except KeyboardInterrupt:
        interrupted = True
    elapsed = time.perf_counter() - clock
    if objective.fatal is not None:
        raise objective.fatal

    numbers = set(objective.numbers)
    trials = [t for t in study.get_trials(deepcopy=False) if t.number in numbers]
    return _summarize(spec, study, sampler, trials, interrupted=interrupted, elapsed=elapsed)


def run_studies(
    specs: Sequence[StudySpec],
    *,
    storage: str | None = None,
    n_trials: int | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> list[RunResult]:
    """Run several studies one after the other, as :func:`run_study` runs one.

    A study may start from one that runs before it (``prior_from``): the phases of a
    spec hand knowledge forward. Every ``prior_from`` that names no earlier study of
    ``specs`` is checked before the first study starts. After Ctrl-C the studies not
    yet started are skipped; the last result says ``interrupted``.

    Raises:
        SpecError, ObjectiveError, LLMConfigError: as :func:`run_study`; the studies
            before the failing one keep their trials.

    Example:
        .. code-block:: python

            from tunepilot.runner import load_studies, run_studies

            for result in run_studies(load_studies("examples/pruning/spec.yaml")):
                print(result.study_name, result.best_value, result.steps)
    """
    coming: list[tuple[str, str]] = []
    for spec in specs:
        placed = spec.replace(storage=storage) if storage is not None else spec
        check_prior_from(placed, coming=coming)
        coming.append((placed.name, placed.storage))
    results: list[RunResult] = []
    for spec in specs:
        result = run_study(spec, storage=storage, n_trials=n_trials, seed=seed,
                           progress=progress)
        results.append(result)
        if result.interrupted:
            break
    return results


def _objective(spec: StudySpec) -> Objective:
    if isinstance(spec.objective, str):
        function = load_objective(spec.objective, base_dir=spec.base_dir, where=spec.where)
        call = make_caller(function, where=spec.where)
    else:
        call = make_command_caller(spec.objective, base_dir=spec.base_dir, metric=spec.metric)
    return Objective(call, spec.parameters, n_objectives=len(spec.study_directions),
                     metric=spec.metric)


@contextmanager
def _unlogged_when_fatal(objective: Objective) -> Iterator[None]:
    """Keep Optuna from logging the trial that hit a fatal error or Ctrl-C, with its traceback.

    The error is raised to the caller once the study stops; a second, longer report
    of it would bury the one-line message the command line prints.
    """
    logger = logging.getLogger("optuna.study._optimize")

    def only_before_fatal(record: logging.LogRecord) -> bool:
        return objective.fatal is None and not objective.interrupted

    logger.addFilter(only_before_fatal)
    try:
        yield
    finally:
        logger.removeFilter(only_before_fatal)


def _open_study(
    spec: StudySpec, sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner
) -> optuna.Study:
    try:
        # BEGIN IMMEDIATE on SQLite: workers sharing the file never take the same
        # enqueued trial (an LLM batch) twice.
        study = optuna.create_study(
            study_name=spec.name,
            storage=open_storage(spec.storage),
            directions=list(spec.study_directions),
            sampler=sampler,
            pruner=pruner,
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
    stored = ", ".join(d.name.lower() for d in study.directions)
    wanted = ", ".join(spec.study_directions)
    if stored != wanted:
        raise SpecError(
            f"{spec.where}: direction: study {spec.name!r} in {spec.storage} was created to "
            f"{stored}, but the spec says {wanted}; change the name or the storage"
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
    multi = len(study.directions) > 1
    best: FrozenTrial | None = None
    if not multi:
        try:
            best = study.best_trial
        except ValueError:
            best = None
    # LLMSampler keeps counters the trials alone do not show (calls, invalid answers).
    stats_as_dict = getattr(getattr(sampler, "stats", None), "as_dict", None)
    return RunResult(
        study_name=spec.name,
        storage=spec.storage,
        direction=", ".join(spec.study_directions),
        sampler=spec.sampler.name,
        n_trials=len(trials),
        total_trials=len(study.get_trials(deepcopy=False)),
        states=dict(Counter(t.state.name for t in trials)),
        best_value=best.value if best is not None else None,
        best_params=dict(best.params) if best is not None else {},
        best_number=best.number if best is not None else None,
        first_value=complete[0].values[0] if complete else None,
        budget=spec.n_trials,
        pruner=spec.pruner.name,
        steps=sum(len(t.intermediate_values) for t in trials),
        best_trials=[
            {"number": t.number, "values": list(t.values), "params": dict(t.params)}
            for t in (study.best_trials if multi else [])
        ],
        sources=dict(Counter(
            str(t.user_attrs["llm.source"]) for t in trials if "llm.source" in t.user_attrs
        )),
        bases=dict(Counter(
            str(t.user_attrs["llm.base"]) for t in trials if "llm.base" in t.user_attrs
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
