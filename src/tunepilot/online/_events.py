"""The event: one LLM call (or one late quality/feedback report) as the collector accepts it."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

__all__ = ["Event", "parse_timestamp"]

# Unix seconds of 1970-01-01 .. 9999-12-31; anything outside is a unit mistake
# (milliseconds or nanoseconds sent as seconds) and is refused rather than stored.
_MAX_TIMESTAMP = 253402300799.0


def parse_timestamp(value: Any) -> Any:
    """Turn an ISO 8601 string into unix seconds; leave numbers for the float check.

    Args:
        value: Unix seconds (int or float) or an ISO 8601 string with a time zone,
            such as ``"2026-11-22T06:30:00Z"`` or ``"2026-11-22T07:30:00+01:00"``.

    Returns:
        Unix seconds as a float for strings; other values unchanged.

    Raises:
        ValueError: The string is not ISO 8601 or has no time zone.

    Example:
        >>> parse_timestamp("1970-01-01T00:01:00Z")
        60.0
    """
    if isinstance(value, bool):
        raise ValueError("timestamp must be unix seconds or an ISO 8601 string, not a boolean")
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"timestamp {value!r} is neither unix seconds nor ISO 8601 (e.g. '2026-11-22T06:30:00Z')"
            ) from None
        if moment.tzinfo is None:
            # A naive time is ambiguous by hours; guessing UTC would silently shift windows.
            raise ValueError(f"timestamp {value!r} has no time zone: add 'Z' or an offset such as '+00:00'")
        return moment.timestamp()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"timestamp must be a finite number, got {value!r}")
    if isinstance(value, (int, float)) and not (0.0 <= value <= _MAX_TIMESTAMP):
        raise ValueError(
            f"timestamp {value!r} is outside 1970..9999 in unix seconds (milliseconds sent as seconds?)"
        )
    return value


_Id = Annotated[str, Field(min_length=1, max_length=200)]
_FiniteNonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
_Count = Annotated[int, Field(ge=0, strict=True)]
_FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]
_AttributeValue = Union[StrictBool, StrictInt, _FiniteFloat, Annotated[StrictStr, Field(max_length=1000)]]
_AttributeKey = Annotated[str, Field(min_length=1, max_length=200)]


class Event(BaseModel):
    """One observation of one variant of one application.

    A call event carries latency, tokens, cost and error; quality (in [0, 1]) and user
    feedback (-1, 0 or +1) may come with it, or later as a separate event with its own
    ``event_id`` and ``attributes["feedback_for"]`` naming the original event. ``cost``
    left out is computed from the variant's model prices. The pair (``app``,
    ``event_id``) identifies an event: the collector counts a repeated pair once.

    Example:
        >>> e = Event(app="support-bot", variant="mini-t0.2", event_id="req-1",
        ...           timestamp="2026-11-22T06:30:00Z", latency_ms=812.5,
        ...           input_tokens=420, output_tokens=96, quality=0.9)
        >>> e.timestamp
        1795329000.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    app: _Id
    variant: _Id
    event_id: _Id
    timestamp: Annotated[float, BeforeValidator(parse_timestamp), Field(allow_inf_nan=False)]
    latency_ms: _FiniteNonNegative | None = None
    input_tokens: _Count | None = None
    output_tokens: _Count | None = None
    cost: _FiniteNonNegative | None = None
    error: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    quality: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None
    feedback: Annotated[int, Field(ge=-1, le=1, strict=True)] | None = None
    attributes: Annotated[dict[_AttributeKey, _AttributeValue], Field(max_length=64)] = {}
    key: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @field_validator("attributes", mode="before")
    @classmethod
    def _check_attributes(cls, value: Any) -> Any:
        # The union below would report "should be a valid boolean" for a list; say what fits instead.
        if isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, float) and not math.isfinite(item):
                    raise ValueError(f"attribute {name!r} must be a finite number, got {item!r}")
                if not isinstance(item, (str, int, float, bool)):
                    raise ValueError(
                        f"attribute {name!r} must be a string, integer, finite number or boolean, "
                        f"got {type(item).__name__}"
                    )
        return value
