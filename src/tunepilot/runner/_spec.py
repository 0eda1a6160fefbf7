"""The study spec: one Optuna study declared in YAML, validated with pydantic.

A spec names the objective, the direction, the search space and the sampler::

    name: svr-diabetes
    objective: quickstart:objective      # quickstart.py next to this file
    direction: maximize
    n_trials: 20
    seed: 0
    sampler:
      name: llm
      model: local
      description: An SVR on the diabetes data set ...
    parameters:
      C: {type: float, low: 1e-2, high: 1e5, log: true}
      kernel: {type: categorical, choices: [rbf, linear]}

:class:`StudySpec` describes one study so that a multi-study file can later hold a
list of them; :func:`load_spec` reads a file and turns every validation problem
into a :class:`~tunepilot.exceptions.SpecError` that names the file and the field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from tunepilot.exceptions import SpecError
from tunepilot.space import SearchSpace, space_from_config

SamplerName = Literal["llm", "tpe", "random", "gp", "cmaes", "qmc"]
"""Samplers a spec can name: tunepilot's LLMSampler or one of Optuna's."""

SAMPLER_NAMES: tuple[str, ...] = get_args(SamplerName)

_OBJECTIVE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

# What to write instead, shown when a required field is missing or wrong.
_HINTS = {
    "name": "a study name such as 'svr-diabetes'",
    "objective": "'module:function', e.g. 'train:objective' for objective() in train.py "
    "next to the spec",
    "direction": "'minimize' or 'maximize'",
    "parameters": "a mapping such as {C: {type: float, low: 0.01, high: 100, log: true}}",
    "n_trials": "a whole number of trials greater than 0, e.g. 20",
    "sampler": f"one of {', '.join(SAMPLER_NAMES)}, or a mapping with 'name' and options",
    "sampler.name": f"one of {', '.join(SAMPLER_NAMES)}",
    "seed": "a whole number, e.g. 0",
    "storage": "an SQLAlchemy URL such as sqlite:///tunepilot.db",
}


class SamplerSpec(BaseModel):
    """Which sampler drives the study, and the keyword options for its constructor.

    In YAML a sampler is either its name or a mapping whose ``name`` picks it and
    whose other keys are options: ``{name: llm, model: local, description: ...}``.

    Example:
        .. code-block:: python

            from tunepilot.runner import SamplerSpec

            spec = SamplerSpec.model_validate({"name": "tpe", "n_startup_trials": 5})
            assert spec.options == {"n_startup_trials": 5}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: SamplerName
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


class StudySpec(BaseModel):
    """One study: objective, direction, search space, sampler, budget and storage.

    Build one with :func:`load_spec` (which remembers the file, so the objective's
    module is found next to it) or with :meth:`from_mapping`.

    Example:
        .. code-block:: python

            from tunepilot.runner import StudySpec

            spec = StudySpec.from_mapping({
                "name": "demo",
                "objective": "train:objective",
                "direction": "maximize",
                "n_trials": 10,
                "sampler": "tpe",
                "parameters": {"lr": {"type": "float", "low": "1e-4", "high": 0.1, "log": True}},
            })
            assert list(spec.parameters) == ["lr"]
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str = Field(min_length=1)
    objective: str
    direction: Literal["minimize", "maximize"]
    parameters: SearchSpace
    n_trials: int = Field(gt=0, strict=True)
    sampler: SamplerSpec = Field(default_factory=lambda: SamplerSpec(name="tpe"))
    storage: str = Field(default="sqlite:///tunepilot.db", min_length=1)
    seed: int | None = Field(default=None, strict=True)

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("objective")
    @classmethod
    def _check_objective(cls, value: str) -> str:
        if not _OBJECTIVE.match(value):
            raise ValueError(f"{value!r} is not {_HINTS['objective']}")
        return value

    @field_validator("parameters", mode="before")
    @classmethod
    def _parse_parameters(cls, value: Any) -> SearchSpace:
        if isinstance(value, SearchSpace):
            return value
        # SearchSpaceError is a ValueError, so pydantic reports it under 'parameters'.
        return space_from_config(value)

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


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a YAML study spec.

    Args:
        path: the spec file.

    Returns:
        The study, remembering its file so the objective's module is found next to it.

    Raises:
        SpecError: the file is missing, is not YAML, or a field is invalid; the message
            names the file and the field and says what to write instead.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file; give the path of a YAML study spec")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the file: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{path}: not valid YAML{at}: {problem}") from None
    if isinstance(data, Mapping) and "studies" in data:
        raise SpecError(
            f"{path}: studies: multi-study specs are not supported yet; "
            "write one study per file"
        )
    return StudySpec.from_mapping(data, source=path)


def format_errors(exc: ValidationError, model: type[BaseModel], *, prefix: str = "") -> str:
    """Turn pydantic's errors into one line: ``field: problem; what to write``.

    Args:
        exc: the validation error.
        model: the model that was validated, to list its fields.
        prefix: where that model sits in the spec (``sampler.fallback``).
    """
    return "; ".join(_format_error(error, model, prefix) for error in exc.errors())


def _format_error(error: ErrorDetails, model: type[BaseModel], prefix: str) -> str:
    loc = ".".join([prefix] * bool(prefix) + [str(part) for part in error["loc"]])
    kind = error["type"]
    hint = _HINTS.get(loc)
    if kind == "missing":
        return f"{loc}: missing; add {hint}" if hint else f"{loc}: missing"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, error["loc"])
        close = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
        advice = f"did you mean {close[0]!r}? " if close else ""
        return f"{loc}: unknown field; {advice}allowed: {', '.join(allowed)}"
    context = error.get("ctx") or {}
    if kind == "value_error" and "error" in context:
        message = str(context["error"])  # our own message, without pydantic's prefix
    else:
        message = error["msg"]
    if hint and kind not in ("value_error", "literal_error"):
        message = f"{message}; use {hint}"
    return f"{loc}: {message}" if loc else message


def _allowed_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    if len(loc) > 1 and loc[0] == "sampler":
        return sorted(SamplerSpec.model_fields)
    return sorted(model.model_fields)
