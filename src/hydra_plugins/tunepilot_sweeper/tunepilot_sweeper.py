"""The sweeper class Hydra instantiates; the work is in ``_impl``, imported when a sweep starts."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class TunepilotSweeper(Sweeper):
    """A Hydra sweeper that asks an Optuna sampler (or tunepilot's LLM sampler) for trials.

    Each trial's configuration is launched as Hydra overrides through the configured
    launcher; the task's return value is the objective. Inside the task,
    ``tunepilot.runner.get_reporter()`` reports intermediate values and says when the
    pruner stops the trial (with the basic launcher, which runs jobs in-process).

    Example:
        .. code-block:: console

            python train.py --multirun hydra/sweeper=tunepilot \\
                hydra.sweeper.n_trials=10 'lr=tag(log, interval(1e-4, 1e-1))'
    """

    def __init__(self, **settings: Any) -> None:
        from hydra_plugins.tunepilot_sweeper._impl import SweeperImpl

        self._impl = SweeperImpl(**settings)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self._impl.setup(hydra_context=hydra_context, task_function=task_function,
                         config=config, sweeper=self)

    def sweep(self, arguments: list[str]) -> Any:
        return self._impl.sweep(arguments)
