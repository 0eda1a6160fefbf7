"""The sweeper's structured config, registered as ``hydra/sweeper: tunepilot``.

Example (a Hydra app's ``config.yaml``):

.. code-block:: yaml

    defaults:
      - override hydra/sweeper: tunepilot
    hydra:
      sweeper:
        direction: maximize
        n_trials: 10
        sampler: {name: tpe, n_startup_trials: 5}
        params:
          lr: tag(log, interval(1e-4, 1e-1))
          layers: range(1,4)

With ``sampler: {name: blend, model: null}``, ``priors`` (``{lr: {value: 3e-4, confidence:
high}}``) and ``prior_from`` (earlier studies) make a prior without a language model.
"""

# No "from __future__ import annotations": Hydra's plugin scan runs this module before
# it is in sys.modules, where dataclasses would look to resolve string annotations.
from dataclasses import dataclass
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


# Optional[...] rather than X | None: OmegaConf reads these annotations at run time.
@dataclass
class TunepilotSweeperConf:
    """Settings of a tunepilot sweep; every field can be overridden on the command line.

    Attributes:
        study_name: the Optuna study; the Hydra job's name by default.
        storage: an Optuna storage URL; ``tunepilot.db`` in the sweep folder by default.
            With a fixed storage, running the sweep again resumes the study.
        direction: ``minimize`` or ``maximize``, or a list of them.
        metric: the key (or keys) to read when the task returns a dict.
        n_trials: the study's budget of trials, earlier runs included.
        n_jobs: trials launched together (in parallel with a parallel launcher).
        timeout: seconds after which no new trial starts.
        seed: the sampler's seed.
        sampler: ``tpe``, ``random``, ``gp``, ``cmaes``, ``qmc``, ``grid``, ``nsga2``,
            ``llm`` or ``blend``, or a mapping with ``name`` and options.
        pruner: ``none``, ``median``, ``successive-halving`` or ``hyperband``, or a
            mapping with ``name`` and options.
        params: the search space, name to Hydra sweep expression.
        priors: beliefs about good values (``blend`` only), name to a value
            or ``{value: ..., confidence: low | medium | high}``.
        prior_from: earlier studies whose best trials become a prior: a name (in this
            sweep's storage), ``{study: NAME, storage: URL, top_k: 5}``, or a list.
    """

    _target_: str = "hydra_plugins.tunepilot_sweeper.tunepilot_sweeper.TunepilotSweeper"
    study_name: Optional[str] = None
    storage: Optional[str] = None
    direction: Any = "minimize"
    metric: Any = None
    n_trials: int = 20
    n_jobs: int = 1
    timeout: Optional[float] = None
    seed: Optional[int] = None
    sampler: Any = "tpe"
    pruner: Any = "none"
    params: Optional[Dict[str, str]] = None
    priors: Any = None
    prior_from: Any = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="tunepilot", node=TunepilotSweeperConf, provider="tunepilot"
)
