"""One W&B sweep parameter: its bounded internal Optuna distribution and the transform out.

The table of distributions and transforms is in :mod:`tunepilot.space._wandb`.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space._beliefs import CONFIDENCES, Belief, Confidence

DISTRIBUTIONS = (
    "constant", "categorical", "int_uniform", "uniform", "q_uniform",
    "log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values",
    "log_uniform", "q_log_uniform", "inv_log_uniform",
    "normal", "q_normal", "log_normal", "q_log_normal", "beta", "q_beta",
)
KEYS = {"distribution", "value", "values", "probabilities", "min", "max", "q", "mu", "sigma",
         "a", "b", "parameters", "prior", "confidence"}
QUANTILE = {"normal", "q_normal", "log_normal", "q_log_normal", "beta", "q_beta"}
EXPONENT = {"log_uniform", "q_log_uniform", "inv_log_uniform"}
VALUES_LOG = {"log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values"}
# A quantile of exactly 0 or 1 maps to an infinite value for unbounded distributions.
_EPS = 1e-12
_SCALARS = (str, int, float, bool, type(None))
_MAX_GRID_AXIS = 100_000


def number(name: str, spec: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = spec.get(key, default)
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as text
        try:
            value = float(value)
        except ValueError:
            raise SearchSpaceError(f"{name}: {key} must be a number, got {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**1000:
        raise SearchSpaceError(f"{name}: {key} is too large, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SearchSpaceError(f"{name}: {key} must be a finite number, got {value!r}")
    return value


def _round_q(value: float, q: float) -> float | int:
    ratio = value / q
    if not math.isfinite(ratio) or abs(ratio) > 2**53:
        return value  # already coarser than q: rounding would only add float noise
    rounded = round(ratio) * q
    if isinstance(q, int):
        return int(rounded)
    return float(rounded)


@dataclass(frozen=True)
class WandbParam:
    """One W&B sweep parameter: its internal Optuna distribution and the transform out of it.

    Build them with :meth:`WandbSpace.from_parameters`; ``path`` is the position in
    the nested config, ``name`` the dotted path used as the Optuna parameter name.
    """

    path: tuple[str, ...]
    distribution: str
    spec: Mapping[str, Any] = field(hash=False)
    #: The user's belief (``prior``, ``confidence``), its value an internal value.
    belief: Belief | None = None

    @property
    def name(self) -> str:
        """The dotted name, e.g. ``optimizer.lr``."""
        return ".".join(self.path)

    def internal(self) -> BaseDistribution | None:
        """The bounded distribution Optuna searches, or None for a constant."""
        d, s = self.distribution, self.spec
        if d == "constant":
            return None
        if d == "categorical":
            if "probabilities" in s:
                return FloatDistribution(0.0, 1.0)
            values = s["values"]
            if _plain(values):
                return CategoricalDistribution(values)
            return CategoricalDistribution(list(range(len(values))))
        if d == "int_uniform":
            return IntDistribution(int(s["min"]), int(s["max"]))
        if d in QUANTILE:
            return FloatDistribution(0.0, 1.0)
        return FloatDistribution(float(s["min"]), float(s["max"]), log=d in VALUES_LOG)

    def to_value(self, internal: Any) -> Any:
        """The value the run receives for an internal value (see the module table)."""
        d, s = self.distribution, self.spec
        if d == "constant":
            return s["value"]
        if d == "categorical":
            values = s["values"]
            if "probabilities" in s:
                index = min(bisect.bisect_right(s["_cumulative"], float(internal)),
                            len(values) - 1)
                # u = 1.0 (or float rounding) can land on a value of probability 0.
                ps = s["probabilities"]
                while ps[index] == 0 and index > 0:
                    index -= 1
                while ps[index] == 0:
                    index += 1
                return values[index]
            return internal if _plain(values) else values[int(internal)]
        if d == "int_uniform":
            return int(internal)
        x = float(internal)
        if d in ("uniform", "log_uniform_values", "inv_log_uniform_values"):
            return x
        if d in ("q_uniform", "q_log_uniform_values"):
            return _round_q(x, s["q"])
        if d == "log_uniform":
            return math.exp(x)
        if d == "q_log_uniform":
            return _round_q(math.exp(x), s["q"])
        if d == "inv_log_uniform":
            return math.exp(-x)
        u = min(max(x, _EPS), 1.0 - _EPS)
        if d in ("normal", "q_normal", "log_normal", "q_log_normal"):
            value = statistics.NormalDist(s["mu"], s["sigma"]).inv_cdf(u)
            if d in ("log_normal", "q_log_normal"):
                value = math.exp(value)
        else:
            value = _beta_ppf(u, s["a"], s["b"])
        return _round_q(value, s["q"]) if d.startswith("q_") else value

    def to_internal(self, value: Any) -> Any:
        """The internal value the run's ``value`` comes from: the inverse of :meth:`to_value`.

        For a prior: the user writes the value the run receives, the sampler searches
        internal values. Quantile distributions map a value to its quantile.

        Raises:
            SearchSpaceError: no internal value gives ``value`` (outside the range, not
                one of the values, a constant); the message names ``parameters.NAME.prior``.
        """
        d, s, where = self.distribution, self.spec, f"parameters.{self.name}.prior"
        if d == "constant":
            raise SearchSpaceError(f"{where}: a constant is not searched; drop its prior")
        if d == "categorical":
            if "probabilities" in s:
                raise SearchSpaceError(f"{where}: 'probabilities' already weigh the values; "
                                       "give a prior or probabilities, not both")
            values = s["values"]
            for index, choice in enumerate(values):
                same_kind = type(choice) is type(value) or all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in (choice, value))
                if same_kind and choice == value:
                    return choice if _plain(values) else index
            raise SearchSpaceError(f"{where}: {value!r} is not one of the values {values}")
        try:
            x = float(number(self.name, {"prior": value}, "prior"))
        except SearchSpaceError:
            raise SearchSpaceError(f"{where}: must be a finite number, got {value!r}") from None
        if d == "int_uniform":
            if x != int(x):
                raise SearchSpaceError(f"{where}: {value!r} is not an integer")
            return self._within(int(x), value, where)
        if d in ("uniform", "q_uniform", "log_uniform_values", "q_log_uniform_values",
                 "inv_log_uniform_values"):
            return self._within(x, value, where)
        if d in ("log_uniform", "q_log_uniform", "inv_log_uniform", "log_normal",
                 "q_log_normal") and x <= 0:
            raise SearchSpaceError(f"{where}: {value!r} must be > 0 for {d}")
        if d in ("log_uniform", "q_log_uniform"):
            return self._within(math.log(x), value, where)
        if d == "inv_log_uniform":
            return self._within(-math.log(x), value, where)
        if d in ("normal", "q_normal", "log_normal", "q_log_normal"):
            u = statistics.NormalDist(s["mu"], s["sigma"]).cdf(
                math.log(x) if "log" in d else x)
        else:
            if not 0 <= x <= 1:
                raise SearchSpaceError(f"{where}: {value!r} is outside [0, 1], where {d} lies")
            u = _beta_cdf(x, s["a"], s["b"])
        return min(max(u, _EPS), 1.0 - _EPS)

    def _within(self, internal: float, value: Any, where: str) -> Any:
        low, high = float(self.spec["min"]), float(self.spec["max"])
        if not low <= internal <= high:
            shown = self.to_value(low), self.to_value(high)
            raise SearchSpaceError(
                f"{where}: {value!r} is outside the range [{min(shown)}, {max(shown)}]")
        return internal

    def grid(self) -> Sequence[Any] | None:
        """The internal values a grid sweep walks through, or None if not enumerable.

        Ranges stay lazy: ``int_uniform`` over a billion integers costs nothing until
        a configuration is taken.
        """
        d, s = self.distribution, self.spec
        if d == "constant":
            return [None]
        if d == "categorical":
            values = s["values"]
            return list(values) if _plain(values) else range(len(values))
        if d == "int_uniform":
            return range(int(s["min"]), int(s["max"]) + 1)
        if d == "q_uniform":
            q, low, high = s["q"], s["min"], s["max"]
            first, last = math.ceil(low / q - 1e-9), math.floor(high / q + 1e-9)
            if last - first >= _MAX_GRID_AXIS:
                raise SearchSpaceError(
                    f"{self.name}: q_uniform has {last - first + 1} grid points; "
                    f"a grid axis may have at most {_MAX_GRID_AXIS}, increase q"
                )
            # Internal values are the grid points themselves, clamped into [min, max].
            return [min(max(k * q, low), high) for k in range(first, last + 1)]
        return None


def _plain(values: Sequence[Any]) -> bool:
    """Whether Optuna can hold the values themselves as categorical choices."""
    if not all(isinstance(v, _SCALARS) for v in values):
        return False
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
        return False
    # Optuna's choices must be distinct; 1 and True compare equal in Python.
    keys = [(type(v).__name__, v) for v in values]
    return len(set(keys)) == len(keys) and len(set(map(repr, values))) == len(values)


def belief_of(name: str, spec: Mapping[str, Any]) -> tuple[Any, Confidence] | None:
    """The ``prior`` and ``confidence`` written on a parameter, checked, or None.

    Raises:
        SearchSpaceError: a confidence without a prior, or an unknown confidence.
    """
    if "prior" not in spec:
        if "confidence" in spec:
            raise SearchSpaceError(f"parameters.{name}.confidence: a confidence without a "
                                   "prior; add prior: VALUE")
        return None
    confidence = spec.get("confidence", "medium")
    if confidence not in CONFIDENCES:
        raise SearchSpaceError(f"parameters.{name}.confidence: must be one of "
                               f"{', '.join(CONFIDENCES)}, got {confidence!r}")
    return spec["prior"], confidence


def _beta_cdf(x: float, a: float, b: float) -> float:
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover - scipy ships with the server extra
        raise SearchSpaceError(
            "the beta distributions need scipy; install it with pip install 'tunepilot[server]'"
        ) from None
    return float(stats.beta.cdf(x, a, b))


def _beta_ppf(u: float, a: float, b: float) -> float:
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover - scipy ships with the server extra
        raise SearchSpaceError(
            "the beta distributions need scipy; install it with pip install 'tunepilot[server]'"
        ) from None
    return float(stats.beta.ppf(u, a, b))
