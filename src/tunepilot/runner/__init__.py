"""The study runner: studies declared in YAML, run on Optuna.

Example:
    .. code-block:: python

        from tunepilot.runner import load_spec, run_study

        result = run_study(load_spec("examples/quickstart.yaml"))
        print(result.best_value, result.best_params)
"""

from tunepilot.runner._objective import Objective, load_objective, make_objective
from tunepilot.runner._run import RunResult, run_study
from tunepilot.runner._samplers import build_sampler
from tunepilot.runner._spec import SamplerSpec, StudySpec, load_spec

__all__ = [
    "Objective",
    "RunResult",
    "SamplerSpec",
    "StudySpec",
    "build_sampler",
    "load_objective",
    "load_spec",
    "make_objective",
    "run_study",
]
