"""The study runner: studies declared in YAML, run on Optuna, with pruning and reports.

Example:
    .. code-block:: python

        from tunepilot.runner import load_studies, run_studies

        for result in run_studies(load_studies("examples/pruning/spec.yaml")):
            print(result.study_name, result.best_value, result.best_params)
"""

from tunepilot.runner._command import command_line
from tunepilot.runner._objective import (
    Objective,
    load_objective,
    make_caller,
    make_objective,
    objective_values,
    suggest,
)
from tunepilot.runner._priors import PriorSource
from tunepilot.runner._pruners import make_pruner
from tunepilot.runner._report import Report, write_report
from tunepilot.runner._reporter import Reporter, get_reporter, reporting
from tunepilot.runner._run import RunResult, run_studies, run_study
from tunepilot.runner._samplers import build_sampler, make_sampler
from tunepilot.runner._spec import CommandSpec, PrunerSpec, SamplerSpec, StudySpec
from tunepilot.runner._specfile import load_spec, load_studies
from tunepilot.runner._storage import open_storage
from tunepilot.runner._studies import list_studies

__all__ = [
    "CommandSpec",
    "Objective",
    "PriorSource",
    "PrunerSpec",
    "Report",
    "Reporter",
    "RunResult",
    "SamplerSpec",
    "StudySpec",
    "build_sampler",
    "command_line",
    "get_reporter",
    "list_studies",
    "load_objective",
    "load_spec",
    "load_studies",
    "make_caller",
    "make_objective",
    "make_pruner",
    "make_sampler",
    "objective_values",
    "open_storage",
    "reporting",
    "run_studies",
    "run_study",
    "suggest",
    "write_report",
]
