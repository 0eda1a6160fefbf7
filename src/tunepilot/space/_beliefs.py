"""A user's beliefs about where good values lie: one per parameter, with a confidence.

A belief is a prior the user writes down instead of asking a language model::

    lr: {type: float, low: 1e-5, high: 1e-1, log: true, prior: 3e-4, confidence: medium}
    optimizer: {type: categorical, choices: [adam, sgd], prior: adam}

The blend turns beliefs into a density over the space: a Gaussian in the parameter's
own scale (log-scaled parameters in log space) whose width in the unit interval the
confidence sets, and for a categorical parameter a favoured choice. Parameters without
a belief are left uniform.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space._params import CategoricalParam, IntParam, Param
from tunepilot.space._space import SearchSpace

Confidence = Literal["low", "medium", "high"]
"""How sure the user is of a belief; sets the width of its density."""

CONFIDENCES: tuple[str, ...] = get_args(Confidence)

#: Width (standard deviation in the unit interval) of a numeric belief, by confidence.
BANDWIDTH: dict[str, float] = {"low": 0.3, "medium": 0.15, "high": 0.06}
#: Probability mass a categorical belief leaves to the other choices, by confidence.
OTHERS: dict[str, float] = {"low": 0.6, "medium": 0.35, "high": 0.12}


@dataclass(frozen=True)
class Belief:
    """Where the user believes a good value of one parameter lies.

    Args:
        value: the believed-good value, inside the parameter's range (a choice for a
            categorical parameter).
        confidence: ``"low"``, ``"medium"`` or ``"high"``.

    Raises:
        SearchSpaceError: the confidence is not one of the three.

    Example:
        .. code-block:: python

            from tunepilot.space import Belief

            lr = Belief(3e-4, "high")
    """

    value: Any
    confidence: Confidence = "medium"

    def __post_init__(self) -> None:
        if self.confidence not in CONFIDENCES:
            raise SearchSpaceError(
                f"confidence must be one of {', '.join(CONFIDENCES)}, got {self.confidence!r}"
            )


def parse_beliefs(space: SearchSpace, beliefs: Mapping[str, Any]) -> dict[str, Belief]:
    """Check beliefs against ``space``: each names a parameter and lies inside it.

    A value may be a :class:`Belief`, a bare value (medium confidence) or a mapping
    ``{"value": v, "confidence": c}`` (``prior`` is accepted for ``value``). Numbers
    written as text (YAML 1.1 reads ``3e-4`` so) are read as numbers; an integer
    parameter's belief becomes an ``int`` and a stepped one snaps to its step.

    Raises:
        SearchSpaceError: a belief names no parameter, lies outside its range, or has an
            unknown confidence; the message starts with the parameter's name.

    Example:
        .. code-block:: python

            from tunepilot.space import FloatParam, SearchSpace, parse_beliefs

            space = SearchSpace([FloatParam("lr", 1e-5, 1e-1, log=True)])
            beliefs = parse_beliefs(space, {"lr": {"value": "3e-4", "confidence": "high"}})
            assert beliefs["lr"].value == 3e-4
    """
    out: dict[str, Belief] = {}
    for name, raw in beliefs.items():
        if name not in space:
            known = ", ".join(space) or "none"
            raise SearchSpaceError(f"{name}: a prior for a parameter the space does not have "
                                   f"(parameters: {known})")
        if isinstance(raw, Belief):
            belief = raw
        elif isinstance(raw, Mapping):
            unknown = set(raw) - {"value", "prior", "confidence"}
            if unknown:
                raise SearchSpaceError(
                    f"{name}: unknown prior field {min(unknown)!r}; write "
                    "{value: ..., confidence: low|medium|high}"
                )
            if "value" not in raw and "prior" not in raw:
                raise SearchSpaceError(f"{name}: a confidence without a value; write "
                                       "{value: ..., confidence: low|medium|high}")
            value = raw.get("value", raw.get("prior"))
            try:
                belief = Belief(value, raw.get("confidence", "medium"))
            except SearchSpaceError as exc:
                raise SearchSpaceError(f"{name}: {exc}") from None
        else:
            belief = Belief(raw)
        out[name] = Belief(_inside(space[name], belief.value), belief.confidence)
    return out


def _inside(param: Param, value: Any) -> Any:
    """``value`` as a value of ``param``, or an error that says where the range is."""
    if isinstance(param, CategoricalParam):
        if not param.contains(value):
            raise SearchSpaceError(f"{param.name}: prior {value!r} is not one of the choices "
                                   f"{list(param.choices)}")
        return param.choices[param.index(value)]
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise SearchSpaceError(f"{param.name}: prior must be a number, got {value!r}") from None
    if (isinstance(number, bool) or not isinstance(number, (int, float))
            or not math.isfinite(number)):
        raise SearchSpaceError(f"{param.name}: prior must be a finite number, got {value!r}")
    if not param.low <= number <= param.high:
        raise SearchSpaceError(f"{param.name}: prior {number!r} is outside the parameter's "
                               f"range ({param.describe()})")
    if isinstance(param, IntParam) and number != int(number):
        raise SearchSpaceError(f"{param.name}: prior {number!r} is not an integer "
                               f"({param.describe()})")
    return param.repair(number)[0]  # snapped to a step, as an int for an int parameter


def split_priors(parameters: Any) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Take the ``prior`` and ``confidence`` keys out of a ``parameters`` mapping.

    A parameter written as a mapping (tunepilot's form or W&B's, nested ``parameters``
    blocks giving dotted names) may carry its belief next to its range::

        lr: {type: float, low: 1e-5, high: 1e-1, log: true, prior: 3e-4, confidence: medium}

    Returns:
        The mapping without those keys (anything else unchanged), and for each
        parameter that had one, ``{"value": ..., "confidence": ...}`` as
        :func:`parse_beliefs` reads it (``confidence`` only when given).
    """
    if not isinstance(parameters, Mapping) or isinstance(parameters, SearchSpace):
        return parameters, {}
    priors: dict[str, dict[str, Any]] = {}
    return _split(parameters, "", priors), priors


def _split(
    parameters: Mapping[str, Any], prefix: str, priors: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, definition in parameters.items():
        name = f"{prefix}{key}"
        if not isinstance(definition, Mapping):
            out[key] = definition
            continue
        if isinstance(definition.get("parameters"), Mapping):
            out[key] = {**definition,
                        "parameters": _split(definition["parameters"], f"{name}.", priors)}
            continue
        belief = {field: definition[k] for k, field in _PRIOR_KEYS.items() if k in definition}
        if belief:
            priors[name] = belief
        out[key] = {k: v for k, v in definition.items() if k not in _PRIOR_KEYS}
    return out


# The keys a parameter's belief is written with, and their names in parse_beliefs' form.
_PRIOR_KEYS = {"prior": "value", "confidence": "confidence"}
