"""Runs: heartbeats, logged metric rows, finishing, stop requests, and reaping lost runs."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState, create_trial
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tunepilot._redact import redact
from tunepilot.exceptions import ConflictError, TunepilotError
from tunepilot.server._context import ServerContext
from tunepilot.server._hyperband import should_stop
from tunepilot.server._sweeps import ATTEMPT_ATTR, RETRY_OF_ATTR, TERMINAL
from tunepilot.server.db import MetricRow, Run, Sweep, repository
from tunepilot.server.db._models import utcnow
from tunepilot.space import SweepConfig

_logger = logging.getLogger("tunepilot.server")

RunEnd = Literal["finished", "failed", "stopped"]
_OPTUNA_STATE = {"finished": TrialState.COMPLETE, "failed": TrialState.FAIL,
                 "stopped": TrialState.PRUNED}


@dataclass(frozen=True)
class Signal:
    """What a heartbeat or log answer tells the agent: keep going, or stop and why."""

    state: str
    stop: bool
    reason: str | None


def metric_value(summary: dict[str, Any], name: str | None) -> float | None:
    """The sweep metric from a summary, if it is a finite number."""
    if name is None:
        return None
    value = summary.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class RunService:
    """Run operations over one :class:`ServerContext`."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def heartbeat(self, run_id: str) -> Signal:
        """Renew the run's lease; the answer says whether the agent should stop it."""
        with self.ctx.db.session() as session:
            run = repository.get_run(session, run_id)
            if run.state != "running":
                return Signal(run.state, True, run.fail_reason or f"the run is {run.state}")
            run.heartbeat_at = utcnow()
            self.ctx.liveness.heard(run_id)
            return Signal(run.state, run.stop_requested, run.stop_reason)

    def log(
        self, run_id: str, rows: list[tuple[int | None, dict[str, Any]]],
        request_id: str | None = None,
    ) -> Signal:
        """Store metric rows, update the summary and intermediate values, apply hyperband.

        Steps follow W&B: a row without a step goes to the step after the last row's;
        a row at the last row's step is merged into that row (its keys win, and its
        value of the sweep metric replaces the last one hyperband sees); a step before
        the last row's is refused.

        A request id makes the call idempotent: when a client retries a log whose
        answer it lost (a timeout, a server restart after the commit), the rows are
        not stored twice and the answer is the run's current signal, as a heartbeat's.
        (A request that only merged stores no id; merging it again changes nothing.)

        The run's row is locked for the whole read-modify-write, so concurrent log
        requests for one run (a retry and its twin, or two threads of one program)
        are applied one after the other: none loses the other's summary or history.

        Raises:
            ConflictError: the run is no longer running, or a step is before the last
                row's (nothing of the request is stored).
        """
        try:
            with self.ctx.db.session() as session:
                run = repository.get_run(session, run_id, for_update=True)
                if request_id is not None and _stored(session, run_id, request_id):
                    raise _AlreadyStored
                _check_running(run)
                sweep = repository.get_sweep(session, run.sweep_id)
                metric, goal = sweep.metric_name, sweep.metric_goal
                summary, history = dict(run.summary or {}), list(run.metric_history or [])
                intermediate: list[tuple[int, float]] = []
                last = repository.last_metric_row(session, run)
                steps = _steps(run_id, rows, None if last is None else last.step)
                id_stored = request_id is None
                for step, (_, data) in zip(steps, rows):
                    into = last if last is not None and last.step == step else None
                    value = metric_value(data, metric)
                    if value is not None:
                        if into is not None and metric in into.data and history:
                            history[-1] = value  # the step's value, not a second one
                        else:
                            history.append(value)
                        intermediate.append((step, value))
                    summary.update(data)
                    if into is not None:
                        into.data = {**into.data, **data}
                        continue
                    last = MetricRow(run_id=run_id, step=step, data=data,
                                     request_id=None if id_stored else request_id)
                    session.add(last)
                    run.n_rows += 1
                    id_stored = True
                if last is not None:
                    session.flush()  # a new last row gets its id
                    run.last_row_id = last.id
                run.summary, run.metric_history = summary, history
                run.heartbeat_at = utcnow()
                self.ctx.liveness.heard(run_id)
                trial_id, sweep_id, raw = run.trial_id, run.sweep_id, sweep.config
                stop, reason = run.stop_requested, run.stop_reason
        except _AlreadyStored:
            _logger.info("run %s: log request %s was stored before; not storing it again",
                         run_id, request_id)
            return self.heartbeat(run_id)
        for s, value in intermediate:
            try:
                self.ctx.storage.set_trial_intermediate_value(trial_id, s, value)
            except UpdateFinishedTrialError:
                break
        early = raw.get("early_terminate") if isinstance(raw, dict) else None
        if intermediate and early and not stop:
            decision = self._hyperband(sweep_id, run_id, raw, history, goal)
            if decision is not None:
                stop, reason = True, decision
        return Signal("running", stop, reason)

    def _hyperband(
        self, sweep_id: str, run_id: str, raw: Any, history: list[Any], goal: str
    ) -> str | None:
        config = self.ctx.config(sweep_id, raw)
        assert config.early_terminate is not None
        with self.ctx.db.session() as session:
            everyone = [h for _, _, h in repository.histories(session, sweep_id)]
            decision = should_stop(
                config.early_terminate, history, everyone, maximize=goal == "maximize"
            )
            if not decision.stop:
                return None
            run = repository.get_run(session, run_id)
            run.stop_requested, run.stop_reason = True, decision.reason
        return decision.reason

    def update_summary(self, run_id: str, summary: dict[str, Any]) -> Run:
        """Merge ``summary`` into a running run's summary (W&B's ``run.summary[k] = v``)."""
        with self.ctx.db.session() as session:
            run = repository.get_run(session, run_id, for_update=True)
            _check_running(run)
            run.summary = {**(run.summary or {}), **summary}
            return run

    def request_stop(self, run_id: str, reason: str = "stop requested") -> Run:
        """Ask the agent of a running run to stop it (seen at its next heartbeat)."""
        with self.ctx.db.session() as session:
            run = repository.get_run(session, run_id)
            _check_running(run)
            run.stop_requested, run.stop_reason = True, reason
            return run

    def finish(
        self, run_id: str, *, state: RunEnd, summary: dict[str, Any] | None, reason: str | None
    ) -> Run:
        """End a run: tell Optuna, update the best run, the target and the sweep's end.

        Finishing again with the same state returns the run unchanged, so an agent
        may retry a finish whose answer it did not get.

        A log stored while the run finishes (between the first read and the write)
        keeps its summary keys; the run's value stays the one Optuna recorded, and a
        warning says when the summary's metric has moved since.

        Raises:
            ConflictError: the run already ended otherwise (e.g. it was reaped).
        """
        with self.ctx.db.session() as session:
            sweep_id = repository.get_run(session, run_id).sweep_id
        with self.ctx.locks.hold(sweep_id):
            with self.ctx.db.session() as session:
                run = repository.get_run(session, run_id)
                if run.state == state:
                    return run
                _check_running(run)
                sweep = repository.get_sweep(session, sweep_id)
                merged = {**(run.summary or {}), **(summary or {})}
                value = metric_value(merged, sweep.metric_name)
                trial_id = run.trial_id
                metric_name = sweep.metric_name
                raw = sweep.config
                may_end = _may_end(sweep)
            # Agents send what a program printed: it is stored, shown and put in prompts.
            fail_reason = redact(reason) if reason and state != "finished" else None
            optuna_state = _OPTUNA_STATE[state]
            values: list[float] | None = None
            if state == "finished":
                if value is not None:
                    values = [value]
                else:
                    optuna_state = TrialState.FAIL
                    fail_reason = (
                        f"the summary has no finite {metric_name!r}" if metric_name
                        else "the sweep has no metric"
                    )
            try:
                if fail_reason:
                    self.ctx.storage.set_trial_user_attr(trial_id, "fail_reason", fail_reason)
                self.ctx.storage.set_trial_state_values(trial_id, optuna_state, values)
            except UpdateFinishedTrialError:
                pass  # told before a crash between this and our own commit
            config = self.ctx.config(sweep_id, raw) if may_end else None
            with self.ctx.db.session() as session:
                # Read the summary again, under the run's lock: a log stored since the
                # first read keeps its keys (the finish's own summary wins).
                run = repository.get_run(session, run_id, for_update=True)
                sweep = repository.get_sweep(session, sweep_id)
                merged = {**(run.summary or {}), **(summary or {})}
                now = metric_value(merged, metric_name)
                if now != value:
                    _logger.warning(
                        "run %s: a log arrived while it finished; the sweep recorded %s=%s, "
                        "the summary now says %s", run_id, metric_name, value, now)
                run.state, run.summary, run.finished_at = state, merged, utcnow()
                self.ctx.liveness.forget(run_id)
                run.value = value if state in ("finished", "stopped") else None
                run.fail_reason = fail_reason if state != "finished" or values is None else None
                if state == "finished" and value is not None:
                    _update_best(sweep, run, value)
                if config is not None:
                    self._maybe_complete(session, sweep, config)
                return run

    @staticmethod
    def _maybe_complete(
        session: Session, sweep: Sweep, config: SweepConfig
    ) -> None:
        """Mark the sweep finished once it can hand out nothing more and nothing runs."""
        if sweep.state != "running" or sweep.n_queued:
            return
        capped = sweep.run_cap is not None and sweep.n_suggested >= sweep.run_cap
        exhausted = config.method == "grid" and sweep.n_suggested >= config.space.grid_size
        if not (capped or exhausted):
            return
        running = session.scalar(
            select(func.count()).select_from(Run)
            .where(Run.sweep_id == sweep.id, Run.state == "running")
        )
        if running:
            return
        sweep.state = "finished"
        sweep.state_reason = "run cap reached" if capped else "every grid configuration ran"

    def reap(self, now: datetime | None = None) -> list[str]:
        """Fail running runs whose agent went silent, and queue their configurations again.

        A run is lost when no heartbeat came for the heartbeat timeout, counting from
        this server's start at the earliest: while the server was down, no agent
        could reach it. The database's heartbeat times are wall-clock times; where
        this process heard from a run more recently on its monotonic clock (see
        :mod:`~tunepilot.server._liveness`), that counts, so a jump of the wall clock
        fails no run. Each configuration is queued again at most ``max_retries``
        times. Returns the ids of the runs failed.

        Args:
            now: the wall-clock time to judge by (the current time by default).
        """
        now = now or utcnow()
        timeout = self.ctx.settings.heartbeat_timeout
        cutoff = now - timedelta(seconds=timeout)
        read_at = self.ctx.liveness.now()
        with self.ctx.db.session() as session:
            running = session.execute(
                select(Run.id, Run.sweep_id, Run.heartbeat_at).where(Run.state == "running")
            ).all()
        self.ctx.liveness.keep_only((run_id for run_id, _, _ in running), before=read_at)
        reaped = []
        for run_id, sweep_id, beat in running:
            if beat >= cutoff or self._silence(run_id, beat, now) <= timeout:
                continue
            try:
                if self._reap_one(run_id, sweep_id, now):
                    reaped.append(run_id)
            except TunepilotError as exc:  # one run's trouble must not keep the others
                _logger.warning("reaper: run %s of sweep %s: %s", run_id, sweep_id, exc)
        return reaped

    def _silence(self, run_id: str, heartbeat_at: datetime, now: datetime) -> float:
        return self.ctx.liveness.silence(run_id, wall=(now - heartbeat_at).total_seconds())

    def _reap_one(self, run_id: str, sweep_id: str, now: datetime) -> bool:
        ctx = self.ctx
        with ctx.locks.hold(sweep_id):
            with ctx.db.session() as session:
                run = repository.get_run(session, run_id)
                silent = self._silence(run_id, run.heartbeat_at, now)
                if run.state != "running" or silent <= ctx.settings.heartbeat_timeout:
                    return False  # finished or heard from meanwhile
                sweep = repository.get_sweep(session, sweep_id)
                who = f"agent {run.agent}" if run.agent else "its agent (unnamed)"
                reason = f"lost: no heartbeat from {who} for {silent:.1f} s"
                trial_id, params, attempt = run.trial_id, dict(run.params), run.attempt
                study_name, raw = sweep.study_name, sweep.config
            retry = attempt <= ctx.settings.max_retries and sweep.state not in TERMINAL
            try:
                ctx.storage.set_trial_user_attr(trial_id, "fail_reason", reason)
                ctx.storage.set_trial_state_values(trial_id, TrialState.FAIL)
            except UpdateFinishedTrialError:
                pass
            config = ctx.config(sweep_id, raw)
            if retry:
                template = create_trial(
                    state=TrialState.WAITING, params=params,
                    distributions=config.space.distributions(),
                    user_attrs={ATTEMPT_ATTR: attempt + 1, RETRY_OF_ATTR: run_id},
                )
                study_id = ctx.storage.get_study_id_from_name(study_name)
                ctx.storage.create_new_trial(study_id, template_trial=template)
            with ctx.db.session() as session:
                run = repository.get_run(session, run_id)
                run.state, run.fail_reason, run.finished_at = "failed", reason, utcnow()
                ctx.liveness.forget(run_id)
                if retry:
                    session.execute(
                        update(Sweep).where(Sweep.id == sweep_id)
                        .values(n_queued=Sweep.n_queued + 1)
                    )
                else:
                    sweep = repository.get_sweep(session, sweep_id)
                    self._maybe_complete(session, sweep, config)
        _logger.warning("run %s of sweep %s %s; %s", run_id, sweep_id, reason,
                        "its configuration is queued again" if retry else "no retry left")
        return True


def _may_end(sweep: Sweep) -> bool:
    """Whether finishing a run could end the sweep (its run cap reached, or a grid sweep).

    A cheap test on the row, so that most finishes skip loading the parsed config.
    """
    if sweep.state != "running":
        return False
    if sweep.run_cap is not None and sweep.n_suggested >= sweep.run_cap:
        return True
    return sweep.method == "grid"


def _steps(
    run_id: str, rows: list[tuple[int | None, dict[str, Any]]], last: int | None
) -> list[int]:
    """Each row's step: the given one, else the step after the previous row's.

    Raises:
        ConflictError: a step is before the previous row's.
    """
    steps: list[int] = []
    for given, _ in rows:
        previous = steps[-1] if steps else last
        step = given if given is not None else (0 if previous is None else previous + 1)
        if previous is not None and step < previous:
            raise ConflictError(
                f"run {run_id}: step {step} is before the last logged step {previous}; "
                "steps must not decrease (log to the current step or a later one)",
                reason="step_before_last",
            )
        steps.append(step)
    return steps


class _AlreadyStored(Exception):
    """A log request whose id was stored before: its retry must not store it again."""


def _stored(session: Session, run_id: str, request_id: str) -> bool:
    return session.scalar(
        select(MetricRow.id).where(MetricRow.run_id == run_id,
                                   MetricRow.request_id == request_id)
    ) is not None


def _check_running(run: Run) -> None:
    if run.state != "running":
        detail = f": {run.fail_reason}" if run.fail_reason else ""
        raise ConflictError(f"run {run.id} is {run.state}{detail}", reason="run_not_running")


def _update_best(sweep: Sweep, run: Run, value: float) -> None:
    better = sweep.best_value is None or (
        value < sweep.best_value if sweep.metric_goal == "minimize" else value > sweep.best_value
    )
    if better:
        sweep.best_value, sweep.best_run_id = value, run.id
    if sweep.metric_target is not None and sweep.state == "running":
        reached = (value <= sweep.metric_target if sweep.metric_goal == "minimize"
                   else value >= sweep.metric_target)
        if reached:
            sweep.state = "finished"
            sweep.state_reason = f"metric target {sweep.metric_target:g} reached by run {run.id}"
