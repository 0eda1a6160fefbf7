"""Build the pruner a spec names: Optuna's median, successive-halving or Hyperband pruner."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable

import optuna

from tunepilot.exceptions import SpecError
from tunepilot.runner._spec import PrunerSpec

_PRUNERS: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "median": optuna.pruners.MedianPruner,
    "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "none": optuna.pruners.NopPruner,
}


def make_pruner(pruner: PrunerSpec, *, where: str = "spec") -> optuna.pruners.BasePruner:
    """Construct the pruner ``pruner`` names with its options.

    Args:
        pruner: the name and keyword options, e.g. ``{name: median, n_warmup_steps: 3}``.
        where: how to name the spec in error messages.

    Raises:
        SpecError: an option is unknown or its value is invalid.

    Example:
        .. code-block:: python

            from tunepilot.runner import PrunerSpec, make_pruner

            pruner = make_pruner(PrunerSpec(name="hyperband", options={"min_resource": 2}))
    """
    factory = _PRUNERS[pruner.name]
    allowed = sorted(
        p.name for p in inspect.signature(factory).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    for key in pruner.options:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            advice = f"did you mean {close[0]!r}? " if close else ""
            raise SpecError(
                f"{where}: pruner.{key}: unknown option for the {pruner.name} pruner; "
                f"{advice}allowed: {', '.join(allowed) or 'none'}"
            )
    try:
        return factory(**pruner.options)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: pruner: invalid option value: {exc}") from None
