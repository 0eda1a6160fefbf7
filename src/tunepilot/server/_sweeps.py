"""Sweeps: create, read, change, lifecycle, and handing out configurations (suggest)."""

from __future__ import annotations

import contextlib
import secrets
import string
from dataclasses import dataclass
from typing import Any, Literal, overload

import optuna
from optuna.trial import TrialState, create_trial
from sqlalchemy import select, update

from tunepilot.exceptions import ConflictError, TunepilotError
from tunepilot.server._context import ServerContext, parse_config
from tunepilot.server._limits import check_config_size
from tunepilot.server._samplers import build_sweep_sampler
from tunepilot.server.db import MetricRow, Project, Run, Sweep, repository
from tunepilot.server.db._models import utcnow
from tunepilot.space import SweepConfig

_ALPHABET = string.ascii_lowercase + string.digits
#: Sweep states from which no more runs are handed out, ever.
TERMINAL = frozenset({"finished", "failed", "canceled"})
#: Lifecycle action -> (states it may start from, state it leads to).
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"pending"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "finish": (frozenset({"pending", "running", "paused"}), "finished"),
    "cancel": (frozenset({"pending", "running", "paused"}), "canceled"),
}
ATTEMPT_ATTR = "tunepilot.attempt"
RETRY_OF_ATTR = "tunepilot.retry_of"
#: A trial a run may hold: its id, number, params, attempt and the run it retries.
_Claimed = tuple[int, int, dict[str, Any], int, str | None]


def new_id(length: int = 8) -> str:
    """A short random id, as W&B's sweep and run ids."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class Lease:
    """A configuration handed to an agent: the run that now holds it."""

    run: Run
    heartbeat_interval: float


class SweepService:
    """Sweep operations over one :class:`ServerContext`."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def create(
        self,
        config: dict[str, Any],
        *,
        project: str,
        name: str | None = None,
        description: str | None = None,
        start: bool = True,
        request_id: str | None = None,
    ) -> Sweep:
        """Validate ``config``, make its Optuna study and the sweep row.

        A request id makes the call idempotent: a client retrying a create whose
        answer it lost gets the sweep the first request made instead of a second one.

        Raises:
            SearchSpaceError: the config is invalid, or larger than the settings allow.
            SpecError: the sampler options are invalid.
            ConflictError: ``request_id`` already made a sweep of another config.
        """
        check_config_size(config, self.ctx.settings)
        if request_id is not None:
            earlier = self._created_by(request_id, config, project)
            if earlier is not None:
                return earlier
        parsed = parse_config(config)
        if parsed.method != "grid":
            # Bad sampler options and unknown prior_from sweeps fail now, not at the first run.
            prior_studies = self.ctx.prior_studies(parsed, check=True)
            build_sweep_sampler(parsed, prior_studies=prior_studies, settings=self.ctx.settings)
        sweep_id = new_id()
        study_name = f"tunepilot-sweep-{sweep_id}"
        study = optuna.create_study(
            study_name=study_name, storage=self.ctx.storage, direction=parsed.direction
        )
        try:
            study.set_user_attr("tunepilot.sweep_id", sweep_id)
            with self.ctx.db.session() as session:
                owner = repository.project_named(session, project)
                sweep = Sweep(
                    id=sweep_id, project_id=owner.id,
                    name=name if name is not None else parsed.name,
                    description=description if description is not None else parsed.description,
                    method=parsed.method, config=config,
                    state="running" if start else "pending", study_name=study_name,
                    metric_name=parsed.metric.name if parsed.metric else None,
                    metric_goal=parsed.direction,
                    metric_target=parsed.metric.target if parsed.metric else None,
                    run_cap=parsed.run_cap, n_suggested=0, request_id=request_id,
                )
                session.add(sweep)
        except BaseException as exc:
            # Whatever failed, no study is left without its sweep row.
            with contextlib.suppress(Exception):
                optuna.delete_study(study_name=study_name, storage=self.ctx.storage)
            if isinstance(exc, TunepilotError) and request_id:
                # A twin of this request (a retry sent while it was still being made) won.
                earlier = self._created_by(request_id, config, project)
                if earlier is not None:
                    return earlier
            raise
        return sweep

    def _created_by(self, request_id: str, config: dict[str, Any], project: str) -> Sweep | None:
        """The sweep an earlier create with ``request_id`` made, if any.

        Raises:
            ConflictError: that request made a sweep of another config or project.
        """
        with self.ctx.db.session() as session:
            sweep = repository.sweep_for_request(session, request_id)
            if sweep is None:
                return None
            owner = session.get(Project, sweep.project_id)
            if sweep.config != config or owner is None or owner.name != project:
                raise ConflictError(
                    f"request_id {request_id!r} already created sweep {sweep.id} with "
                    "another config or project; send a new id with each request",
                    reason="request_id_reused",
                )
            return sweep

    def update(self, sweep_id: str, changes: dict[str, Any]) -> Sweep:
        """Change name, description or run cap (only the keys present in ``changes``)."""
        with self.ctx.locks.hold(sweep_id), self.ctx.db.session() as session:
            sweep = repository.get_sweep(session, sweep_id)
            for key in ("name", "description", "run_cap"):
                if key in changes:
                    setattr(sweep, key, changes[key])
            return sweep

    def delete(self, sweep_id: str) -> None:
        """Delete the sweep, its runs, their metric rows and the Optuna study."""
        with self.ctx.locks.hold(sweep_id):
            with self.ctx.db.session() as session:
                sweep = repository.get_sweep(session, sweep_id)
                study_name = sweep.study_name
                run_ids = select(Run.id).where(Run.sweep_id == sweep_id)
                session.query(MetricRow).filter(MetricRow.run_id.in_(run_ids)).delete(
                    synchronize_session=False
                )
                session.query(Run).filter(Run.sweep_id == sweep_id).delete()
                session.delete(sweep)
            self.ctx.forget(sweep_id)
            try:
                optuna.delete_study(study_name=study_name, storage=self.ctx.storage)
            except KeyError:
                pass  # already gone

    def transition(self, sweep_id: str, action: str) -> Sweep:
        """Apply a lifecycle action (start, pause, resume, finish, cancel).

        Raises:
            ConflictError: the action is not possible from the sweep's state.
        """
        sources, target = TRANSITIONS[action]
        with self.ctx.locks.hold(sweep_id), self.ctx.db.session() as session:
            sweep = repository.get_sweep(session, sweep_id)
            if sweep.state == target:
                return sweep  # repeating an action is harmless, e.g. a retried request
            if sweep.state not in sources:
                raise ConflictError(
                    f"cannot {action} sweep {sweep_id}: it is {sweep.state}",
                    reason=f"sweep_{sweep.state}",
                )
            sweep.state = target
            sweep.state_reason = f"{action} requested"
            if action == "cancel":
                session.execute(
                    update(Run).where(Run.sweep_id == sweep_id, Run.state == "running")
                    .values(stop_requested=True, stop_reason="the sweep was canceled")
                )
            return sweep

    def suggest(
        self, sweep_id: str, *, agent: str | None, request_id: str | None = None
    ) -> Lease:
        """Lease the next configuration: a queued retry first, else a fresh one.

        A request id makes the call idempotent: when an agent retries a suggest
        whose answer it lost (the server restarted, the network dropped), it gets
        the run the first request created instead of a second one.

        Grid and random configurations are made under the sweep's lock. The other
        methods' samplers may take seconds (an ``llm`` sweep calls its model), so their
        trial is asked for outside the lock, which other agents' finishes, logs and
        suggests need; the run cap and the sweep's state are checked before and again
        after. A trial that is then not handed out (the sweep was paused or filled
        meanwhile) is failed, with the reason.

        Raises:
            ConflictError: the sweep hands out nothing now (``reason`` says why).
        """
        ctx = self.ctx
        with ctx.db.session() as session:
            sweep = repository.get_sweep(session, sweep_id)
            study_name, raw = sweep.study_name, sweep.config
        # Built once per sweep, outside the lock: an llm sweep's model may be probed.
        study, config = ctx.runtime(sweep_id, study_name, raw)
        if config.method in ("grid", "random"):
            with ctx.locks.hold(sweep_id):
                return self._lease(sweep_id, study, config, agent, request_id, sample=True)
        with ctx.locks.hold(sweep_id):
            lease = self._lease(sweep_id, study, config, agent, request_id, sample=False)
        if lease is not None:
            return lease
        trial = study.ask(config.space.distributions())
        # Optuna's ask takes a waiting trial first: a retry the reaper queued meanwhile.
        attrs = trial.user_attrs
        asked: _Claimed = (trial._trial_id, trial.number, dict(trial.params),
                           int(attrs.get(ATTEMPT_ATTR, 1)), attrs.get(RETRY_OF_ATTR))
        with ctx.locks.hold(sweep_id):
            return self._lease(sweep_id, study, config, agent, request_id, asked=asked)

    @overload
    def _lease(self, sweep_id: str, study: optuna.Study, config: SweepConfig,
               agent: str | None, request_id: str | None, *, sample: Literal[False]
               ) -> Lease | None: ...

    @overload
    def _lease(self, sweep_id: str, study: optuna.Study, config: SweepConfig,
               agent: str | None, request_id: str | None, *, sample: Literal[True] = ...,
               asked: _Claimed | None = ...) -> Lease: ...

    def _lease(
        self,
        sweep_id: str,
        study: optuna.Study,
        config: SweepConfig,
        agent: str | None,
        request_id: str | None,
        *,
        sample: bool = True,
        asked: _Claimed | None = None,
    ) -> Lease | None:
        """Under the sweep's lock: the run for ``request_id``, a queued retry, or a run of
        ``asked`` (a trial sampled outside the lock) or of a trial sampled here.

        With ``sample=False`` and nothing to hand out without sampling, the checks a
        fresh trial needs are made and None is returned.
        """
        ctx = self.ctx
        try:
            with ctx.db.session() as session:
                sweep = repository.get_sweep(session, sweep_id)
                earlier = repository.run_for_request(session, request_id) if request_id else None
                if earlier is not None:
                    if earlier.sweep_id != sweep_id:
                        raise ConflictError(
                            f"request_id {request_id!r} was already used for sweep "
                            f"{earlier.sweep_id}; send a new id with each request",
                            reason="request_id_reused",
                        )
                    if asked is not None:  # a twin of this request was answered meanwhile
                        self._not_handed_out(asked[0], f"request {request_id} got run {earlier.id}")
                    return Lease(earlier, ctx.settings.heartbeat_interval)
                _check_open(sweep)
                n_suggested, run_cap, n_queued = sweep.n_suggested, sweep.run_cap, sweep.n_queued
        except BaseException as exc:
            if asked is not None:
                self._not_handed_out(asked[0], exc)
            raise
        if asked is not None:
            claimed: _Claimed | None = asked
            fresh = asked[4] is None  # else Optuna's ask took a queued retry
        else:
            claimed = self._claim_waiting(study) if n_queued else None
            fresh = claimed is None
        if fresh:
            try:
                _check_capacity(sweep_id, config, n_suggested, run_cap)
            except ConflictError as exc:
                if asked is not None:
                    self._not_handed_out(asked[0], exc)
                raise
        if claimed is None:
            if not sample:
                return None
            trial_id, number, params = self._new_trial(study, config, n_suggested)
            attempt, retry_of = 1, None
        else:
            trial_id, number, params, attempt, retry_of = claimed
        try:
            run_config = config.space.config_from_internal(params)
            with ctx.db.session() as session:
                run = Run(
                    id=new_id(), sweep_id=sweep_id, trial_id=trial_id, trial_number=number,
                    attempt=attempt, retry_of=retry_of, state="running",
                    agent=agent, request_id=request_id, config=run_config, params=params, summary={},
                    metric_history=[], n_rows=0, stop_requested=False,
                )
                session.add(run)
                counters: dict[str, Any] = (
                    {"n_suggested": Sweep.n_suggested + 1} if fresh
                    else {"n_queued": Sweep.n_queued - 1}
                )
                if fresh and n_queued and asked is None:
                    counters["n_queued"] = 0  # the counter was stale: nothing was waiting
                session.execute(
                    update(Sweep).where(Sweep.id == sweep_id)
                    .values(updated_at=utcnow(), **counters)
                )
            ctx.liveness.heard(run.id)
        except BaseException:
            # No run holds the trial: fail it so no sampler waits on it forever.
            ctx.storage.set_trial_state_values(trial_id, TrialState.FAIL)
            raise
        return Lease(run, ctx.settings.heartbeat_interval)

    def _not_handed_out(self, trial_id: int, why: BaseException | str) -> None:
        """Fail a trial sampled outside the lock that no run will hold, saying why."""
        with contextlib.suppress(Exception):
            self.ctx.storage.set_trial_user_attr(
                trial_id, "fail_reason", f"not handed out: {why}"[:500])
            self.ctx.storage.set_trial_state_values(trial_id, TrialState.FAIL)

    def _claim_waiting(self, study: optuna.Study) -> _Claimed | None:
        storage = self.ctx.storage
        waiting = storage.get_all_trials(
            study._study_id, deepcopy=False, states=(TrialState.WAITING,)
        )
        for trial in sorted(waiting, key=lambda t: t.number):
            if storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING):
                attrs = trial.user_attrs
                return (trial._trial_id, trial.number, dict(trial.params),
                        int(attrs.get(ATTEMPT_ATTR, 1)), attrs.get(RETRY_OF_ATTR))
        return None

    def _new_trial(
        self, study: optuna.Study, config: SweepConfig, n_suggested: int
    ) -> tuple[int, int, dict[str, Any]]:
        space = config.space
        distributions = space.distributions()
        if config.method in ("grid", "random"):
            # Known parameters become one template trial: one commit instead of one per
            # parameter, which is what study.ask() costs.
            if config.method == "grid":
                params = space.grid_point(n_suggested)
            else:
                blank = create_trial(state=TrialState.RUNNING)
                params = {
                    name: study.sampler.sample_independent(study, blank, name, distribution)
                    for name, distribution in distributions.items()
                }
            template = create_trial(
                state=TrialState.RUNNING, params=params, distributions=distributions
            )
            trial_id = self.ctx.storage.create_new_trial(study._study_id, template_trial=template)
            return trial_id, self.ctx.storage.get_trial_number_from_id(trial_id), params
        trial = study.ask(distributions)
        return trial._trial_id, trial.number, dict(trial.params)


def _check_open(sweep: Sweep) -> None:
    if sweep.state == "running":
        return
    why = {
        "pending": ("not_started", "it has not been started; POST .../start"),
        "paused": ("paused", "it is paused; POST .../resume to continue"),
    }.get(sweep.state, (sweep.state, f"it is {sweep.state}"))
    detail = f" ({sweep.state_reason})" if sweep.state_reason else ""
    raise ConflictError(f"sweep {sweep.id} hands out no runs: {why[1]}{detail}", reason=why[0])


def _check_capacity(
    sweep_id: str, config: SweepConfig, n_suggested: int, run_cap: int | None
) -> None:
    if run_cap is not None and n_suggested >= run_cap:
        raise ConflictError(
            f"sweep {sweep_id} reached its run cap of {run_cap} runs", reason="run_cap_reached"
        )
    if config.method == "grid" and n_suggested >= config.space.grid_size:
        raise ConflictError(
            f"sweep {sweep_id} has handed out all {n_suggested} grid configurations",
            reason="grid_exhausted",
        )
