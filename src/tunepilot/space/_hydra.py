"""Search spaces written in Hydra's override grammar, parsed by hydra-core's own parser.

Each parameter is one override, ``name=expression``::

    lr=tag(log, interval(1e-5, 1e-1))   float in [1e-5, 0.1], log scale
    dropout=interval(0, 0.5)            float in [0, 0.5]
    units=int(interval(16, 256))        int in [16, 256]
    batch=tag(log, int(interval(8, 512)))  int in [8, 512], log scale
    layers=range(1,4)                   int in [1, 3]: the stop is excluded, as in Hydra
    wd=range(0.0, 0.5, 0.1)             float in [0, 0.4], step 0.1
    opt=choice(adam, sgd)               categorical
    act=relu,tanh                       categorical (Hydra's short choice form)
    epochs=10                           a constant (a one-choice categorical)

``range`` keeps Hydra's meaning, so a sweep gives the same values under Hydra's
basic sweeper and under tunepilot: ``range(1,4)`` is 1, 2 and 3. (The Hydra Optuna
sweeper on PyPI reads the stop as included.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space._params import CategoricalParam, FloatParam, IntParam, Param
from tunepilot.space._space import SearchSpace

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override

_EXAMPLE = "tag(log, interval(1e-5, 1e-1)), int(interval(1, 8)), range(1,4) or choice(a, b)"


def parse_override(text: str) -> Override:
    """Parse one ``key=value`` override with hydra-core's grammar.

    Raises:
        SearchSpaceError: the text is not a valid override; the message quotes it and
            says what the grammar looks like.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    name = text.split("=", 1)[0].strip() or text
    try:
        return OverridesParser.create().parse_override(text)
    except HydraException as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SearchSpaceError(
            f"{name}: cannot parse {text!r}: {problem}; write {name}=expression with an "
            f"expression such as {_EXAMPLE}"
        ) from None


def param_from_override(override: str | Override, *, name: str | None = None) -> Param:
    """Turn one Hydra override into a parameter.

    Args:
        override: the override text (``"lr=tag(log, interval(1e-5, 1e-1))"``) or an
            override hydra-core has already parsed.
        name: the parameter's name; the override's key by default.

    Raises:
        SearchSpaceError: the override does not parse, or describes something a
            sampler cannot draw from (a glob, ``shuffle``, an unknown tag, a list value).

    Example:
        .. code-block:: python

            from tunepilot.space import FloatParam, param_from_override

            assert param_from_override("lr=tag(log, interval(1e-5, 1e-1))") == FloatParam(
                "lr", 1e-5, 0.1, log=True
            )
    """
    parsed = parse_override(override) if isinstance(override, str) else override
    name = name or parsed.key_or_group
    from hydra.core.override_parser.types import (
        ChoiceSweep,
        Glob,
        IntervalSweep,
        RangeSweep,
    )

    value = parsed.value()
    if isinstance(value, Glob):
        raise SearchSpaceError(f"{name}: glob() is not supported; list the options with choice()")
    tags = set(getattr(value, "tags", ()) or ())
    unknown = tags - {"log"}
    if unknown:
        raise SearchSpaceError(
            f"{name}: unknown tag {sorted(unknown)[0]!r}; the one tag tunepilot reads is "
            "'log', as in tag(log, interval(1e-5, 1e-1))"
        )
    if getattr(value, "shuffle", False):
        raise SearchSpaceError(f"{name}: shuffle() has no meaning for a sampler; drop it")
    if isinstance(value, IntervalSweep):
        return _interval(name, value.start, value.end, log="log" in tags)
    if "log" in tags:
        raise SearchSpaceError(f"{name}: tag(log, ...) applies to interval() only")
    if isinstance(value, RangeSweep):
        return _range(name, value)
    if isinstance(value, ChoiceSweep):
        return CategoricalParam(name, tuple(_choice(name, c) for c in value.list))
    return CategoricalParam(name, (_choice(name, value),))


def space_from_overrides(overrides: Iterable[str] | Mapping[str, str]) -> SearchSpace:
    """Build a :class:`SearchSpace` from Hydra override strings.

    Args:
        overrides: ``["lr=tag(log, interval(1e-5, 1e-1))", "layers=range(1,4)"]``, or a
            mapping from name to expression, ``{"lr": "tag(log, interval(1e-5, 1e-1))"}``.

    Raises:
        SearchSpaceError: an override is malformed or unsupported; the message names it.

    Example:
        .. code-block:: python

            from tunepilot.space import space_from_overrides

            space = space_from_overrides(["opt=choice(adam, sgd)", "layers=range(1,4)"])
            assert space.describe() == ['opt: one of "adam", "sgd"', "layers: int in [1, 3]"]
    """
    if isinstance(overrides, Mapping):
        texts = [f"{name}={expression}" for name, expression in overrides.items()]
    elif isinstance(overrides, str):
        texts = [overrides]
    else:
        texts = list(overrides)
    if not texts:
        raise SearchSpaceError("parameters must list at least one override such as lr=interval(0, 1)")
    return SearchSpace([param_from_override(text) for text in texts])


def _interval(name: str, start: Any, end: Any, *, log: bool) -> Param:
    # Hydra makes interval() bounds floats; int(interval(...)) keeps them ints.
    if isinstance(start, int) and isinstance(end, int):
        return IntParam(name, start, end, log=log)
    return FloatParam(name, float(start), float(end), log=log)


def _range(name: str, value: Any) -> Param:
    start, stop, step = value.start, value.stop, value.step
    if step == 0:
        raise SearchSpaceError(f"{name}: range() step must not be 0")
    if all(isinstance(v, int) for v in (start, stop, step)):
        values = list(range(start, stop, step))
        if not values:
            raise SearchSpaceError(
                f"{name}: range({start}, {stop}, {step}) is empty; the stop is excluded, "
                f"so write range({start}, {start + step}) for the single value {start}"
            )
        return IntParam(name, min(values), max(values), step=abs(step))
    # Decimal arithmetic: Hydra's float range gives 0.30000000000000004 for the third 0.1.
    d_start, d_stop, d_step = (Decimal(str(v)) for v in (start, stop, step))
    count = int(-((d_start - d_stop) // d_step))  # ceil((stop - start) / step)
    if count <= 0:
        raise SearchSpaceError(f"{name}: range({start}, {stop}, {step}) is empty")
    last = d_start + (count - 1) * d_step
    low, high = sorted((float(d_start), float(last)))
    return FloatParam(name, low, high, step=float(abs(d_step)))


def _choice(name: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise SearchSpaceError(
        f"{name}: choices must be numbers, strings or booleans, got {type(value).__name__} "
        f"({value!r})"
    )
