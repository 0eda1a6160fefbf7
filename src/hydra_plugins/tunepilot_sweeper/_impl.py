"""The sweep: parse the overrides, ask the study for trials, launch them, tell the results."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tunepilot.exceptions import ObjectiveError, SearchSpaceError, SpecError
from tunepilot.runner import (
    PriorSource,
    PrunerSpec,
    SamplerSpec,
    make_pruner,
    make_sampler,
    objective_values,
    reporting,
    suggest,
)
from tunepilot.runner._command import override_text
from tunepilot.runner._priors import PRIOR_SAMPLERS, as_study_refs, check_study_refs
from tunepilot.runner._run import FINISHED
from tunepilot.runner._spec import Direction, format_errors
from tunepilot.runner._storage import open_storage
from tunepilot.space import Belief, Param, SearchSpace, param_from_override, parse_beliefs

if TYPE_CHECKING:
    from tunepilot.samplers import StudyRef

log = logging.getLogger(__name__)
_WHERE = "hydra.sweeper"


class Settings(BaseModel):
    """The sweeper's config, validated once with the runner's spec models."""

    model_config = ConfigDict(extra="forbid")

    study_name: str | None = None
    storage: str | None = None
    direction: Direction | list[Direction] = "minimize"
    metric: str | list[str] | None = None
    n_trials: int = Field(default=20, gt=0)
    n_jobs: int = Field(default=1, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    seed: int | None = None
    sampler: SamplerSpec = Field(default_factory=lambda: SamplerSpec(name="tpe"))
    pruner: PrunerSpec = Field(default_factory=lambda: PrunerSpec(name="none"))
    params: dict[str, str] | None = None
    priors: dict[str, Any] | None = None
    prior_from: list[PriorSource] = Field(default_factory=list)

    @field_validator("prior_from", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, (str, dict)) else value

    @property
    def directions(self) -> list[Direction]:
        return [self.direction] if isinstance(self.direction, str) else list(self.direction)


class SweeperImpl:
    """What :class:`~hydra_plugins.tunepilot_sweeper.tunepilot_sweeper.TunepilotSweeper` does."""

    def __init__(self, **settings: Any) -> None:
        plain = {k: _plain(v) for k, v in settings.items()}
        try:
            self.settings = Settings.model_validate(plain)
        except ValidationError as exc:
            raise SpecError(f"{_WHERE}: {format_errors(exc, Settings)}") from None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.hydra_context: HydraContext | None = None
        self.sweeper: Sweeper | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig, sweeper: Sweeper) -> None:
        self.hydra_context, self.config, self.sweeper = hydra_context, config, sweeper
        # The base class's validate_batch_is_legal reads these from the sweeper itself.
        sweeper.hydra_context, sweeper.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)
        sweeper.launcher = self.launcher

    def sweep(self, arguments: list[str]) -> list[list[JobReturn]]:
        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None and self.sweeper is not None
        settings = self.settings
        space, keys, fixed = self._space(arguments)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        study = self._study(space, sweep_dir)
        n_objectives = len(settings.directions)

        done = len(study.get_trials(deepcopy=False, states=FINISHED))
        remaining = max(settings.n_trials - done, 0)
        deadline = time.monotonic() + settings.timeout if settings.timeout else None
        job = done
        returns: list[list[JobReturn]] = []
        while remaining > 0 and (deadline is None or time.monotonic() < deadline):
            trials = [study.ask() for _ in range(min(settings.n_jobs, remaining))]
            configs = [suggest(trial, space) for trial in trials]
            batch = [fixed + [f"{keys[n]}={override_text(v)}" for n, v in c.items()]
                     for c in configs]
            self.sweeper.validate_batch_is_legal(batch)
            try:
                if len(trials) == 1:  # in-process with the basic launcher: reports reach it
                    with reporting(trials[0]):
                        results = list(self.launcher.launch(batch, initial_job_idx=job))
                else:
                    results = list(self.launcher.launch(batch, initial_job_idx=job))
            except KeyboardInterrupt:
                for trial in trials:
                    trial.set_user_attr("fail_reason", "interrupted")
                    study.tell(trial, state=TrialState.FAIL)
                raise
            for trial, result in zip(trials, results, strict=True):
                self._tell(study, trial, result, n_objectives)
            returns.append(results)
            job += len(trials)
            remaining -= len(trials)
        self._save(study, sweep_dir)
        return returns

    def _space(self, arguments: list[str]) -> tuple[SearchSpace, dict[str, str], list[str]]:
        assert self.hydra_context is not None
        texts = [f"{k}={v}" for k, v in (self.settings.params or {}).items()] + list(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        by_key = {o.get_key_element(): o for o in parser.parse_overrides(texts)}  # last wins
        params: list[Param] = []
        keys: dict[str, str] = {}
        fixed: list[str] = []
        for key, override in by_key.items():
            if not override.is_sweep_override():
                fixed.append(f"{key}={override.get_value_element_as_str()}")
                continue
            name = key.lstrip("+~")
            params.append(param_from_override(override, name=name))
            keys[name] = key
        if not params:
            raise SpecError(f"{_WHERE}.params: no parameter to sweep; give one such as "
                            "'lr=tag(log, interval(1e-4, 1e-1))' on the command line or "
                            "under hydra.sweeper.params")
        return SearchSpace(params), keys, fixed

    def _study(self, space: SearchSpace, sweep_dir: Path) -> optuna.Study:
        assert self.config is not None
        settings = self.settings
        url = settings.storage or f"sqlite:///{(sweep_dir / 'tunepilot.db').resolve()}"
        prior, prior_from = self._priors(space, url)
        return optuna.create_study(
            study_name=settings.study_name or str(self.config.hydra.job.name),
            storage=open_storage(url),
            directions=settings.directions,
            sampler=make_sampler(settings.sampler, space=space, seed=settings.seed,
                                 where=_WHERE, prior=prior, prior_from=prior_from),
            pruner=make_pruner(settings.pruner, where=_WHERE),
            load_if_exists=True,
        )

    def _priors(self, space: SearchSpace, url: str) -> tuple[dict[str, Belief], list[StudyRef]]:
        """The beliefs in ``priors`` and the studies in ``prior_from``, checked."""
        settings = self.settings
        prior: dict[str, Belief] = {}
        for name, raw in (settings.priors or {}).items():
            try:
                prior.update(parse_beliefs(space, {name: raw}))
            except SearchSpaceError as exc:
                raise SpecError(f"{_WHERE}.priors.{name}: "
                                f"{str(exc).removeprefix(f'{name}: ')}") from None
        if not settings.prior_from:
            return prior, []
        refs = as_study_refs(settings.prior_from)
        if settings.sampler.name in PRIOR_SAMPLERS:  # make_sampler refuses the others
            check_study_refs(refs, space, storage=url, where=_WHERE)
        return prior, refs

    def _tell(self, study: optuna.Study, trial: optuna.Trial, result: JobReturn,
              n_objectives: int) -> None:
        # JobReturn.return_value prints "Error executing job" before raising; a pruned
        # trial is no error, so it is read from the field behind the property.
        if result.status == JobStatus.FAILED and isinstance(result._return_value,
                                                             optuna.TrialPruned):
            log.info("trial %d pruned: %s", trial.number, result._return_value)
            study.tell(trial, state=TrialState.PRUNED)
            return
        try:
            value = result.return_value
        except Exception as exc:  # the task failed; Hydra logged its traceback
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}"[:500])
            study.tell(trial, state=TrialState.FAIL)
            return
        try:
            values = objective_values(value, n_objectives=n_objectives,
                                      metric=self.settings.metric)
        except ObjectiveError as exc:
            log.warning("trial %d failed: %s", trial.number, exc)
            trial.set_user_attr("fail_reason", str(exc)[:500])
            study.tell(trial, state=TrialState.FAIL)
            return
        study.tell(trial, values)

    def _save(self, study: optuna.Study, sweep_dir: Path) -> None:
        results: dict[str, Any] = {"name": "tunepilot", "study_name": study.study_name,
                                   "storage": str(self.settings.storage or
                                                  sweep_dir / "tunepilot.db")}
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        results["n_trials"] = len(study.get_trials(deepcopy=False))
        if complete and len(study.directions) == 1:
            results["best_params"] = dict(study.best_params)
            results["best_value"] = study.best_value
        elif complete:
            results["solutions"] = [{"params": dict(t.params), "values": list(t.values)}
                                    for t in study.best_trials]
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        log.info("Best: %s", results.get("best_params", results.get("solutions")))


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig) or OmegaConf.is_list(value):
        return OmegaConf.to_container(value, resolve=True)
    return value
