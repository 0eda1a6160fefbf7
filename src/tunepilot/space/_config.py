"""Search spaces written as dicts: tunepilot's own form and W&B sweep ``parameters``.

tunepilot's form names the type::

    C: {type: float, low: 0.001, high: 1000, log: true}
    n_layers: {type: int, low: 1, high: 8}
    kernel: {type: categorical, choices: [rbf, linear]}

W&B's form is recognised by its keys (``values``, ``value``, ``min``/``max``,
``distribution``); nested ``parameters`` blocks become dotted names
(``optimizer.lr``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space._params import CategoricalParam, FloatParam, IntParam, Param
from tunepilot.space._space import SearchSpace

_OWN_KEYS = {"type", "low", "high", "log", "step", "choices"}
_WANDB_KEYS = {
    "values", "value", "min", "max", "distribution", "q", "parameters", "probabilities", "mu", "sigma",
}
_UNBOUNDED = {"normal", "q_normal", "log_normal", "q_log_normal"}


def space_from_config(parameters: Mapping[str, Any]) -> SearchSpace:
    """Build a :class:`SearchSpace` from a ``parameters`` mapping in either form.

    Raises:
        SearchSpaceError: a definition is malformed; the message names the parameter
            and what to change.
    """
    if not isinstance(parameters, Mapping) or not parameters:
        raise SearchSpaceError("parameters must be a non-empty mapping of name to definition")
    return SearchSpace(list(_params(parameters, prefix="")))


def space_from_wandb(parameters: Mapping[str, Any]) -> SearchSpace:
    """Build a :class:`SearchSpace` from a W&B sweep config's ``parameters`` block."""
    return space_from_config(parameters)


def _params(parameters: Mapping[str, Any], prefix: str) -> list[Param]:
    if not isinstance(parameters, Mapping) or not parameters:
        raise SearchSpaceError(f"{prefix}parameters must be a non-empty mapping of name to definition")
    params: list[Param] = []
    for key, spec in parameters.items():
        name = f"{prefix}{key}"
        if not isinstance(spec, Mapping):
            raise SearchSpaceError(
                f"{name}: expected a mapping such as {{type: float, low: 0, high: 1}} "
                f"or {{values: [...]}}, got {spec!r}"
            )
        if "parameters" in spec:
            params.extend(_params(spec["parameters"], prefix=f"{name}."))
        elif "type" in spec:
            params.append(_own(name, spec))
        else:
            params.append(_wandb(name, spec))
    return params


def _own(name: str, spec: Mapping[str, Any]) -> Param:
    unknown = set(spec) - _OWN_KEYS
    if unknown:
        raise SearchSpaceError(f"{name}: unknown keys {sorted(unknown)}; allowed: {sorted(_OWN_KEYS)}")
    kind = spec["type"]
    try:
        if kind == "float":
            return FloatParam(
                name, _num(name, spec, "low"), _num(name, spec, "high"),
                log=_flag(name, spec, "log"),
                step=_num(name, spec, "step") if spec.get("step") is not None else None,
            )
        if kind == "int":
            return IntParam(
                name, _int(name, spec, "low"), _int(name, spec, "high"),
                log=_flag(name, spec, "log"),
                step=_int(name, spec, "step") if "step" in spec else 1,
            )
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list):
                raise SearchSpaceError(f"{name}: categorical needs 'choices: [...]'")
            return CategoricalParam(name, tuple(choices))
    except KeyError as exc:
        raise SearchSpaceError(f"{name}: missing {exc.args[0]!r}") from None
    raise SearchSpaceError(f"{name}: type must be float, int or categorical, got {kind!r}")


def _flag(name: str, spec: Mapping[str, Any], key: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise SearchSpaceError(f"{name}: {key} must be true or false, got {value!r}")
    return value


def _num(name: str, spec: Mapping[str, Any], key: str) -> float:
    value = spec[key]
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as text
        try:
            value = float(value)
        except ValueError:
            raise SearchSpaceError(f"{name}: {key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SearchSpaceError(f"{name}: {key} must be a number, got {value!r}")
    return float(value)


def _int(name: str, spec: Mapping[str, Any], key: str) -> int:
    given = spec[key]
    if isinstance(given, int) and not isinstance(given, bool):
        return given  # as given: a float would round bounds beyond 2**53
    value = _num(name, spec, key)
    if value != int(value):
        raise SearchSpaceError(f"{name}: {key} must be an integer, got {spec[key]!r}")
    return int(value)


def _wandb(name: str, spec: Mapping[str, Any]) -> Param:
    unknown = set(spec) - _WANDB_KEYS
    if unknown:
        raise SearchSpaceError(
            f"{name}: unknown keys {sorted(unknown)}; use 'values', 'value', 'min'/'max' "
            f"with an optional 'distribution', or tunepilot's 'type'/'low'/'high'"
        )
    if "probabilities" in spec:
        raise SearchSpaceError(
            f"{name}: 'probabilities' is not supported; samplers choose among 'values' themselves"
        )
    distribution = spec.get("distribution")
    if distribution in _UNBOUNDED:
        raise SearchSpaceError(
            f"{name}: the unbounded distribution {distribution!r} is not supported; "
            "give 'min' and 'max' with a uniform or log-uniform distribution"
        )
    if "value" in spec or distribution == "constant":
        if "value" not in spec:
            raise SearchSpaceError(f"{name}: distribution 'constant' needs 'value'")
        return CategoricalParam(name, (spec["value"],))
    if "values" in spec or distribution == "categorical":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise SearchSpaceError(f"{name}: 'values' must be a non-empty list")
        return CategoricalParam(name, tuple(values))
    if "min" not in spec or "max" not in spec:
        raise SearchSpaceError(f"{name}: give 'values', 'value', or both 'min' and 'max'")
    low, high = _num(name, spec, "min"), _num(name, spec, "max")
    both_int = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min", "max"))
    q = spec.get("q")
    if distribution is None:
        distribution = "int_uniform" if both_int else "uniform"
    if distribution == "int_uniform":
        return IntParam(name, _int(name, spec, "min"), _int(name, spec, "max"))
    if distribution == "uniform":
        return FloatParam(name, low, high)
    if distribution == "q_uniform":
        step = _num(name, spec, "q") if q is not None else 1.0
        if step <= 0:
            raise SearchSpaceError(f"{name}: q must be > 0, got {q!r}")
        if both_int and step == int(step):
            return IntParam(name, int(low), int(low + (high - low) // step * step), step=int(step))
        # Decimal arithmetic: in floats, (0.3 - 0) / 0.1 == 2.9999999999999996.
        d_low, d_step = Decimal(str(low)), Decimal(str(step))
        top = float(d_low + (Decimal(str(high)) - d_low) // d_step * d_step)
        return FloatParam(name, low, top, step=step)
    if distribution == "log_uniform_values":
        return FloatParam(name, low, high, log=True)
    if distribution == "log_uniform":  # bounds are natural-log exponents
        return FloatParam(name, math.exp(low), math.exp(high), log=True)
    if distribution == "q_log_uniform_values":
        if both_int and (q is None or q == 1):
            return IntParam(name, int(low), int(high), log=True)
        raise SearchSpaceError(
            f"{name}: q_log_uniform_values is supported for integer bounds with q: 1 only"
        )
    raise SearchSpaceError(
        f"{name}: unknown distribution {distribution!r}; supported: constant, categorical, "
        "int_uniform, uniform, q_uniform, log_uniform, log_uniform_values, q_log_uniform_values"
    )
