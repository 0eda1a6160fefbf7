"""Parameter definitions: one float, int or categorical dimension of a search space."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeAlias, TypeGuard

from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tunepilot.exceptions import SearchSpaceError

# Repair kinds recorded for a value that was changed to fit the space.
CLAMPED = "clamped"
SNAPPED = "snapped"
COERCED = "coerced"


class InvalidValue(ValueError):
    """A value that no repair can make fit (missing, NaN, wrong type, unknown category)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_number(value: Any, name: str) -> tuple[float | int, list[str]]:
    """Read a finite number, accepting numeric strings as a counted coercion."""
    repairs: list[str] = []
    if isinstance(value, str):
        try:
            value = float(value.strip()) if not value.strip().lstrip("+-").isdigit() else int(value)
        except (ValueError, OverflowError):
            raise InvalidValue(f"{name}: expected a number, got the text {value[:40]!r}") from None
        repairs.append(COERCED)
    if not _is_number(value):
        raise InvalidValue(f"{name}: expected a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(f"{name}: expected a finite number, got {value}")
    if isinstance(value, int) and abs(value) > sys.float_info.max:
        # Finite but beyond float range: an out-of-range value like any other, to be clamped.
        value = sys.float_info.max if value > 0 else -sys.float_info.max
    return value, repairs


def _is_finite_number(value: Any) -> TypeGuard[int | float]:
    # math.isfinite(10**400) raises OverflowError; every int is finite.
    return _is_number(value) and (isinstance(value, int) or math.isfinite(value))


def _snap(value: float, low: float, high: float, step: float) -> float:
    n_steps = math.floor((high - low) / step + 1e-9)
    k = min(max(round((value - low) / step), 0), n_steps)
    # low + k * step can land a rounding error past high (0 + 3 * 0.1 > 0.3).
    return min(low + k * step, high)


def _to_unit(value: float, low: float, high: float, log: bool) -> float:
    if high == low:
        return 0.5
    if log:
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


def _from_unit(u: float, low: float, high: float, log: bool) -> float:
    u = min(max(u, 0.0), 1.0)
    if log:
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


@dataclass(frozen=True)
class FloatParam:
    """A real-valued parameter in ``[low, high]``, optionally log-scaled or stepped."""

    name: str
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if not _is_number(value) or not math.isfinite(value):
                raise SearchSpaceError(f"{self.name}: {bound} must be a finite number, got {value!r}")
        if self.low > self.high:
            raise SearchSpaceError(f"{self.name}: low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise SearchSpaceError(f"{self.name}: a log-scaled range needs low > 0, got {self.low}")
        if self.step is not None:
            if self.log:
                raise SearchSpaceError(f"{self.name}: step and log cannot be combined")
            if not _is_number(self.step) or self.step <= 0:
                raise SearchSpaceError(f"{self.name}: step must be > 0, got {self.step!r}")
            # The same decimal test as Optuna, which would otherwise shrink the range itself.
            span = Decimal(str(self.high)) - Decimal(str(self.low))
            if span % Decimal(str(self.step)):
                fitted = float(
                    Decimal(str(self.low)) + span // Decimal(str(self.step)) * Decimal(str(self.step))
                )
                raise SearchSpaceError(
                    f"{self.name}: high - low ({self.high - self.low:g}) must be a multiple of "
                    f"step ({self.step:g}); set high to {fitted:.10g}"
                )

    def to_distribution(self) -> BaseDistribution:
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def contains(self, value: Any) -> bool:
        if not _is_finite_number(value):
            return False
        if not self.low <= value <= self.high:
            return False
        if self.step is not None:
            k = (value - self.low) / self.step
            return bool(abs(k - round(k)) < 1e-6)
        return True

    def repair(self, value: Any) -> tuple[float, list[str]]:
        number, repairs = _as_number(value, self.name)
        result = float(number)
        if result < self.low or result > self.high:
            result = min(max(result, self.low), self.high)
            repairs.append(CLAMPED)
        if self.step is not None:
            snapped = _snap(result, self.low, self.high, self.step)
            if not math.isclose(snapped, result, rel_tol=0, abs_tol=self.step * 1e-6):
                repairs.append(SNAPPED)
            result = snapped
        return result, repairs

    def to_unit(self, value: float) -> float:
        """Map a value into [0, 1], linearly or in log space."""
        return _to_unit(value, self.low, self.high, self.log)

    def from_unit(self, u: float) -> float:
        """Inverse of :meth:`to_unit`, snapped into the space."""
        return self.repair(_from_unit(u, self.low, self.high, self.log))[0]

    def json_schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": self.low, "maximum": self.high}

    def describe(self) -> str:
        text = f"float in [{self.low:.6g}, {self.high:.6g}]"
        if self.log:
            text += ", log scale"
        if self.step is not None:
            text += f", step {self.step:.6g}"
        return text

    def explain(self) -> str:
        """The range in words a small language model keeps to: the scale said plainly."""
        low, high = _plain_number(self.low), _plain_number(self.high)
        if self.log:
            return f"log scale from {low} to {high}: a value such as {_log_example(self.low, self.high)}"
        if 0 <= self.low and self.high <= 1:
            text = f"a fraction from {low} to {high}, not a count or a percentage"
        else:
            text = f"a decimal number from {low} to {high}"
        if self.step is not None:
            text += f", in steps of {_plain_number(self.step)}"
        return text


@dataclass(frozen=True)
class IntParam:
    """An integer parameter in ``[low, high]``, optionally log-scaled or stepped."""

    name: str
    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        for bound in ("low", "high", "step"):
            value = getattr(self, bound)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SearchSpaceError(f"{self.name}: {bound} must be an integer, got {value!r}")
        if self.low > self.high:
            raise SearchSpaceError(f"{self.name}: low ({self.low}) must not exceed high ({self.high})")
        if self.step < 1:
            raise SearchSpaceError(f"{self.name}: step must be >= 1, got {self.step}")
        if self.log and (self.low < 1 or self.step != 1):
            raise SearchSpaceError(f"{self.name}: a log-scaled int range needs low >= 1 and step 1")
        if (self.high - self.low) % self.step:
            raise SearchSpaceError(
                f"{self.name}: high - low ({self.high - self.low}) must be a multiple of step "
                f"({self.step}); set high to {self.low + (self.high - self.low) // self.step * self.step}"
            )

    def to_distribution(self) -> BaseDistribution:
        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def contains(self, value: Any) -> bool:
        if not _is_finite_number(value) or value != int(value):
            return False
        return self.low <= value <= self.high and (int(value) - self.low) % self.step == 0

    def repair(self, value: Any) -> tuple[int, list[str]]:
        number, repairs = _as_number(value, self.name)
        clamped = min(max(number, self.low), self.high)
        if clamped != number:
            repairs.append(CLAMPED)
        # Fraction keeps ints beyond 2**53 exact, where float arithmetic would not.
        k = round((Fraction(clamped) - self.low) / self.step)
        snapped = self.low + min(max(k, 0), (self.high - self.low) // self.step) * self.step
        if snapped != clamped:
            repairs.append(SNAPPED)
        return snapped, repairs

    def to_unit(self, value: float) -> float:
        """Map a value into [0, 1], linearly or in log space."""
        return _to_unit(value, self.low, self.high, self.log)

    def from_unit(self, u: float) -> int:
        """Inverse of :meth:`to_unit`, snapped into the space."""
        return self.repair(_from_unit(u, self.low, self.high, self.log))[0]

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}

    def describe(self) -> str:
        text = f"int in [{self.low}, {self.high}]"
        if self.log:
            text += ", log scale"
        if self.step != 1:
            text += f", step {self.step}"
        return text

    def explain(self) -> str:
        """The range in words a small language model keeps to: the scale said plainly."""
        text = f"a whole number from {self.low} to {self.high}"
        if self.log:
            text += ", log scale"
        if self.step != 1:
            text += f", in steps of {self.step}"
        return text


def _plain_number(value: float) -> str:
    """A number as JSON may write it, short: ``1e-5``, ``0.001``, ``250``."""
    text = f"{value:.6g}"
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else text


def _log_example(low: float, high: float) -> str:
    """The geometric middle of a log range, with as few digits as stay inside it;
    in exponent notation below 0.01, where a model would otherwise count zeros."""
    middle = math.exp((math.log(low) + math.log(high)) / 2)  # no underflow at 1e-300
    digits = next((d for d in range(1, 7) if low <= float(f"{middle:.{d}g}") <= high), 7)
    example = float(f"{middle:.{digits}g}")
    if example >= 0.01:
        return _plain_number(example)
    mantissa, _, exponent = f"{example:.{digits - 1}e}".partition("e")
    return f"{mantissa}e{int(exponent)}"


def _same_choice(a: Any, b: Any) -> bool:
    # 1 == True == 1.0 in Python; a category must match in kind as well as value.
    return type(a) is type(b) and a == b or (_is_number(a) and _is_number(b) and a == b)


@dataclass(frozen=True)
class CategoricalParam:
    """A parameter that takes one of ``choices`` (None, bool, int, float or str)."""

    name: str
    choices: tuple[CategoricalChoiceType, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.choices, tuple):
            object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise SearchSpaceError(f"{self.name}: a categorical parameter needs at least one choice")
        for choice in self.choices:
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise SearchSpaceError(
                    f"{self.name}: choices must be None, bool, int, float or str; "
                    f"got {type(choice).__name__} ({choice!r})"
                )

    def to_distribution(self) -> BaseDistribution:
        return CategoricalDistribution(self.choices)

    def contains(self, value: Any) -> bool:
        return any(_same_choice(value, choice) for choice in self.choices)

    def repair(self, value: Any) -> tuple[CategoricalChoiceType, list[str]]:
        for choice in self.choices:
            if _same_choice(value, choice):
                return choice, []
        if isinstance(value, (str, int, float, bool)) or value is None:
            text = str(value).strip().lower()
            matches = [c for c in self.choices if str(c).lower() == text]
            if len(matches) == 1:
                return matches[0], [COERCED]
        shown = repr(value) if not isinstance(value, str) else repr(value[:40])
        raise InvalidValue(f"{self.name}: {shown} is not one of {list(self.choices)}")

    def index(self, value: Any) -> int:
        return next(i for i, c in enumerate(self.choices) if _same_choice(value, c))

    def json_schema(self) -> dict[str, Any]:
        return {"enum": list(self.choices)}

    def describe(self) -> str:
        return "one of " + ", ".join(_json_literal(c) for c in self.choices)

    def explain(self) -> str:
        """The choices, as :meth:`describe` gives them."""
        return self.describe()


def _json_literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


Param: TypeAlias = FloatParam | IntParam | CategoricalParam


def param_from_distribution(name: str, distribution: BaseDistribution) -> Param:
    """Build a :data:`Param` from an Optuna distribution."""
    if isinstance(distribution, FloatDistribution):
        return FloatParam(name, distribution.low, distribution.high, distribution.log, distribution.step)
    if isinstance(distribution, IntDistribution):
        return IntParam(name, distribution.low, distribution.high, distribution.log, distribution.step)
    if isinstance(distribution, CategoricalDistribution):
        return CategoricalParam(name, tuple(distribution.choices))
    raise SearchSpaceError(f"{name}: unsupported distribution {type(distribution).__name__}")
