"""Search spaces: parameters, conversion to and from Optuna and W&B, validation and repair."""

from tunepilot.space._beliefs import (
    CONFIDENCES,
    Belief,
    Confidence,
    parse_beliefs,
    split_priors,
)
from tunepilot.space._config import space_from_config, space_from_wandb
from tunepilot.space._hydra import param_from_override, space_from_overrides
from tunepilot.space._params import CategoricalParam, FloatParam, IntParam, Param
from tunepilot.space._space import Repaired, SearchSpace
from tunepilot.space._sweep_config import Hyperband, Metric, SweepConfig
from tunepilot.space._wandb import WandbSpace
from tunepilot.space._wandb_param import WandbParam

__all__ = [
    "CONFIDENCES",
    "Belief",
    "CategoricalParam",
    "Confidence",
    "FloatParam",
    "Hyperband",
    "IntParam",
    "Metric",
    "Param",
    "Repaired",
    "SearchSpace",
    "SweepConfig",
    "WandbParam",
    "WandbSpace",
    "param_from_override",
    "parse_beliefs",
    "space_from_config",
    "space_from_overrides",
    "space_from_wandb",
    "split_priors",
]
