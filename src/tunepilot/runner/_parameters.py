"""The ``parameters`` of a study, in any of the forms a spec may write them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space import Param, SearchSpace, param_from_override, space_from_config


def parse_parameters(value: Any) -> SearchSpace:
    """Read ``parameters`` in any of its forms into a :class:`SearchSpace`.

    The forms: a mapping of name to a dict (tunepilot's or W&B's form) or to a Hydra
    sweep expression (``lr: tag(log, interval(1e-5, 1e-1))``), mixed freely; or a list
    of Hydra overrides (``[lr=tag(log, interval(1e-5, 1e-1)), layers=range(1,4)]``).

    Raises:
        SearchSpaceError: a definition is malformed; the message names the parameter.
    """
    if isinstance(value, SearchSpace):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return SearchSpace([_override(text) for text in value])
    if isinstance(value, Mapping) and any(isinstance(v, str) for v in value.values()):
        params = []
        for name, definition in value.items():
            if isinstance(definition, str):
                params.append(_override(f"{name}={definition}"))
            else:
                params.extend(space_from_config({name: definition}).values())
        return SearchSpace(params)
    return space_from_config(value)


def _override(text: str) -> Param:
    try:
        return param_from_override(text)
    except SearchSpaceError as exc:
        if text.count("(") == text.count(")"):
            raise
        # {x: interval(0, 1)} in YAML is {x: 'interval(0', '1)': null}.
        raise SearchSpaceError(
            f"{exc}; inside {{...}} or [...] YAML splits a value at each comma, so quote "
            "the expression or write it on its own line"
        ) from None
