"""SearchSpace: an ordered set of parameters, with validation and repair of configurations."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import BaseDistribution

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space._params import InvalidValue, Param, param_from_distribution


@dataclass(frozen=True)
class Repaired:
    """The outcome of :meth:`SearchSpace.repair`.

    Attributes:
        values: the configuration, inside the space; ``None`` when ``errors`` is not empty.
        repairs: for each changed parameter, what was done (``clamped``, ``snapped``,
            ``coerced``).
        errors: problems no repair can fix, one message per parameter.
    """

    values: dict[str, Any] | None
    repairs: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class SearchSpace(Mapping[str, Param]):
    """An ordered mapping from parameter name to :data:`~tunepilot.space.Param`.

    Example:
        .. code-block:: python

            from tunepilot.space import FloatParam, CategoricalParam, SearchSpace

            space = SearchSpace([
                FloatParam("C", 1e-3, 1e3, log=True),
                CategoricalParam("kernel", ("rbf", "linear")),
            ])
            fixed = space.repair({"C": "5000", "kernel": "RBF"})
            assert fixed.values == {"C": 1000.0, "kernel": "rbf"}
            assert fixed.repairs == {"C": ["coerced", "clamped"], "kernel": ["coerced"]}
    """

    def __init__(self, params: list[Param] | tuple[Param, ...] = ()) -> None:
        self._params: dict[str, Param] = {}
        for param in params:
            if param.name in self._params:
                raise SearchSpaceError(f"parameter {param.name!r} is defined twice")
            self._params[param.name] = param

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and list(self._params.items()) == list(
            other._params.items()
        )

    def __hash__(self) -> int:
        return hash(tuple(self._params.items()))

    def __repr__(self) -> str:
        return f"SearchSpace({list(self._params.values())!r})"

    @classmethod
    def from_optuna(cls, distributions: Mapping[str, BaseDistribution]) -> SearchSpace:
        """Build a space from Optuna distributions, keeping their order."""
        return cls([param_from_distribution(n, d) for n, d in distributions.items()])

    def to_optuna(self) -> dict[str, BaseDistribution]:
        """The Optuna distribution of every parameter."""
        return {name: param.to_distribution() for name, param in self._params.items()}

    def contains(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` sets exactly these parameters, each to a value inside its range."""
        return set(config) == set(self._params) and all(
            p.contains(config[n]) for n, p in self._params.items()
        )

    def repair(self, config: Any) -> Repaired:
        """Fit an untrusted configuration into the space.

        Numbers outside their range are clamped, off-step values snapped, numeric text
        and differently-cased categories coerced; each change is reported. Missing
        parameters, non-finite numbers, wrong types and unknown categories cannot be
        repaired and are returned as ``errors``. Unknown keys are ignored.
        """
        if not isinstance(config, Mapping):
            return Repaired(None, errors=[f"expected an object, got {type(config).__name__}"])
        values: dict[str, Any] = {}
        repairs: dict[str, list[str]] = {}
        errors: list[str] = []
        for name, param in self._params.items():
            if name not in config:
                errors.append(f"{name}: missing")
                continue
            try:
                value, kinds = param.repair(config[name])
            except InvalidValue as exc:
                errors.append(str(exc))
                continue
            values[name] = value
            if kinds:
                repairs[name] = kinds
        if errors:
            return Repaired(None, repairs, errors)
        return Repaired(values, repairs)

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of one configuration, for structured LLM output."""
        return {
            "type": "object",
            "properties": {
                n: {**p.json_schema(), "description": p.explain()} for n, p in self._params.items()
            },
            "required": list(self._params),
            "additionalProperties": False,
        }

    def describe(self) -> list[str]:
        """One line per parameter: name, type, range, scale and step."""
        return [f"{name}: {param.describe()}" for name, param in self._params.items()]

    def explain(self) -> list[str]:
        """One line per parameter for a language model: its range, with the scale said
        plainly (a fraction, a whole number, a log scale and a value on it)."""
        return [f"{name}: {param.explain()}" for name, param in self._params.items()]
