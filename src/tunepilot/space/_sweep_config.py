"""A W&B sweep config: method, metric, parameters, early termination, run cap, program.

Everything W&B's schema defines is accepted with W&B's defaults (``goal: minimize``,
hyperband ``eta: 3``, ``strict: false``); tunepilot adds the methods ``llm`` and
``blend``, a ``sampler`` mapping of sampler options, and priors for ``blend``:
``prior`` and ``confidence`` on a parameter (a value the run would receive,
``low``, ``medium`` or ``high``) and a top-level ``prior_from`` naming earlier sweeps
of the same server, whose best runs the new sweep starts from. Unknown top-level keys
(``entity``, ``project``...) are kept, as W&B keeps them.

Example:
    .. code-block:: python

        from tunepilot.space import SweepConfig

        config = SweepConfig.parse({
            "method": "bayes",
            "metric": {"name": "val_loss"},
            "parameters": {"lr": {"min": 0.0001, "max": 0.1}},
            "early_terminate": {"type": "hyperband", "min_iter": 3},
        })
        assert config.metric is not None and config.metric.goal == "minimize"
        assert config.early_terminate is not None
        assert config.early_terminate.bands()[:3] == [3, 9, 27]
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space._beliefs import Belief
from tunepilot.space._wandb import WandbSpace

Method = Literal["random", "grid", "bayes", "llm", "blend"]
#: Methods that learn from results and so need a metric to optimise.
_NEEDS_METRIC = {"bayes", "llm", "blend"}
#: Methods whose sampler takes a prior (``prior`` on parameters, ``prior_from``).
PRIOR_METHODS = ("blend",)
#: How many bands a min_iter hyperband computes (W&B computes 100; runs never get that far).
_MAX_BANDS = 40


class Metric(BaseModel):
    """The metric a sweep optimises: its name in the run summary, the goal, a target."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    goal: Literal["minimize", "maximize"] = "minimize"
    target: float | None = None

    def reached(self, value: float) -> bool:
        """Whether ``value`` meets the target (False without a target)."""
        if self.target is None or not math.isfinite(value):
            return False
        return value <= self.target if self.goal == "minimize" else value >= self.target


class Hyperband(BaseModel):
    """W&B's hyperband early termination: bands, and the fraction 1/eta kept at each."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["hyperband"]
    min_iter: int | None = Field(default=None, ge=1)
    max_iter: int | None = Field(default=None, ge=1)
    s: int | None = Field(default=None, ge=1)
    eta: float = Field(default=3, gt=1)
    strict: bool = False

    @model_validator(mode="after")
    def _check(self) -> Hyperband:
        if self.min_iter is None and self.max_iter is None:
            raise ValueError("hyperband needs 'min_iter', or 'max_iter' with 's'")
        if self.min_iter is None and self.s is None:
            raise ValueError("hyperband with 'max_iter' also needs 's' (the number of bands)")
        if not self.bands():
            raise ValueError("hyperband has no band; increase s or max_iter, or decrease eta")
        return self

    def bands(self) -> list[int]:
        """The iteration counts at which runs are compared, ascending.

        With ``min_iter``: min_iter, min_iter*eta, min_iter*eta^2, ...; with
        ``max_iter`` and ``s``: max_iter/eta, max_iter/eta^2, ... (s of them, each
        at least 1), truncated to integers as W&B does.
        """
        bands: list[int] = []
        if self.min_iter is not None:
            band = float(self.min_iter)
            for _ in range(_MAX_BANDS):
                bands.append(int(band))
                band *= self.eta
            return bands
        band = float(self.max_iter or 0)
        for _ in range(self.s or 0):
            band /= self.eta
            if band < 1:
                break
            bands.append(int(band))
        return sorted(bands)


class SweepConfig(BaseModel):
    """A sweep config in W&B's format, validated, with defaults filled in."""

    model_config = ConfigDict(extra="allow")

    method: Method
    parameters: dict[str, Any]
    metric: Metric | None = None
    early_terminate: Hyperband | None = None
    run_cap: int | None = Field(default=None, ge=1)
    name: str | None = None
    description: str | None = None
    program: str | None = None
    command: list[str] | None = None
    sampler: dict[str, Any] = Field(default_factory=dict)
    prior_from: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _one_or_more(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("prior_from"), str):
            return {**data, "prior_from": [data["prior_from"]]}
        return data

    @model_validator(mode="after")
    def _check(self) -> SweepConfig:
        if self.method in _NEEDS_METRIC and self.metric is None:
            raise ValueError(f"method {self.method!r} needs a 'metric' with a 'name' to optimise")
        if self.early_terminate is not None and self.metric is None:
            raise ValueError("early_terminate needs a 'metric' to compare runs by")
        space = WandbSpace.from_parameters(self.parameters)
        if self.method == "grid":
            space.grid_size  # noqa: B018 - raises when a parameter cannot be enumerated
        if self.method not in PRIOR_METHODS:
            believed = [p.name for p in space.params if p.belief is not None]
            if believed:
                raise ValueError(f"parameters.{believed[0]}.prior: method {self.method!r} "
                                 "cannot use a prior; set method: blend")
            if self.prior_from:
                raise ValueError(f"prior_from: method {self.method!r} cannot start from "
                                 "earlier sweeps; set method: blend")
        if any(not sweep_id for sweep_id in self.prior_from):
            raise ValueError("prior_from: give the id of an earlier sweep")
        return self

    @classmethod
    def parse(cls, data: Any) -> SweepConfig:
        """Validate a config as ``yaml.safe_load`` or a W&B script would give it.

        Raises:
            SearchSpaceError: the config is invalid; the message names the field.
        """
        if not isinstance(data, dict):
            raise SearchSpaceError(
                f"a sweep config is a mapping with method, metric and parameters, "
                f"got {type(data).__name__}"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SearchSpaceError(_format(exc)) from None

    @cached_property
    def space(self) -> WandbSpace:
        """The parameters as an Optuna-searchable :class:`WandbSpace`."""
        return WandbSpace.from_parameters(self.parameters)

    @property
    def beliefs(self) -> dict[str, Belief]:
        """The ``prior`` of each parameter that has one, over :meth:`WandbSpace.search_space`."""
        return self.space.beliefs()

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        """The Optuna study direction (minimize when there is no metric)."""
        return self.metric.goal if self.metric is not None else "minimize"


def _format(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        ctx = error.get("ctx") or {}
        message = str(ctx["error"]) if error["type"] == "value_error" and "error" in ctx else (
            error["msg"]
        )
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts)
