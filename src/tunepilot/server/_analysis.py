"""Read-only views of a sweep: stats, parameter importance, parallel coordinates, history."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from tunepilot.exceptions import ConflictError
from tunepilot.server._context import ServerContext
from tunepilot.server.db import Run, repository

Evaluator = Literal["default", "fanova", "ped_anova"]


def param_importances(
    ctx: ServerContext,
    study_id: int,
    name: str,
    completed: Sequence[FrozenTrial],
    *,
    evaluator: Evaluator = "default",
    target: Callable[[FrozenTrial], float] | None = None,
) -> dict[str, float]:
    """Optuna's parameter importance over a study's ``completed`` trials, computed once.

    Completed trials never change, so the study (its first completed trial's start
    tells a study made again under the same id and name), the evaluator and how many
    trials are complete name the answer: a dashboard polling an unchanged study costs
    nothing.

    Raises:
        ConflictError: Optuna cannot compute it (``importance_unavailable``).
    """

    def compute() -> dict[str, float]:
        chosen: optuna.importance.BaseImportanceEvaluator | None = None
        if evaluator == "fanova":
            chosen = optuna.importance.FanovaImportanceEvaluator(seed=0)
        elif evaluator == "ped_anova":
            chosen = optuna.importance.PedAnovaImportanceEvaluator()
        try:
            importances = optuna.importance.get_param_importances(
                ctx.study_reader(study_id, name), evaluator=chosen, target=target)
        except (ValueError, RuntimeError, ImportError) as exc:
            raise ConflictError(
                f"cannot compute parameter importance: {exc}", reason="importance_unavailable"
            ) from None
        return {k: float(v) for k, v in importances.items()}

    key = ("importance", study_id, name, evaluator, target is not None, len(completed),
           max(t.number for t in completed), completed[0].datetime_start)
    return dict(ctx.computed(key, compute))


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> dotted keys, as the sweep's parameter names."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class AnalysisService:
    """Views computed from the run rows, or from the Optuna study where Optuna knows best."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def stats(self, sweep_id: str) -> dict[str, Any]:
        """Runs by state, configurations handed out, the best run and its config."""
        with self.ctx.db.session() as session:
            sweep = repository.get_sweep(session, sweep_id)
            counts = repository.run_counts(session, sweep_id)
            best = session.get(Run, sweep.best_run_id) if sweep.best_run_id else None
            return {
                "sweep_id": sweep_id,
                "state": sweep.state,
                "counts": counts,
                "n_runs": sum(counts.values()),
                "n_suggested": sweep.n_suggested,
                "metric": sweep.metric_name,
                "goal": sweep.metric_goal,
                "best_run_id": best.id if best else None,
                "best_value": sweep.best_value,
                "best_config": best.config if best else None,
                "best_trial_number": best.trial_number if best else None,
            }

    def _finished(self, sweep_id: str) -> list[Run]:
        with self.ctx.db.session() as session:
            repository.get_sweep(session, sweep_id)
            runs, _ = repository.list_runs(
                session, sweep_id, state="finished", limit=10**9, offset=0
            )
            return [r for r in runs if r.value is not None]

    def history(self, sweep_id: str) -> dict[str, Any]:
        """Each finished run's value by trial number, with the best value so far."""
        with self.ctx.db.session() as session:
            goal = repository.get_sweep(session, sweep_id).metric_goal
        points, best = [], None
        for run in self._finished(sweep_id):
            value = float(run.value)  # type: ignore[arg-type]
            if best is None or (value < best if goal == "minimize" else value > best):
                best = value
            points.append({"trial_number": run.trial_number, "run_id": run.id,
                           "value": value, "best_value": best})
        return {"sweep_id": sweep_id, "goal": goal, "points": points}

    def parallel_coordinates(self, sweep_id: str) -> dict[str, Any]:
        """One row per finished run: its flattened config and value."""
        rows, names = [], dict[str, None]()
        for run in self._finished(sweep_id):
            flat = flatten(run.config)
            names.update(dict.fromkeys(flat))
            rows.append({"run_id": run.id, "trial_number": run.trial_number,
                         "params": flat, "value": run.value})
        return {"sweep_id": sweep_id, "params": list(names), "rows": rows}

    def importance(self, sweep_id: str, evaluator: Evaluator = "default") -> dict[str, Any]:
        """Optuna's parameter importance over the study's completed trials.

        Raises:
            ConflictError: too few completed trials, or nothing to compare.
        """
        with self.ctx.db.session() as session:
            sweep = repository.get_sweep(session, sweep_id)
            study_name = sweep.study_name
        # Read incrementally: a dashboard asks again every 30 s.
        study_id = self.ctx.storage.get_study_id_from_name(study_name)
        study = self.ctx.study_reader(study_id, study_name)
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(completed) < 2:
            raise ConflictError(
                f"parameter importance needs at least 2 finished runs with the metric; "
                f"sweep {sweep_id} has {len(completed)}", reason="not_enough_runs",
            )
        importances = param_importances(self.ctx, study_id, study_name, completed,
                                        evaluator=evaluator)
        return {"sweep_id": sweep_id, "evaluator": evaluator, "importances": importances}
