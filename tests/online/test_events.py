"""The Event model: what the collector accepts and the message it gives for what it refuses."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from tunepilot.online import Event

BASE: dict[str, Any] = {"app": "bot", "variant": "small", "event_id": "e-1", "timestamp": 1795329000.0}


def make(**fields: Any) -> Event:
    return Event(**{**BASE, **fields})


def test_a_full_event_round_trips_through_json() -> None:
    event = make(latency_ms=812.5, input_tokens=420, output_tokens=96, cost=0.0012, error=None,
                 quality=0.9, feedback=1, key="user-7",
                 attributes={"category": "hard", "prompt_length": 300, "ratio": 0.5, "vip": True})
    again = Event.model_validate_json(event.model_dump_json())
    assert again == event
    # Each attribute keeps its JSON type: a bool is not turned into 1, an int not into 1.0.
    assert [type(v) for v in again.attributes.values()] == [str, int, float, bool]


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-22T06:30:00Z", 1795329000.0),
    ("2026-11-22T07:30:00+01:00", 1795329000.0),
    ("2026-11-22T06:30:00.250000+00:00", 1795329000.25),
])
def test_iso_8601_timestamps_become_unix_seconds(text: str, expected: float) -> None:
    assert make(timestamp=text).timestamp == expected
    assert Event.model_validate_json(make(timestamp=text).model_dump_json()).timestamp == expected


@pytest.mark.parametrize(("fields", "message"), [
    ({"timestamp": "2026-11-22T06:30:00"}, "has no time zone: add 'Z'"),
    ({"timestamp": "yesterday"}, "neither unix seconds nor ISO 8601"),
    ({"timestamp": math.nan}, "timestamp must be a finite number"),
    ({"timestamp": 1795329000000}, "milliseconds sent as seconds"),
    ({"timestamp": True}, "not a boolean"),
    ({"latency_ms": math.inf}, "finite number"),
    ({"latency_ms": -1.0}, "greater than or equal to 0"),
    ({"cost": math.nan}, "finite number"),
    ({"cost": -0.01}, "greater than or equal to 0"),
    ({"input_tokens": -3}, "greater than or equal to 0"),
    ({"input_tokens": 1.5}, "valid integer"),
    ({"output_tokens": True}, "valid integer"),
    ({"quality": 1.2}, "less than or equal to 1"),
    ({"quality": math.nan}, "finite number"),
    ({"feedback": 2}, "less than or equal to 1"),
    ({"attributes": {"x": math.inf}}, "attribute 'x' must be a finite number"),
    ({"attributes": {"x": [1, 2]}}, "attribute 'x' must be a string, integer, finite number or boolean"),
    ({"app": ""}, "at least 1 character"),
    ({"event_id": "x" * 201}, "at most 200 characters"),
    ({"colour": "red"}, "Extra inputs are not permitted"),
])
def test_bad_fields_are_refused_with_a_message_that_names_the_fix(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        make(**fields)


def test_missing_required_fields_are_named() -> None:
    with pytest.raises(ValidationError) as info:
        Event.model_validate({"app": "bot"})
    assert {e["loc"][0] for e in info.value.errors()} == {"variant", "event_id", "timestamp"}


def test_events_are_frozen() -> None:
    event = make()
    with pytest.raises(ValidationError):
        event.quality = 0.5  # type: ignore[misc]
