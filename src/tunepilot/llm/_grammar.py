"""A GBNF grammar for the JSON schemas of structured answers, with numeric ranges enforced.

llama-cpp-python's converter ignores ``minimum`` and ``maximum``, so a model under its
grammar may write any number: a small one answers ``30`` for a fraction or ``0.999``
for a learning rate on a range ending at 0.1. This converter covers the subset of JSON
schema that structured answers use (objects with properties, arrays, strings, numbers,
integers, booleans, null, ``enum`` and ``const``) and writes each bounded number as
digits that cannot leave its range:

- an integer in ``[minimum, maximum]`` by its digits, e.g. ``50..200`` as
  ``[5-9] [0-9] | "1" [0-9] [0-9] | "200"``;
- a number strictly between ``minimum`` and ``maximum`` as a fixed-point decimal whose
  digits are bounded (at most :data:`MAX_PLACES` after the point, enough to tell the
  bounds apart and to cut the range into a few hundred steps);
- where a positive range spans a factor of :data:`EXPONENT_SPAN` or more, also in
  exponent notation (``3e-4``, ``1.5e-2``: a mantissa in [1, 10) with two decimals, the
  exponent bounded), so a value on a log scale can be written as one.

A number's bounds are left out because a small model that means a value beyond one
stops on it: asked for a fraction in [0, 1] it writes ``1`` where it meant ``10``, and
with the bounds allowed SmolLM2-135M put most values of the synthetic suite's answers
on them (9.8 a call). The number one step inside a bound is the same advice. A bound
that cannot be written with the digits allowed is rounded inwards, so every number the
grammar admits lies in range. A schema outside the subset gets ``None``, and the
caller falls back to a converter that does not bound numbers.
"""

from __future__ import annotations

import json
import math
import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

#: Most digits after the decimal point of a fixed-point number.
MAX_PLACES = 8
#: A positive range whose maximum is this many times its minimum or more may also be
#: written in exponent notation.
EXPONENT_SPAN = 10
#: Digits after the point of an exponent-notation mantissa (``3.16e-4``).
MANTISSA_PLACES = 2
#: A bound of this magnitude or more is not spelled out digit by digit: such a schema
#: is outside the subset.
_LARGEST = Decimal(10) ** 15

_SPACE = 'space ::= " "?'
# The characters JSON allows unescaped in a string, and its escapes.
_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})'
_NUMBER = ('"-"? ([0-9] | [1-9] [0-9]{1,15}) ("." [0-9]{1,16})? '
           '([eE] [-+]? [0-9]{1,3})?')
_INTEGER = '"-"? ([0-9] | [1-9] [0-9]{1,15})'
_IGNORED = frozenset({"description", "title", "default", "examples", "$schema", "$comment"})
_KEYWORDS: dict[str, frozenset[str]] = {
    "object": frozenset({"type", "properties", "required", "additionalProperties"}),
    "array": frozenset({"type", "items", "minItems", "maxItems"}),
    "string": frozenset({"type", "minLength", "maxLength"}),
    "number": frozenset({"type", "minimum", "maximum"}),
    "integer": frozenset({"type", "minimum", "maximum"}),
    "boolean": frozenset({"type"}),
    "null": frozenset({"type"}),
}


class _Unsupported(Exception):
    """The schema uses something outside the subset this converter covers."""


def schema_grammar(schema: dict[str, Any]) -> str | None:
    """The GBNF grammar of ``schema``, or ``None`` when it is outside the covered subset.

    Example:
        .. code-block:: python

            grammar = schema_grammar({"type": "integer", "minimum": 1, "maximum": 12})
            # root ::= ([1-9] | "1" ([0-2])) space, then the shared rules
    """
    rules: dict[str, str] = {}
    try:
        rules["root"] = _visit(schema, "root", rules)
    except _Unsupported:
        return None
    body = [f"{name} ::= {rule}" for name, rule in rules.items()]
    return "\n".join([*body, _SPACE, _CHAR]) + "\n"


def _visit(schema: Any, name: str, rules: dict[str, str]) -> str:
    """The rule body (an expression) for ``schema``; nested values get rules of their own."""
    if not isinstance(schema, dict):
        raise _Unsupported
    keys = set(schema) - _IGNORED
    if "enum" in schema or "const" in schema:
        if keys - {"type"} not in ({"enum"}, {"const"}):
            raise _Unsupported
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        if not isinstance(values, list) or not values:
            raise _Unsupported
        return f"({' | '.join(_literal(json.dumps(v, ensure_ascii=False)) for v in values)}) space"
    kind = schema.get("type")
    if not isinstance(kind, str) or kind not in _KEYWORDS or not keys <= _KEYWORDS[kind]:
        raise _Unsupported
    if kind == "object":
        return _object(schema, name, rules)
    if kind == "array":
        item = _child(schema.get("items"), f"{name}-item", rules)
        low, high = _count(schema, "minItems", 0) or 0, _count(schema, "maxItems", None)
        return f'"[" space {_repeat(item, low, high)} "]" space'
    if kind == "string":
        low, high = _count(schema, "minLength", 0) or 0, _count(schema, "maxLength", None)
        chars = f"char{{{low},{'' if high is None else high}}}"
        return f'"\\"" {chars} "\\"" space'
    if kind in ("number", "integer"):
        if "minimum" not in schema or "maximum" not in schema:  # bounded on both sides only
            return f"({_INTEGER if kind == 'integer' else _NUMBER}) space"
        lower, upper = _bound(schema["minimum"]), _bound(schema["maximum"])
        if kind == "integer":
            first = int(lower.to_integral_value(ROUND_CEILING))
            last = int(upper.to_integral_value(ROUND_FLOOR))
            if first > last:
                raise _Unsupported
            return f"({integer_range(first, last)}) space"
        if lower > upper:
            raise _Unsupported
        return f"({number_range(lower, upper)}) space"
    return f'"{kind}" space' if kind == "null" else '("true" | "false") space'


def _object(schema: dict[str, Any], name: str, rules: dict[str, str]) -> str:
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    if not isinstance(properties, dict) or not isinstance(required, list):
        raise _Unsupported
    if schema.get("additionalProperties", False) is not False or set(required) - set(properties):
        raise _Unsupported
    if not properties:
        return '"{" space "}" space'
    if not required:
        raise _Unsupported  # a first member that may be absent: not needed yet
    prefix = "" if name == "root" else f"{name}-"

    def member(key: str) -> str:
        value = _child(properties[key], prefix + _rule_name(key), rules)
        return f'{_literal(json.dumps(key, ensure_ascii=False))} space ":" space {value}'

    # Required members first, in the schema's order; each other one may follow.
    listed = ' "," space '.join(member(k) for k in required)
    listed += "".join(f' ("," space {member(k)})?' for k in properties if k not in required)
    return f'"{{" space {listed} "}}" space'


def _child(schema: Any, name: str, rules: dict[str, str]) -> str:
    """A rule for a nested schema; returns its name."""
    while name in rules:
        name += "-x"
    rules[name] = ""  # reserve the name before visiting what lies below it
    rules[name] = _visit(schema, name, rules)
    return name


def _repeat(item: str, low: int, high: int | None) -> str:
    """``low`` to ``high`` (``None``: any number of) items, separated by commas."""
    if high is not None and high < low:
        raise _Unsupported
    if high == 0:
        return ""
    more = f'("," space {item}){{{max(low - 1, 0)},{"" if high is None else high - 1}}}'
    return f"{item} {more}" if low >= 1 else f"({item} {more})?"


def _count(schema: dict[str, Any], key: str, default: int | None) -> int | None:
    value = schema.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Unsupported
    return value


def _bound(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Unsupported
    if isinstance(value, float) and not math.isfinite(value):
        raise _Unsupported
    # repr, not the binary value: 0.1 is the bound the schema's author wrote.
    bound = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if abs(bound) >= _LARGEST:
        raise _Unsupported
    return bound


def _rule_name(key: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", key).strip("-") or "p"


def _literal(text: str) -> str:
    """A GBNF string literal matching ``text`` exactly."""
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\x{ord(char):02X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def integer_range(low: int, high: int) -> str:
    """A GBNF expression for the integers in ``[low, high]``, written as JSON writes them."""
    alternatives = []
    if low < 0:
        alternatives.append(f'"-" ({_naturals(max(1, -high), -low)})')
    if high >= 0:
        alternatives.append(_naturals(max(0, low), high))
    return " | ".join(alternatives)


def _naturals(low: int, high: int) -> str:
    """Integers ``0 <= low <= high``, without leading zeros: one branch per length."""
    branches = []
    for length in range(len(str(low)), len(str(high)) + 1):
        first = max(low, 10 ** (length - 1) if length > 1 else 0)
        last = min(high, 10**length - 1)
        branches.append(_same_length(str(first), str(last)))
    return " | ".join(branches)


def _same_length(low: str, high: str) -> str:
    """Digit strings of one length between ``low`` and ``high`` (leading zeros allowed)."""
    n = len(low)
    if low == high:
        return f'"{low}"'
    if n == 1:
        return f"[{low}-{high}]"
    if low[1:] == "0" * (n - 1) and high[1:] == "9" * (n - 1):
        return f"{_digit(low[0], high[0])} {_any(n - 1, n - 1)}"
    if low[0] == high[0]:
        return f'"{low[0]}" ({_same_length(low[1:], high[1:])})'
    alternatives = [f'"{low[0]}" ({_same_length(low[1:], "9" * (n - 1))})']
    if int(low[0]) + 1 <= int(high[0]) - 1:
        alternatives.append(f"{_digit(str(int(low[0]) + 1), str(int(high[0]) - 1))} {_any(n - 1, n - 1)}")
    alternatives.append(f'"{high[0]}" ({_same_length("0" * (n - 1), high[1:])})')
    return " | ".join(alternatives)


def _any(low: int, high: int) -> str:
    """``low`` to ``high`` digits."""
    if high == 1:
        return "[0-9]" if low == 1 else "[0-9]?"
    return f"[0-9]{{{low}}}" if low == high else f"[0-9]{{{low},{high}}}"


def _digit(low: str, high: str) -> str:
    return f'"{low}"' if low == high else f"[{low}-{high}]"


def number_range(low: Decimal, high: Decimal) -> str:
    """A GBNF expression for numbers strictly between ``low`` and ``high``, with bounded
    digits (the bounds themselves where nothing between them can be written).

    Fixed-point decimals always; exponent notation as well where ``0 < low`` and
    ``high >= EXPONENT_SPAN * low``.
    """
    alternatives = []
    fixed = _fixed_point(low, high, _places(low, high))
    if fixed:
        alternatives.append(fixed)
    if low > 0 and high >= EXPONENT_SPAN * low:
        exponent = _exponent(low, high)
        if exponent:
            alternatives.append(exponent)
    if not alternatives:  # a range too narrow for the digits allowed: its bounds, as written
        alternatives.append(" | ".join(dict.fromkeys(_literal(_plain(b)) for b in (low, high))))
    return " | ".join(alternatives)


def _places(low: Decimal, high: Decimal) -> int:
    """Decimals for a fixed-point number: enough to write the bounds and tell a few
    hundred steps of the range apart, at most :data:`MAX_PLACES`."""
    written = max(0, -_exponent_of(low), -_exponent_of(high))
    span = high - low
    steps = 0 if span == 0 else max(0, 2 - span.adjusted())
    return min(max(written, steps, 1), MAX_PLACES)


def _exponent_of(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def _fixed_point(low: Decimal, high: Decimal, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)
    first = low.quantize(quantum, rounding=ROUND_CEILING)
    last = high.quantize(quantum, rounding=ROUND_FLOOR)
    first += quantum if first == low else 0
    last -= quantum if last == high else 0
    if first > last:
        return ""
    alternatives = []
    if first < 0:
        alternatives.append(f'"-" ({_unsigned(max(Decimal(0), -last), -first, places)})')
    if last >= 0:
        alternatives.append(_unsigned(max(Decimal(0), first), last, places))
    return " | ".join(alternatives)


def _unsigned(low: Decimal, high: Decimal, places: int) -> str:
    """Decimals in ``[low, high]`` (both >= 0, with at most ``places`` decimals)."""
    whole_low, fraction_low = _split(low, places)
    whole_high, fraction_high = _split(high, places)
    nines, zeros = "9" * places, "0" * places
    if whole_low == whole_high:
        return f'"{whole_low}" {_fraction(fraction_low, fraction_high)}'
    alternatives = [f'"{whole_low}" {_fraction(fraction_low, nines)}']
    if whole_low + 1 <= whole_high - 1:
        alternatives.append(f"({_naturals(whole_low + 1, whole_high - 1)}) {_fraction(zeros, nines)}")
    alternatives.append(f'"{whole_high}" {_fraction(zeros, fraction_high)}')
    return " | ".join(f"({a})" for a in alternatives)


def _split(value: Decimal, places: int) -> tuple[int, str]:
    whole = int(value)
    fraction = int((value - whole).scaleb(places))
    return whole, str(fraction).zfill(places)


def _fraction(low: str, high: str) -> str:
    """The part after the whole number: ``.`` and 1 to ``len(low)`` digits whose value,
    padded with zeros, lies in ``[low, high]``; absent when ``low`` is zero."""
    digits = f'"." ({_digits(low, high)})'
    return f"({digits})?" if set(low) == {"0"} else digits


def _digits(low: str, high: str) -> str:
    """1 to ``len(low)`` digits that, padded with zeros to ``len(low)``, lie in
    ``[low, high]`` (strings of one length, ``low <= high``)."""
    n = len(low)
    if low == "0" * n and high == "9" * n:
        return _any(1, n)
    if n == 1:
        return _digit(low, high)

    def rest(a: str, b: str) -> str:  # what may follow the first digit
        tail = f"({_digits(a, b)})"
        return f"{tail}?" if set(a) == {"0"} else tail

    if low[0] == high[0]:
        return f'"{low[0]}" {rest(low[1:], high[1:])}'
    alternatives = [f'"{low[0]}" {rest(low[1:], "9" * (n - 1))}']
    if int(low[0]) + 1 <= int(high[0]) - 1:
        alternatives.append(f"{_digit(str(int(low[0]) + 1), str(int(high[0]) - 1))} {_any(0, n - 1)}")
    alternatives.append(f'"{high[0]}" {rest("0" * (n - 1), high[1:])}')
    return " | ".join(f"({a})" for a in alternatives)


def _exponent(low: Decimal, high: Decimal) -> str:
    """``m e k`` strictly between ``low`` and ``high``, with ``1 <= m < 10`` (at most
    :data:`MANTISSA_PLACES` decimals); empty when no such number exists."""
    quantum = Decimal(1).scaleb(-MANTISSA_PLACES)
    top = 10 - quantum
    e_low, e_high = low.adjusted(), high.adjusted()
    m_low = low.scaleb(-e_low).quantize(quantum, rounding=ROUND_CEILING)
    m_low += quantum if m_low.scaleb(e_low) == low else 0
    if m_low > top:
        e_low, m_low = e_low + 1, Decimal(1)
    m_high = high.scaleb(-e_high).quantize(quantum, rounding=ROUND_FLOOR)
    m_high -= quantum if m_high.scaleb(e_high) == high else 0
    if m_high < 1:
        e_high, m_high = e_high - 1, top
    if e_low > e_high or e_low == e_high and m_low > m_high:
        return ""

    def mantissa(a: Decimal, b: Decimal) -> str:
        return f"({_unsigned(a, b, MANTISSA_PLACES)})"

    if e_low == e_high:
        return f'{mantissa(m_low, m_high)} "e{e_low}"'
    alternatives = [f'{mantissa(m_low, top)} "e{e_low}"']
    if e_low + 1 <= e_high - 1:
        alternatives.append(f'{mantissa(Decimal(1), top)} "e" ({integer_range(e_low + 1, e_high - 1)})')
    alternatives.append(f'{mantissa(Decimal(1), m_high)} "e{e_high}"')
    return " | ".join(f"({a})" for a in alternatives)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text
