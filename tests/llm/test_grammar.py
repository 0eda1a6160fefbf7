"""The grammar of a response schema: numbers the local model cannot write out of range.

Strings are checked with llama.cpp's own grammar engine (the one generation runs
under), fed one character at a time: a string is accepted when every character is
allowed where it comes and the grammar may end after the last one.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import math
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from tunepilot.llm import LocalBackend
from tunepilot.llm._grammar import schema_grammar

Accepts = Callable[[str, str], bool]

RESPONSE = {
    "type": "object",
    "properties": {
        "configurations": {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {
                "type": "object",
                "properties": {
                    "lr": {"type": "number", "minimum": 1e-5, "maximum": 0.1},
                    "units": {"type": "integer", "minimum": 50, "maximum": 200},
                    "fraction": {"type": "number", "minimum": 0.01, "maximum": 0.99},
                    "kind": {"enum": ["rbf", None, True, 1.5]},
                },
                "required": ["lr", "units", "fraction", "kind"],
                "additionalProperties": False,
            },
        },
        "rationale": {"type": "string", "maxLength": 40},
    },
    "required": ["configurations", "rationale"],
    "additionalProperties": False,
}
GOOD = ('{"configurations": [{"lr": 3e-4, "units": 120, "fraction": 0.25, "kind": "rbf"}, '
        '{"lr": 0.001, "units": 200, "fraction": 0.9, "kind": null}], "rationale": "a b"}')


@pytest.fixture(scope="module")
def accepts() -> Iterator[Accepts]:
    llama_cpp = pytest.importorskip("llama_cpp")
    # The embedded model as the backend loads it (once per process): its vocabulary.
    vocab_model, _ = LocalBackend()._model()
    vocab = vocab_model._model.vocab
    eos = vocab_model.token_eos()
    tokens: dict[str, int] = {}

    def token(char: str) -> int:
        if char not in tokens:
            ids = vocab_model.tokenize(char.encode(), add_bos=False, special=False)
            assert len(ids) == 1, f"{char!r} is not one token"
            tokens[char] = ids[0]
        return tokens[char]

    def allowed(sampler: Any, token_id: int) -> bool:
        data = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token_id, 0.0, 0.0))
        candidates = llama_cpp.llama_token_data_array(data, 1, -1, False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
        return math.isfinite(data[0].logit)

    def check(grammar: str, text: str) -> bool:
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
        assert sampler, f"llama.cpp could not parse the grammar:\n{grammar}"
        try:
            for char in text:
                if not allowed(sampler, token(char)):
                    return False
                llama_cpp.llama_sampler_accept(sampler, token(char))
            return allowed(sampler, eos)
        finally:
            llama_cpp.llama_sampler_free(sampler)

    yield check


def _decimals(places: int, wholes: range) -> Iterator[str]:
    """Numbers written with up to ``places`` digits after the point, either sign."""
    for sign, whole in itertools.product(("", "-"), wholes):
        yield f"{sign}{whole}"
        for n in range(1, places + 1):
            for digits in ("0" * (n - 1) + "1", "5" * n, "9" * n, "0" * n, "1" + "0" * (n - 1)):
                yield f"{sign}{whole}.{digits}"


def _exponents(low: int, high: int) -> Iterator[str]:
    for mantissa in ("1", "1.5", "3.16", "9.99", "9.9", "5", "0.5", "10"):
        for sign, exponent in itertools.product(("", "-"), range(low, high + 1)):
            yield f"{sign}{mantissa}e{exponent}"


@pytest.mark.local_llm
@pytest.mark.parametrize(
    ("kind", "low", "high", "inside", "candidates"),
    [
        ("integer", 50, 200, ["50", "99", "100", "150", "199", "200"],
         [str(i) for i in range(-5, 260)] + ["050", "1e2", "100.0", "1000"]),
        ("integer", -12, 7, ["-12", "-10", "-1", "0", "7"], [str(i) for i in range(-30, 30)]),
        ("integer", 1, 1024, ["1", "9", "10", "99", "100", "1000", "1024"],
         ["0", "1025", "1099", "2000", "9999", "10240"]),
        ("number", 0.01, 0.99, ["0.011", "0.5", "0.25", "0.125", "0.989", "0.1", "3e-1",
                                "1.5e-2"],
         [*_decimals(4, range(3)), *_exponents(-4, 1), ".5"]),
        ("number", 0.0, 1.0, ["0.01", "0.5", "0.25", "0.99"], [*_decimals(4, range(3))]),
        ("number", -5.0, 10.0, ["-4.9", "-4.5", "-0.5", "0", "2.5", "9.9"],
         [*_decimals(3, range(12))]),
        ("number", 1e-5, 0.1, ["0.00002", "0.0003", "0.001", "0.05", "0.09", "1.01e-5", "3e-4",
                               "3.16e-3", "9.9e-2"],
         [*_decimals(7, range(2)), *_exponents(-7, 1)]),
        ("number", 1e-4, 1e-3, ["0.0002", "0.0003", "0.00031", "0.0009", "2e-4", "3e-4",
                                "9.99e-4"],
         [*_decimals(7, range(1)), *_exponents(-6, -2)]),
        ("number", 1.0, 1000.0, ["1.1", "30", "31.6", "999.9", "3e1", "9.99e2"],
         [*_decimals(2, range(0, 1200, 37)), *_exponents(-1, 4), "1000.1"]),
        ("number", 0.1, 0.9, ["0.11", "0.5", "0.89", "0.333"], [*_decimals(4, range(2)), "1e-1"]),
    ],
)
def test_a_bounded_number_cannot_reach_past_its_range(
    accepts: Accepts, kind: str, low: float, high: float, inside: list[str],
    candidates: list[str],
) -> None:
    grammar = schema_grammar({"type": kind, "minimum": low, "maximum": high})
    assert grammar is not None
    assert [t for t in inside if not accepts(grammar, t)] == []
    lo, hi = Decimal(repr(low)), Decimal(repr(high))
    # Integers take their bounds; other numbers stop short of them.
    outside = [t for t in candidates
               if not (lo <= Decimal(t) <= hi if kind == "integer" else lo < Decimal(t) < hi)]
    assert outside, "the candidates must include values out of range"
    assert [t for t in outside if accepts(grammar, t)] == []
    if kind == "integer":  # whole numbers only, as JSON writes them
        assert not any(accepts(grammar, t) for t in candidates if not t.lstrip("-").isdigit()
                       or t.lstrip("-").startswith("0") and t.lstrip("-") != "0")


@pytest.mark.local_llm
def test_random_ranges_admit_no_number_outside_them(accepts: Accepts) -> None:
    rng = random.Random(7)
    for _ in range(40):
        scale = 10.0 ** rng.randint(-6, 3)
        low = round(rng.uniform(-1, 1) * scale, rng.randint(0, 9))
        high = round(low + rng.uniform(0, 3) * scale * rng.choice([0.01, 1, 100]), rng.randint(0, 9))
        low, high = min(low, high), max(low, high)
        grammar = schema_grammar({"type": "number", "minimum": low, "maximum": high})
        assert grammar is not None
        near = [low, high, low - scale * 1e-3, high + scale * 1e-3, rng.uniform(low, high)]
        texts = [f"{v:.{d}f}" for v in near for d in range(9)]
        texts += [f"{v:.{d}e}".replace("e-0", "e-").replace("e+0", "e") for v in near for d in (0, 1, 2)]
        lo, hi = Decimal(repr(low)), Decimal(repr(high))
        assert [t for t in texts if not lo <= Decimal(t) <= hi and accepts(grammar, t)] == [], (
            low, high)
        if high - low >= 1e-6:  # room for numbers strictly between them: not the bounds
            assert not any(accepts(grammar, json.dumps(b + 0.0)) for b in (low, high)), (low, high)


@pytest.mark.local_llm
def test_a_range_too_narrow_for_the_digits_allowed_takes_its_bounds(accepts: Accepts) -> None:
    for low, high in [(0.5, 0.5), (0.123456789, 0.1234567891), (-3e-12, -2e-12)]:
        grammar = schema_grammar({"type": "number", "minimum": low, "maximum": high})
        assert grammar is not None
        written = [f"{Decimal(repr(b)).normalize():f}" for b in (low, high)]
        assert all(accepts(grammar, t) for t in written), (low, high)
        assert not accepts(grammar, "0"), (low, high)


@pytest.mark.local_llm
def test_random_integer_ranges_admit_exactly_their_integers(accepts: Accepts) -> None:
    rng = random.Random(7)
    for _ in range(30):
        low = rng.randint(-10**rng.randint(0, 6), 10**rng.randint(0, 6))
        high = low + rng.randint(0, 10**rng.randint(0, 6))
        grammar = schema_grammar({"type": "integer", "minimum": low, "maximum": high})
        assert grammar is not None
        for value in {low - 1, low, low + 1, high - 1, high, high + 1, rng.randint(low, high),
                      10 ** len(str(abs(high))), -(10 ** len(str(abs(low))))}:
            assert accepts(grammar, str(value)) == (low <= value <= high), (low, high, value)


@pytest.mark.local_llm
def test_a_response_in_range_is_accepted_and_one_value_outside_is_not(accepts: Accepts) -> None:
    grammar = schema_grammar(RESPONSE)
    assert grammar is not None
    assert accepts(grammar, GOOD)
    for before, after in [("0.25", "25"), ("0.9", "1.2"), ("0.9", "0.99"), ("3e-4", "3e-6"),
                          ("0.001", "0.5"),
                          ("120", "49"), ("200", "201"), ('"rbf"', '"poly"')]:
        assert not accepts(grammar, GOOD.replace(before, after, 1)), after
    # Members come in the schema's order, and no other member may be added.
    assert not accepts(grammar, GOOD.replace('"lr": 3e-4, "units": 120', '"units": 120, "lr": 3e-4'))
    assert not accepts(grammar, GOOD.replace('"kind": null', '"kind": null, "x": 1'))


@pytest.mark.local_llm
def test_strings_keep_to_json_and_their_length(accepts: Accepts) -> None:
    grammar = schema_grammar(RESPONSE)
    assert grammar is not None
    assert accepts(grammar, GOOD.replace('"a b"', '"say \\"why\\"\\n"'))
    assert not accepts(grammar, GOOD.replace('"a b"', '"a\nb"'))  # a raw newline
    assert accepts(grammar, GOOD.replace('"a b"', '"' + "x" * 40 + '"'))
    assert not accepts(grammar, GOOD.replace('"a b"', '"' + "x" * 41 + '"'))


@pytest.mark.local_llm
def test_arrays_keep_their_length_and_open_numbers_any_value(accepts: Accepts) -> None:
    grammar = schema_grammar({"type": "array", "items": {"type": "number"}, "minItems": 1,
                              "maxItems": 3})
    assert grammar is not None
    assert accepts(grammar, "[-1.5e+30]")
    assert accepts(grammar, "[1, 2, 3]")
    assert not accepts(grammar, "[]")
    assert not accepts(grammar, "[1, 2, 3, 4]")


@pytest.mark.parametrize(
    "schema",
    [
        {"anyOf": [{"type": "number"}, {"type": "null"}]},
        {"type": ["number", "null"]},
        {"$ref": "#/definitions/x"},
        {"type": "string", "pattern": "^a+$"},
        {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.1},
        {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        {"type": "object", "properties": {"a": {"type": "number"}}},  # no member required
        {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"],
         "additionalProperties": True},
        {"type": "integer", "minimum": 0.5, "maximum": 0.7},  # no integer in range
        {"type": "number", "minimum": 2, "maximum": 1},
        {"type": "number", "minimum": 0, "maximum": float("inf")},
    ],
)
def test_a_schema_outside_the_subset_has_no_grammar_of_ours(schema: dict[str, Any]) -> None:
    # The local backend then falls back to llama-cpp-python's converter.
    assert schema_grammar(schema) is None


def test_every_bounded_number_of_a_response_has_its_own_rule() -> None:
    grammar = schema_grammar(RESPONSE)
    assert grammar is not None
    rules = dict(line.split(" ::= ", 1) for line in grammar.splitlines())
    assert rules["configurations-item-units"] == (
        '([5-9] [0-9] | "1" ([0-9] [0-9]) | "2" ("00")) space')
    assert set(rules) == {
        "root", "configurations", "configurations-item", "configurations-item-lr",
        "configurations-item-units", "configurations-item-fraction", "configurations-item-kind",
        "rationale", "space", "char"}
