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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space._params import CategoricalParam
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
    ``{"value": v, "confidence": c}`` (``prior`` is accepted for ``value``).

    Raises:
        SearchSpaceError: a belief names no parameter, lies outside its range, or has an
            unknown confidence; the message starts with the parameter's name.
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
                    f"{name}: unknown prior field {sorted(unknown)[0]!r}; write "
                    "{value: ..., confidence: low|medium|high}"
                )
            value = raw.get("value", raw.get("prior"))
            try:
                belief = Belief(value, raw.get("confidence", "medium"))
            except SearchSpaceError as exc:
                raise SearchSpaceError(f"{name}: {exc}") from None
        else:
            belief = Belief(raw)
        param = space[name]
        if not param.contains(belief.value):
            where = (
                f"one of {list(param.choices)}" if isinstance(param, CategoricalParam)
                else param.describe()
            )
            raise SearchSpaceError(
                f"{name}: prior {belief.value!r} is outside the parameter's range ({where})"
            )
        out[name] = belief
    return out
