"""parse_json on untrusted model output, Completion.json and prompt_hash."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunepilot.exceptions import LLMOutputError
from tunepilot.llm._base import MAX_RESPONSE_CHARS, Completion, Message, parse_json, prompt_hash
from tunepilot.space import FloatParam


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"lr": 0.01, "layers": [1, 2], "opt": null, "ok": true}',
         {"lr": 0.01, "layers": [1, 2], "opt": None, "ok": True}),
        ("  \n[1, 2.5, \"x\"]\n ", [1, 2.5, "x"]),
        ('"text"', "text"),
        ("1e-3", 0.001),
        ('```json\n{"lr": 0.01}\n```', {"lr": 0.01}),
        ('```JSON\n{"lr": 0.01}\n```', {"lr": 0.01}),
        ('```\n[{"a": 1}]\n```', [{"a": 1}]),
        ('\n```json\n{"a": 1}\n```\n', {"a": 1}),
        ('```{"a": 1}```', {"a": 1}),
        ('{"code": "```"}', {"code": "```"}),
    ],
)
def test_valid_json_with_or_without_a_code_fence(text: str, expected: Any) -> None:
    assert parse_json(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        '{"lr": NaN}',
        "[Infinity]",
        '{"lr": -Infinity}',
        '```json\n{"lr": NaN}\n```',
    ],
)
def test_nan_and_infinity_literals_are_rejected(text: str) -> None:
    with pytest.raises(LLMOutputError, match=r"^answer is not valid JSON: (NaN|Infinity|-Infinity) is not valid JSON"):
        parse_json(text)


def test_a_number_beyond_float_range_stays_finite_for_the_space_to_clamp() -> None:
    # json.loads would read these as inf and -inf, which no parameter can repair.
    data = parse_json('{"gamma": 1e400, "C": -2.5E+999, "tiny": 1e-400, "lr": 0.5}')
    assert data == {"gamma": sys.float_info.max, "C": -sys.float_info.max, "tiny": 0.0,
                    "lr": 0.5}
    assert FloatParam("gamma", 1e-3, 1e3, log=True).repair(data["gamma"]) == (1e3, ["clamped"])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        '{"lr": 0.01, "layers": [1, 2',
        '{"lr": 0.01}}',
        "{'lr': 0.01}",
        '{"lr": 0.01,}',
        'Sure! Here it is: {"lr": 0.01}',
        '```json\n{"lr": 0.01}',
        "```",
        "``````",
        "1" * 5000,
        "-" + "9" * 5000,
        '{"lr": ' + "1" * 5000 + "}",
    ],
)
def test_invalid_json_is_an_output_error(text: str) -> None:
    with pytest.raises(LLMOutputError, match=r"^answer is not valid JSON") as info:
        parse_json(text)
    assert info.value.text == text[:200]
    assert not info.value.retryable


@pytest.mark.parametrize("text", ["[" * 100_000, "[" * 50_000 + "]" * 50_000, '{"a":' * 40_000])
def test_deep_nesting_is_an_output_error(text: str) -> None:
    with pytest.raises(LLMOutputError, match=r"^answer is (nested too deeply|not valid JSON)"):
        parse_json(text)


def test_over_long_answers_are_refused_before_parsing() -> None:
    at_limit = '"' + "a" * (MAX_RESPONSE_CHARS - 2) + '"'
    assert len(parse_json(at_limit)) == MAX_RESPONSE_CHARS - 2

    too_long = '"' + "a" * (MAX_RESPONSE_CHARS - 1) + '"'
    with pytest.raises(
        LLMOutputError, match=rf"^answer is {MAX_RESPONSE_CHARS + 1} characters, more than the "
        rf"{MAX_RESPONSE_CHARS} allowed$",
    ) as info:
        parse_json(too_long)
    assert len(info.value.text) == 200


@pytest.mark.parametrize("value", [None, b'{"a": 1}', {"a": 1}, 42])
def test_non_text_is_an_output_error(value: Any) -> None:
    with pytest.raises(LLMOutputError, match=r"^expected text, got "):
        parse_json(value)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(
    st.text(max_size=200),
    st.text(alphabet='[]{}":,0123456789.eE+-nultrfaseNIiy` \n', max_size=200),
))
def test_parse_json_raises_nothing_but_output_errors(text: str) -> None:
    try:
        parse_json(text)
    except LLMOutputError:
        pass


def test_completion_json_parses_its_text_strictly() -> None:
    assert Completion(text='```json\n{"lr": 0.1}\n```').json() == {"lr": 0.1}
    with pytest.raises(LLMOutputError):
        Completion(text='{"lr": NaN}').json()


# --- prompt_hash --------------------------------------------------------------------------

MESSAGES: list[Message] = [
    {"role": "system", "content": "You tune hyperparameters."},
    {"role": "user", "content": "Propose a learning rate."},
]
SCHEMA: dict[str, Any] = {"type": "object", "properties": {"lr": {"type": "number"}}}


def test_prompt_hash_ignores_dict_key_order() -> None:
    reordered_messages: list[Message] = [{"content": m["content"], "role": m["role"]} for m in MESSAGES]
    reordered_schema = {"properties": {"lr": {"type": "number"}}, "type": "object"}
    assert prompt_hash(MESSAGES, SCHEMA, temperature=0.7, seed=1) == prompt_hash(
        reordered_messages, reordered_schema, seed=1, temperature=0.7
    )


def test_prompt_hash_is_a_sha256_hex_digest() -> None:
    digest = prompt_hash(MESSAGES, SCHEMA, model="m")
    assert len(digest) == 64
    int(digest, 16)


@pytest.mark.parametrize(
    "changed",
    [
        {"options": {"temperature": 0.2, "seed": 1, "model": "m"}},
        {"options": {"temperature": 0.7, "seed": 2, "model": "m"}},
        {"options": {"temperature": 0.7, "seed": None, "model": "m"}},
        {"options": {"temperature": 0.7, "seed": 1, "model": "other"}},
        {"options": {"temperature": 0.7, "seed": 1}},
        {"messages": MESSAGES[1:]},
        {"messages": MESSAGES[::-1]},
        {"messages": [MESSAGES[0], {"role": "user", "content": "Propose a batch size."}]},
        {"schema": {"type": "object"}},
    ],
)
def test_prompt_hash_changes_with_anything_that_changes_the_answer(changed: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "messages": MESSAGES, "schema": SCHEMA, "options": {"temperature": 0.7, "seed": 1, "model": "m"},
    }
    other = {**base, **changed}
    assert prompt_hash(base["messages"], base["schema"], **base["options"]) != prompt_hash(
        other["messages"], other["schema"], **other["options"]
    )
