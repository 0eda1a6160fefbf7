"""Optuna studies without a sweep (written by ``tunepilot run``), read-only.

Every view has the shape of its sweep counterpart (``AnalysisService`` and
:mod:`._sweeps`), so the same templates and scripts show both. A study with
several objectives is shown by its first one.
"""

from __future__ import annotations

from typing import Any

from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import select, text

from tunepilot.exceptions import ConflictError, NotFoundError
from tunepilot.server._analysis import param_importances
from tunepilot.server._context import ServerContext
from tunepilot.server.db import Sweep
from tunepilot.server.web._sweeps import (
    RUNS_PAGE,
    TRIAL_STATES,
    Page,
    iso,
    llm_row,
    llm_summary,
    seconds_between,
    short_params,
)

_STATE = TRIAL_STATES
_SORTS = ("trial", "state", "value", "started", "finished")


def _sweep_studies(ctx: ServerContext) -> set[str]:
    with ctx.db.session() as session:
        return set(session.scalars(select(Sweep.study_name)))


def _trial_counts(ctx: ServerContext) -> dict[int, int]:
    # One grouped count over Optuna's trials table: RDBStorage.get_n_trials reads
    # every trial of the study to count them.
    with ctx.storage.engine.connect() as connection:
        rows = connection.execute(text("SELECT study_id, COUNT(*) FROM trials GROUP BY study_id"))
        return {int(study_id): int(count) for study_id, count in rows}


def list_studies(ctx: ServerContext) -> list[dict[str, Any]]:
    """Every study in the database that is not a sweep's, by name."""
    taken = _sweep_studies(ctx)
    counts = _trial_counts(ctx)
    out = []
    for study in ctx.storage.get_all_studies():
        if study.study_name in taken or "tunepilot.sweep_id" in study.user_attrs:
            continue
        n_trials = counts.get(study._study_id, 0)
        best: float | None = None
        if len(study.directions) == 1:
            try:
                best = ctx.storage.get_best_trial(study._study_id).value
            except ValueError:
                best = None
        out.append({
            "id": study._study_id, "name": study.study_name, "n_trials": n_trials,
            "directions": [d.name.lower() for d in study.directions], "best_value": best,
        })
    return sorted(out, key=lambda s: s["name"])


class StudyView:
    """One study's trials, loaded once per request, and the views computed from them."""

    def __init__(self, ctx: ServerContext, study_id: int) -> None:
        storage = ctx.storage
        try:
            self.name = storage.get_study_name_from_id(study_id)
        except KeyError:
            raise NotFoundError(f"no study with id {study_id}") from None
        if self.name in _sweep_studies(ctx):
            raise NotFoundError(f"study {study_id} belongs to a sweep; open it as a sweep")
        self.id = study_id
        self.ctx = ctx
        self.storage = storage
        self.directions = storage.get_study_directions(study_id)
        self.user_attrs = storage.get_study_user_attrs(study_id)
        self.trials = ctx.study_trials(study_id, self.name)
        self.maximize = self.directions[0] == StudyDirection.MAXIMIZE
        self.goal = "maximize" if self.maximize else "minimize"

    def _done(self) -> list[FrozenTrial]:
        return [t for t in self.trials if t.state == TrialState.COMPLETE and t.values]

    def best(self) -> FrozenTrial | None:
        done = self._done()
        if not done:
            return None
        pick = max if self.maximize else min
        return pick(done, key=lambda t: t.values[0])

    def href(self, number: int) -> str:
        return f"/ui/studies/{self.id}/trials/{number}"

    def stats(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for trial in self.trials:
            state = _STATE.get(trial.state, trial.state.name.lower())
            counts[state] = counts.get(state, 0) + 1
        best = self.best()
        return {
            "state": "running" if counts.get("running") else "finished",
            "total": len(self.trials), "finished": counts.get("finished", 0),
            "running": counts.get("running", 0), "failed": counts.get("failed", 0),
            "stopped": counts.get("pruned", 0),
            "best_value": best.values[0] if best else None,
            "best_href": self.href(best.number) if best else None,
            "best_label": f"trial {best.number}" if best else None,
            "best_params": dict(best.params) if best else None,
            "metric": "objective 1 of %d" % len(self.directions) if len(self.directions) > 1
            else "value", "goal": self.goal, "n_suggested": len(self.trials),
        }

    def row(self, trial: FrozenTrial) -> dict[str, Any]:
        return {
            "id": str(trial.number), "href": self.href(trial.number),
            "label": f"trial {trial.number}", "trial": trial.number,
            "state": _STATE.get(trial.state, trial.state.name.lower()),
            "value": trial.values[0] if trial.values else None, "agent": None,
            "started": iso(trial.datetime_start),
            "duration": seconds_between(trial.datetime_start, trial.datetime_complete),
            "params": short_params(trial.params), "attempt": 1,
        }

    def trial_page(self, *, sort: str, descending: bool, page: int) -> tuple[
            list[dict[str, Any]], Page]:
        rows = [self.row(t) for t in self.trials]
        key = sort if sort in _SORTS else "trial"
        present = [r for r in rows if r[key] is not None]
        absent = [r for r in rows if r[key] is None]
        present.sort(key=lambda r: (r[key], r["trial"]), reverse=descending)
        ordered = present + absent
        at = Page.of(page, len(ordered), RUNS_PAGE)
        return ordered[(at.number - 1) * RUNS_PAGE: at.number * RUNS_PAGE], at

    def history(self) -> dict[str, Any]:
        points, best = [], None
        for trial in sorted(self._done(), key=lambda t: t.number):
            value = float(trial.values[0])
            if best is None or (value > best if self.maximize else value < best):
                best = value
            points.append({"trial_number": trial.number, "run_id": str(trial.number),
                           "value": value, "best_value": best})
        return {"sweep_id": None, "goal": self.goal, "points": points}

    def parallel_coordinates(self) -> dict[str, Any]:
        rows, names = [], dict[str, None]()
        for trial in self._done():
            names.update(dict.fromkeys(trial.params))
            rows.append({"run_id": str(trial.number), "trial_number": trial.number,
                         "params": dict(trial.params), "value": trial.values[0]})
        return {"sweep_id": None, "params": list(names), "rows": rows}

    def importance(self) -> dict[str, Any]:
        done = self._done()
        if len(done) < 2:
            raise ConflictError(
                f"parameter importance needs at least 2 completed trials; study {self.name!r} "
                f"has {len(done)}", reason="not_enough_runs",
            )
        importances = param_importances(
            self.ctx, self.id, self.name, done,
            target=(lambda t: t.values[0]) if len(self.directions) > 1 else None)
        return {"sweep_id": None, "evaluator": "default", "importances": importances}

    def llm(self, *, page: int) -> dict[str, Any]:
        rows = [
            llm_row(t.number, t.user_attrs, _STATE.get(t.state, t.state.name.lower()),
                    t.values[0] if t.values else None, href=self.href(t.number),
                    label=f"trial {t.number}")
            for t in self.trials if "llm.source" in t.user_attrs
        ]
        return llm_summary(rows, page=page)

    def has_llm(self) -> bool:
        return any("llm.source" in t.user_attrs for t in self.trials)

    def trial(self, number: int) -> FrozenTrial:
        for trial in self.trials:
            if trial.number == number:
                return trial
        raise NotFoundError(f"study {self.name!r} has no trial {number}")
