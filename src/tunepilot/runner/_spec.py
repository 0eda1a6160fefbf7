"""The study spec: one Optuna study, validated with pydantic.

A study names the objective, the direction, the search space, the sampler and the
budget::

    name: svr-diabetes
    objective: quickstart:objective      # quickstart.py next to this file
    direction: maximize
    n_trials: 20
    seed: 0
    sampler: {name: llm, model: local, description: An SVR on the diabetes data set ...}
    pruner: {name: median, n_warmup_steps: 3}
    parameters:
      C: {type: float, low: 1e-2, high: 1e5, log: true, prior: 10, confidence: low}
      kernel: choice(rbf, linear)        # Hydra's override grammar

The objective is ``module:function`` or a command line, ``{command: python
train.py}``, whose metrics come back as the last JSON line it prints or in a metrics
file. Files with several studies, ``${oc.env:VAR}`` interpolation and error messages
with line numbers are the business of :mod:`tunepilot.runner._specfile`; priors
(``prior:`` on a parameter, ``prior_from:`` earlier studies) that of
:mod:`tunepilot.runner._priors`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from tunepilot.exceptions import SpecError
from tunepilot.runner._parameters import parse_parameters
from tunepilot.runner._priors import PriorSource, take_priors
from tunepilot.space import Belief, SearchSpace

SamplerName = Literal["llm", "blend", "tpe", "gp", "cmaes", "random", "grid", "qmc", "nsga2"]
"""Samplers a spec can name: tunepilot's LLMSampler (``llm``, ``blend``) or one of Optuna's."""

PrunerName = Literal["median", "successive-halving", "hyperband", "none"]
"""Pruners a spec can name; ``none`` never stops a trial early."""

Direction = Literal["minimize", "maximize"]

SAMPLER_NAMES: tuple[str, ...] = get_args(SamplerName)
PRUNER_NAMES: tuple[str, ...] = get_args(PrunerName)
#: Samplers that tune a single objective only.
SINGLE_OBJECTIVE_SAMPLERS = frozenset({"llm", "blend", "cmaes"})

_OBJECTIVE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
# The tags of the objective's two forms, which pydantic puts in error locations.
_OBJECTIVE_TAGS = ("function", "command")

# What to write instead, shown when a field is missing or wrong.
HINTS = {
    "name": "a study name such as 'svr-diabetes'",
    "objective": "'module:function', e.g. 'train:objective' for objective() in train.py "
    "next to the spec, or {command: python train.py}",
    "objective.command": "the command line to run, e.g. 'python train.py --epochs 10'",
    "direction": "'minimize' or 'maximize' (or directions: [...] for several objectives)",
    "directions": "a list such as [minimize, maximize], one per objective",
    "parameters": "a mapping such as {C: {type: float, low: 0.01, high: 100, log: true}} "
    "or {lr: 'tag(log, interval(1e-5, 1e-1))'}",
    "n_trials": "a whole number of trials greater than 0, e.g. 20 (or a timeout in seconds)",
    "timeout": "a number of seconds greater than 0, e.g. 3600",
    "n_jobs": "a whole number of parallel trials, e.g. 2",
    "sampler": f"one of {', '.join(SAMPLER_NAMES)}, or a mapping with 'name' and options",
    "sampler.name": f"one of {', '.join(SAMPLER_NAMES)}",
    "pruner": f"one of {', '.join(PRUNER_NAMES)}, or a mapping with 'name' and options",
    "pruner.name": f"one of {', '.join(PRUNER_NAMES)}",
    "metric": "the key of the objective's result to optimize, e.g. val_loss",
    "seed": "a whole number, e.g. 0",
    "storage": "an SQLAlchemy URL such as sqlite:///tunepilot.db",
    "prior_from": "an earlier study's name, {study: NAME, storage: URL, top_k: 5}, or a list "
    "of these",
}


class _NamedOptions(BaseModel):
    """A name with keyword options, written in YAML as ``name`` or ``{name: ..., key: value}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, Mapping) and "options" not in data:
            shaped: dict[str, Any] = {
                "options": {str(k): v for k, v in data.items() if k != "name"}
            }
            if "name" in data:
                shaped["name"] = data["name"]
            return shaped
        return data


class SamplerSpec(_NamedOptions):
    """Which sampler drives the study, and the keyword options for its constructor.

    In YAML a sampler is either its name or a mapping whose ``name`` picks it and
    whose other keys are options: ``{name: llm, model: local, description: ...}``.

    Example:
        .. code-block:: python

            from tunepilot.runner import SamplerSpec

            spec = SamplerSpec.model_validate({"name": "tpe", "n_startup_trials": 5})
            assert spec.options == {"n_startup_trials": 5}
    """

    name: SamplerName


class PrunerSpec(_NamedOptions):
    """Which pruner stops unpromising trials early, and its keyword options.

    Example:
        .. code-block:: python

            from tunepilot.runner import PrunerSpec

            spec = PrunerSpec.model_validate({"name": "median", "n_warmup_steps": 3})
            assert (spec.name, spec.options) == ("median", {"n_warmup_steps": 3})
    """

    name: PrunerName


class CommandSpec(BaseModel):
    """An objective that runs a command line once per trial.

    The sampled parameters reach the command three ways: as ``{name}`` placeholders in
    the command, as ``name=value`` arguments appended for every parameter that has no
    placeholder (Hydra's override syntax), and as JSON in ``TUNEPILOT_PARAMS``. The
    result is the last JSON line the command prints, or the JSON in ``metrics_file``.

    Example:
        .. code-block:: python

            from tunepilot.runner import CommandSpec

            spec = CommandSpec.model_validate({"command": "python train.py", "timeout": 600})
            assert spec.argv() == ["python", "train.py"]
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | list[str] = Field(min_length=1)
    metrics_file: str | None = Field(default=None, min_length=1)
    cwd: str | None = Field(default=None, min_length=1)
    timeout: float | None = Field(default=None, gt=0)

    def argv(self) -> list[str]:
        """The command split into arguments, as a POSIX shell would split it."""
        import shlex

        return shlex.split(self.command) if isinstance(self.command, str) else list(self.command)


def _objective_kind(value: Any) -> str:
    return "function" if isinstance(value, str) else "command"


ObjectiveField = Annotated[
    Annotated[str, Tag("function")] | Annotated[CommandSpec, Tag("command")],
    Discriminator(_objective_kind),
]


def _field_error(field: str, message: str) -> PydanticCustomError:
    # A model-level check still names its field: format_errors moves it to that location.
    return PydanticCustomError("spec_field", "{message}", {"field": field, "message": message})


class StudySpec(BaseModel):
    """One study: objective, direction(s), search space, sampler, pruner, budget, storage.

    Build one with :func:`~tunepilot.runner.load_spec` (which remembers the file, so
    the objective's module is found next to it) or with :meth:`from_mapping`.

    Example:
        .. code-block:: python

            from tunepilot.runner import StudySpec

            spec = StudySpec.from_mapping({
                "name": "demo",
                "objective": "train:objective",
                "direction": "maximize",
                "n_trials": 10,
                "sampler": "tpe",
                "pruner": "median",
                "parameters": {"lr": "tag(log, interval(1e-4, 1e-1))", "layers": "range(1,4)"},
            })
            assert list(spec.parameters) == ["lr", "layers"]
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str = Field(min_length=1)
    objective: ObjectiveField
    direction: Direction | None = None
    directions: list[Direction] | None = Field(default=None, min_length=1)
    parameters: SearchSpace
    n_trials: int | None = Field(default=None, gt=0, strict=True)
    timeout: float | None = Field(default=None, gt=0)
    n_jobs: int = Field(default=1, ge=1, strict=True)
    sampler: SamplerSpec = Field(default_factory=lambda: SamplerSpec(name="tpe"))
    pruner: PrunerSpec = Field(default_factory=lambda: PrunerSpec(name="none"))
    metric: str | list[str] | None = None
    storage: str = Field(default="sqlite:///tunepilot.db", min_length=1)
    seed: int | None = Field(default=None, strict=True)
    priors: dict[str, Belief] = Field(default_factory=dict)
    prior_from: list[PriorSource] = Field(default_factory=list)

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _take_priors(cls, data: Any) -> Any:
        # The beliefs written on parameters ('prior:', 'confidence:') go to 'priors'.
        return take_priors(data)

    @field_validator("prior_from", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, (str, Mapping)) else value

    @field_validator("objective")
    @classmethod
    def _check_objective(cls, value: str | CommandSpec) -> str | CommandSpec:
        if isinstance(value, str) and not _OBJECTIVE.match(value):
            raise ValueError(f"{value!r} is not {HINTS['objective']}")
        return value

    @field_validator("parameters", mode="before")
    @classmethod
    def _parse_parameters(cls, value: Any) -> SearchSpace:
        # SearchSpaceError is a ValueError, so pydantic reports it under 'parameters'.
        return parse_parameters(value)

    @model_validator(mode="after")
    def _check_together(self) -> StudySpec:
        if self.direction is None and self.directions is None:
            raise _field_error("direction", f"missing; add {HINTS['direction']}")
        if (self.direction is not None and self.directions is not None
                and self.directions != [self.direction]):
            raise _field_error(
                "directions", "give direction for one objective or directions for several, "
                "not both")
        if self.n_trials is None and self.timeout is None:
            raise _field_error("n_trials", f"missing; add {HINTS['n_trials']}")
        count = len(self.study_directions)
        if isinstance(self.metric, list) and len(self.metric) != count:
            raise _field_error(
                "metric", f"lists {len(self.metric)} keys for {count} direction(s); give one "
                "key per direction")
        if count > 1 and self.sampler.name in SINGLE_OBJECTIVE_SAMPLERS:
            raise _field_error(
                "sampler", f"the {self.sampler.name} sampler tunes one objective; use tpe, "
                "nsga2, random or qmc for several directions")
        for source in self.prior_from:
            if source.study == self.name and source.storage in (None, self.storage):
                raise _field_error("prior_from", f"study {self.name!r} cannot start from "
                                                 "itself; name an earlier study")
        return self

    @property
    def study_directions(self) -> tuple[Direction, ...]:
        """The direction of each objective, in order; one for a single-objective study."""
        if self.directions is not None:
            return tuple(self.directions)
        assert self.direction is not None  # the model validator guarantees one of them
        return (self.direction,)

    @property
    def source(self) -> Path | None:
        """The YAML file this spec was read from, if any."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """Where the objective's module is looked for first: the spec file's directory."""
        return self._source.parent if self._source is not None else Path.cwd()

    @property
    def where(self) -> str:
        """How error messages name this spec: its file, or ``spec`` when built in code."""
        return str(self._source) if self._source is not None else "spec"

    @classmethod
    def from_mapping(cls, data: Any, *, source: Path | None = None) -> StudySpec:
        """Validate a parsed YAML mapping.

        Args:
            data: the mapping, as ``yaml.safe_load`` returns it.
            source: the file it came from; names it in errors and anchors the
                objective's import.

        Raises:
            SpecError: a field is missing, unknown or invalid.
        """
        where = str(source) if source is not None else "spec"
        if not isinstance(data, Mapping):
            raise SpecError(
                f"{where}: expected a mapping with name, objective, direction, parameters "
                f"and n_trials, got {type(data).__name__}"
            )
        try:
            spec = cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(f"{where}: {format_errors(exc, cls)}") from None
        spec._source = source
        return spec

    def replace(self, **changes: Any) -> StudySpec:
        """A validated copy with some fields changed (command-line overrides).

        Raises:
            SpecError: a changed value is invalid.
        """
        try:
            spec = type(self).model_validate({**dict(self), **changes})
        except ValidationError as exc:
            raise SpecError(f"{self.where}: {format_errors(exc, type(self))}") from None
        spec._source = self._source
        return spec


Locate = Callable[[tuple[int | str, ...]], tuple[str, int | None]]
"""Maps a pydantic error location to the field's label and its line in the file."""


def format_errors(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    prefix: str = "",
    locate: Locate | None = None,
) -> str:
    """Turn pydantic's errors into one line: ``[line N: ]field: problem; what to write``.

    Args:
        exc: the validation error.
        model: the model that was validated, to list its fields.
        prefix: where that model sits in the spec (``sampler.fallback``).
        locate: names the field and finds its line; by default the dotted location.
    """
    messages: list[str] = []
    for error in exc.errors():
        message = _format_error(error, model, prefix, locate)
        if message not in messages:
            messages.append(message)
    return "; ".join(messages)


def error_location(error: ErrorDetails) -> tuple[int | str, ...]:
    """The error's location in the spec, without pydantic's union tags."""
    loc = tuple(error["loc"])
    if loc[:1] == ("objective",) and len(loc) > 1 and loc[1] in _OBJECTIVE_TAGS:
        loc = loc[:1] + loc[2:]
    context = error.get("ctx") or {}
    if error["type"] == "spec_field" and "field" in context:
        field = context["field"]
        loc = (*loc, *field) if isinstance(field, tuple) else (*loc, str(field))
    return loc


def _format_error(
    error: ErrorDetails, model: type[BaseModel], prefix: str, locate: Locate | None
) -> str:
    loc = error_location(error)
    key = ".".join(str(part) for part in loc)
    if locate is not None:
        label, line = locate(loc)
        named = str((error.get("ctx") or {}).get("error", "")).split(":", 1)[0]
        if loc == ("parameters",) and named and " " not in named:
            line = locate((*loc, named))[1]  # the parameter's own line
    else:
        label, line = ".".join([prefix] * bool(prefix) + [key] * bool(key)), None
    at = f"line {line}: " if line is not None else ""
    kind = error["type"]
    hint = HINTS.get(key) if not prefix else HINTS.get(f"{prefix}.{key}")
    context = error.get("ctx") or {}
    if kind == "missing":
        problem = f"missing; add {hint}" if hint else "missing"
    elif kind == "extra_forbidden":
        allowed = _allowed_fields(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        advice = f"did you mean {close[0]!r}? " if close else ""
        problem = f"unknown field; {advice}allowed: {', '.join(allowed)}"
    elif kind == "spec_field":
        problem = str(context["message"])
    else:
        if kind == "value_error" and "error" in context:
            problem = str(context["error"])  # our own message, without pydantic's prefix
        else:
            problem = error["msg"]
        if hint and kind not in ("value_error", "literal_error"):
            problem = f"{problem}; use {hint}"
    return f"{at}{label}: {problem}" if label else f"{at}{problem}"


def _allowed_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    nested: dict[str, type[BaseModel]] = {
        "sampler": SamplerSpec, "pruner": PrunerSpec, "objective": CommandSpec,
        "prior_from": PriorSource,
    }
    if len(loc) > 1 and loc[0] in nested and model is StudySpec:
        return sorted(nested[str(loc[0])].model_fields)
    return sorted(model.model_fields)
