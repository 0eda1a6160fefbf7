"""W&B sweep ``parameters`` with every distribution of W&B's schema, mapped onto Optuna.

Optuna samplers search bounded spaces. Each W&B parameter therefore owns a bounded
*internal* Optuna distribution, and an explicit transform maps the internal value
to the value the user's code receives. The study stores internal values (so any
Optuna sampler, the LLM sampler and ``optuna-dashboard`` work unchanged); the run
receives transformed values.

=========================  =============================  ==========================================
W&B distribution           internal Optuna distribution   value the run receives
=========================  =============================  ==========================================
constant                   none (not searched)            ``value``
categorical                categorical over the values    the value (by index when values are not
                           (or their indices)             plain scalars, e.g. lists)
categorical+probabilities  uniform(0, 1)                  the value whose cumulative probability
                                                          interval holds u (inverse CDF)
int_uniform                int [min, max]                 identity
uniform                    float [min, max]               identity
q_uniform                  float [min, max]               ``round(x / q) * q``
log_uniform_values         float [min, max], log          identity
q_log_uniform_values       float [min, max], log          ``round(x / q) * q``
inv_log_uniform_values     float [min, max], log          identity: 1/X with X log-uniform on
                                                          [1/max, 1/min] is log-uniform on [min, max]
log_uniform (legacy)       float [min, max] (exponents)   ``exp(x)``
q_log_uniform (legacy)     float [min, max] (exponents)   ``round(exp(x) / q) * q``
inv_log_uniform (legacy)   float [min, max] (exponents)   ``exp(-x)``
normal, q_normal           uniform(0, 1) quantile u       ``N(mu, sigma).ppf(u)`` (then rounded to q)
log_normal, q_log_normal   uniform(0, 1) quantile u       ``exp(N(mu, sigma).ppf(u))`` (then q)
beta, q_beta               uniform(0, 1) quantile u       ``Beta(a, b).ppf(u)`` (then q), via scipy
=========================  =============================  ==========================================

A ``q`` given as an integer makes the rounded value an integer, as in W&B. Defaults
follow W&B: ``mu=0``, ``sigma=1``, ``a=b=1``, ``q=1``; without ``distribution``,
``values`` means categorical, ``value`` constant, integer ``min``/``max``
int_uniform and other ``min``/``max`` uniform.

Example:
    .. code-block:: python

        from tunepilot.space import WandbSpace

        space = WandbSpace.from_parameters({
            "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
            "optimizer": {"parameters": {"name": {"values": ["adam", "sgd"]}}},
        })
        config = space.config_from_internal({"lr": 1e-3, "optimizer.name": "sgd"})
        assert config == {"lr": 1e-3, "optimizer": {"name": "sgd"}}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space._beliefs import Belief, parse_beliefs
from tunepilot.space._space import SearchSpace
from tunepilot.space._wandb_param import (
    DISTRIBUTIONS,
    EXPONENT,
    KEYS,
    QUANTILE,
    VALUES_LOG,
    WandbParam,
    belief_of,
    number,
)


@dataclass(frozen=True)
class WandbSpace:
    """The parameters of a W&B sweep config, searchable by Optuna.

    Example:
        .. code-block:: python

            space = WandbSpace.from_parameters({"x": {"distribution": "normal", "mu": 2}})
            assert space.config_from_internal({"x": 0.5}) == {"x": 2.0}
    """

    params: tuple[WandbParam, ...]

    @classmethod
    def from_parameters(cls, parameters: Any) -> WandbSpace:
        """Validate a ``parameters`` block and fill in W&B's defaults.

        Raises:
            SearchSpaceError: a definition is malformed; the message names the
                parameter and what to write instead.
        """
        return cls(tuple(_parse(parameters, ())))

    def distributions(self) -> dict[str, BaseDistribution]:
        """Internal Optuna distributions of the searched (non-constant) parameters."""
        out: dict[str, BaseDistribution] = {}
        for param in self.params:
            internal = param.internal()
            if internal is not None:
                out[param.name] = internal
        return out

    def search_space(self) -> SearchSpace:
        """The internal space as a :class:`SearchSpace`, e.g. for the LLM sampler."""
        return SearchSpace.from_optuna(self.distributions())

    def beliefs(self) -> dict[str, Belief]:
        """The ``prior`` written on each parameter that has one, in the internal space.

        The value the run would receive becomes the internal value it comes from (its
        quantile, for a normal or beta distribution), so a sampler over
        :meth:`search_space` can centre its prior there.
        """
        found = {p.name: p.belief for p in self.params if p.belief is not None}
        return parse_beliefs(self.search_space(), found) if found else {}

    def config_from_internal(self, internal: Mapping[str, Any]) -> dict[str, Any]:
        """The nested run config for internal values keyed by dotted name.

        Raises:
            SearchSpaceError: a searched parameter has no value.
        """
        config: dict[str, Any] = {}
        for param in self.params:
            if param.distribution != "constant" and param.name not in internal:
                raise SearchSpaceError(f"{param.name}: no value was chosen")
            node = config
            for key in param.path[:-1]:
                node = node.setdefault(key, {})
            node[param.path[-1]] = param.to_value(internal.get(param.name))
        return config

    @property
    def grid_size(self) -> int:
        """How many configurations a grid sweep has.

        Raises:
            SearchSpaceError: a parameter cannot be enumerated (a continuous range).
        """
        size = 1
        for values in self._grid_axes():
            size *= len(values)
        return size

    def grid_point(self, index: int) -> dict[str, Any]:
        """The internal values of grid configuration ``index`` (0 <= index < grid_size).

        Configurations are numbered in mixed radix over the parameters in order, the
        last parameter varying fastest, so the grid never needs to be materialised.
        """
        axes = self._grid_axes()
        point: dict[str, Any] = {}
        for param, values in zip(reversed(self.params), reversed(axes), strict=True):
            index, digit = divmod(index, len(values))
            if param.distribution != "constant":
                point[param.name] = values[digit]
        if index:
            raise IndexError("grid index out of range")
        return point

    def grid_points(self) -> Iterator[dict[str, Any]]:
        """Every grid configuration, in order."""
        for i in range(self.grid_size):
            yield self.grid_point(i)

    def _grid_axes(self) -> list[Sequence[Any]]:
        axes = []
        for param in self.params:
            values = param.grid()
            if values is None:
                raise SearchSpaceError(
                    f"{param.name}: a grid sweep cannot enumerate the {param.distribution} "
                    "distribution; use 'values', 'int_uniform' or 'q_uniform'"
                )
            axes.append(values)
        return axes


def _parse(parameters: Any, prefix: tuple[str, ...]) -> list[WandbParam]:
    where = ".".join(prefix) + ".parameters" if prefix else "parameters"
    if not isinstance(parameters, Mapping) or not parameters:
        raise SearchSpaceError(f"{where} must be a non-empty mapping of name to definition")
    params: list[WandbParam] = []
    for key, spec in parameters.items():
        path = (*prefix, str(key))
        name = ".".join(path)
        if not isinstance(spec, Mapping):
            raise SearchSpaceError(
                f"{name}: expected a mapping such as {{values: [...]}} or {{min: 0, max: 1}}, "
                f"got {spec!r}"
            )
        unknown = set(spec) - KEYS
        if unknown:
            raise SearchSpaceError(
                f"{name}: unknown keys {sorted(unknown)}; allowed: {sorted(KEYS)}"
            )
        if "parameters" in spec:
            if set(spec) != {"parameters"}:
                raise SearchSpaceError(f"{name}: a nested block holds only 'parameters'")
            params.extend(_parse(spec["parameters"], path))
        else:
            params.append(_param(path, spec))
    return params


def _param(path: tuple[str, ...], spec: Mapping[str, Any]) -> WandbParam:
    name = ".".join(path)
    d = spec.get("distribution")
    if d is None:
        if "value" in spec:
            d = "constant"
        elif "values" in spec:
            d = "categorical"
        elif "min" in spec and "max" in spec:
            both_int = all(
                isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min", "max")
            )
            d = "int_uniform" if both_int else "uniform"
        else:
            raise SearchSpaceError(
                f"{name}: give 'values', 'value', 'min' and 'max', or a 'distribution'"
            )
    if d not in DISTRIBUTIONS:
        raise SearchSpaceError(
            f"{name}: unknown distribution {d!r}; supported: {', '.join(DISTRIBUTIONS)}"
        )
    filled: dict[str, Any] = {}
    if d == "constant":
        if "value" not in spec:
            raise SearchSpaceError(f"{name}: distribution 'constant' needs 'value'")
        filled["value"] = spec["value"]
    elif d == "categorical":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise SearchSpaceError(f"{name}: 'values' must be a non-empty list")
        filled["values"] = list(values)
        if "probabilities" in spec:
            filled.update(_probabilities(name, spec["probabilities"], len(values)))
    elif d in QUANTILE:
        if d.startswith("beta") or d == "q_beta":
            filled["a"], filled["b"] = number(name, spec, "a", 1), number(name, spec, "b", 1)
            if filled["a"] <= 0 or filled["b"] <= 0:
                raise SearchSpaceError(f"{name}: a and b must be > 0")
        else:
            mu, sigma = number(name, spec, "mu", 0), number(name, spec, "sigma", 1)
            if sigma <= 0:
                raise SearchSpaceError(f"{name}: sigma must be > 0, got {sigma}")
            # Quantiles reach about 7.1 sigma; values must stay finite numbers.
            limit = 700.0 if "log" in d else 1e300
            if abs(mu) + 8 * sigma > limit:
                raise SearchSpaceError(
                    f"{name}: |mu| + 8 * sigma must be at most {limit:g} for {d}"
                )
            filled["mu"], filled["sigma"] = mu, sigma
    else:
        filled.update(_bounds(name, spec, d))
    if d.startswith("q_"):
        q = spec.get("q", 1)
        q = q if isinstance(q, int) and not isinstance(q, bool) else number(name, spec, "q")
        if q <= 0:
            raise SearchSpaceError(f"{name}: q must be > 0, got {q!r}")
        filled["q"] = q
    param = WandbParam(path, d, filled)
    belief = belief_of(name, spec)
    if belief is None:
        return param
    value, confidence = belief
    return dataclasses.replace(param, belief=Belief(param.to_internal(value), confidence))


def _bounds(name: str, spec: Mapping[str, Any], d: str) -> dict[str, Any]:
    if "min" not in spec or "max" not in spec:
        raise SearchSpaceError(f"{name}: distribution {d!r} needs both 'min' and 'max'")
    low, high = number(name, spec, "min"), number(name, spec, "max")
    if low > high:
        raise SearchSpaceError(f"{name}: min ({low}) must not exceed max ({high})")
    if d == "int_uniform":
        if any(isinstance(v, float) and v != int(v) for v in (low, high)):
            raise SearchSpaceError(f"{name}: int_uniform needs integer min and max")
        return {"min": int(low), "max": int(high)}
    if d in VALUES_LOG and low <= 0:
        raise SearchSpaceError(f"{name}: {d} needs min > 0, got {low}")
    if d in EXPONENT and max(abs(low), abs(high)) > 700:
        raise SearchSpaceError(
            f"{name}: {d} takes natural-log exponents as min/max; |min|, |max| must be <= 700 "
            f"(did you mean {d}_values?)"
        )
    return {"min": low, "max": high}


def _probabilities(name: str, probabilities: Any, n: int) -> dict[str, Any]:
    if not isinstance(probabilities, list) or len(probabilities) != n:
        raise SearchSpaceError(f"{name}: 'probabilities' must be a list with one entry per value")
    ps = [number(name, {"p": p}, "p") for p in probabilities]
    if any(p < 0 for p in ps) or not math.isclose(sum(ps), 1.0, abs_tol=1e-6):
        raise SearchSpaceError(f"{name}: probabilities must be >= 0 and sum to 1, got {ps}")
    cumulative, total = [], 0.0
    for p in ps[:-1]:
        total += p
        cumulative.append(total)
    return {"probabilities": ps, "_cumulative": cumulative}
