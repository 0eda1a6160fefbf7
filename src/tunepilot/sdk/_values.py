"""Logged values as the sweep server stores them: JSON, with numpy and torch scalars.

Training code logs what it has at hand: ``np.float32`` accuracies, 0-d tensors,
arrays, a loss that became NaN. JSON has none of those, and the server takes only
finite numbers, so before a log row or a summary is sent:

* a numpy or torch scalar (anything with ``.item()`` and an empty shape) becomes
  the Python number it holds, an array or tensor becomes a (nested) list;
* NaN and the infinities become the strings ``"NaN"``, ``"Infinity"`` and
  ``"-Infinity"``: they are kept and shown, but they are not numbers to the server,
  so hyperband does not count them and a run whose metric ends as NaN is recorded
  as failed in Optuna ("no finite value"), as Optuna treats a NaN objective;
* keys that are numbers become strings, as ``json.dumps`` makes them.

Anything else (an image, a model, a NUL character in text, an integer beyond 64
bits) raises :class:`~tunepilot.exceptions.LogValueError` naming the key, before
any of the row is stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tunepilot.exceptions import LogValueError

MAX_INT = 2**63 - 1
MAX_DEPTH = 32
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def to_json(values: Mapping[Any, Any], where: str) -> dict[str, Any]:
    """``values`` as JSON the server stores; ``where`` ("log()", "summary") is named in errors.

    Raises:
        LogValueError: a value or key cannot be stored; the message names it.
    """
    return _mapping(values, where, 0)


def _mapping(values: Mapping[Any, Any], path: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(key, bool) or not isinstance(key, (str, int, float)):
            raise LogValueError(f"{path}: key {key!r} is a {type(key).__name__}; use text keys")
        name = str(key)
        out[name] = _value(value, f"{path}[{name!r}]", depth + 1)
    return out


def _value(value: Any, path: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise LogValueError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise LogValueError(f"{path}: {value} is beyond ±2**63-1; log it as a float or text")
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return _NON_FINITE.get(value, float(value))
    if isinstance(value, str):
        if "\x00" in value:
            raise LogValueError(f"{path}: text contains a NUL character")
        return str(value)
    if isinstance(value, Mapping):
        return _mapping(value, path, depth)
    if isinstance(value, (list, tuple)):
        return [_value(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    # numpy and torch (and jax) scalars and arrays, without importing them.
    shape = getattr(value, "shape", None)
    if shape is not None and tuple(shape) == () and callable(getattr(value, "item", None)):
        return _value(value.item(), path, depth)
    if callable(getattr(value, "tolist", None)):
        return _value(value.tolist(), path, depth)
    raise LogValueError(
        f"{path}: a {type(value).__module__}.{type(value).__qualname__} cannot be logged; "
        "log numbers, text, booleans, or lists and dicts of them"
    )
