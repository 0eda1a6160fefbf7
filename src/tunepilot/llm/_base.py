"""The one extension point for language models: the :class:`Backend` protocol."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tunepilot.exceptions import LLMOutputError

#: Answers longer than this are refused before parsing (a runaway or hostile body).
MAX_RESPONSE_CHARS = 200_000

Message = dict[str, str]
"""A chat message: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""


@dataclass(frozen=True)
class Usage:
    """Tokens and money spent on one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost_usd + other.cost_usd,
        )


@dataclass(frozen=True)
class Completion:
    """What a backend returns: the raw text of the answer and what it cost.

    ``text`` is untrusted data. :meth:`json` parses it strictly (no NaN or Infinity
    literals, bounded size and depth) and raises :class:`LLMOutputError` otherwise.
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    latency_s: float = 0.0
    cached: bool = False

    def json(self) -> Any:
        return parse_json(self.text)


@runtime_checkable
class Backend(Protocol):
    """A language model that answers chat messages with JSON.

    Implementations map their vendor's errors to :mod:`tunepilot.exceptions`
    (``LLMTimeoutError``, ``LLMRateLimitError``, ``LLMServerError`` are retried by
    :class:`~tunepilot.llm.RetryingBackend`; the rest are not).

    Example:
        .. code-block:: python

            class Echo:
                name = "echo"

                def complete(self, messages, *, schema, temperature=0.7, seed=None,
                             max_tokens=512):
                    return Completion(text='{"configurations": []}')
    """

    name: str

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any],
        temperature: float = 0.7,
        seed: int | None = None,
        max_tokens: int = 512,
    ) -> Completion:
        """Answer ``messages`` with text that should be JSON matching ``schema``."""
        ...


class BackendWrapper:
    """Base of backends that wrap another (retries, cache): the name is the inner one's."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    # Backend declares name as a plain attribute, so a read-only property would not
    # satisfy the protocol.
    @name.setter
    def name(self, value: str) -> None:
        self.inner.name = value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # a literal beyond float range, such as 1e400 (NaN never gets here)
        return math.copysign(sys.float_info.max, value)
    return value


def parse_json(text: str) -> Any:
    """Parse untrusted JSON text strictly; raise :class:`LLMOutputError` on any problem.

    A number too large for a float (``1e400``, valid JSON) becomes the largest finite
    float of its sign rather than infinity, so that the search space clamps it, and
    counts the clamp, as it does an over-long integer.
    """
    if not isinstance(text, str):
        raise LLMOutputError(f"expected text, got {type(text).__name__}", text=repr(text)[:200])
    if len(text) > MAX_RESPONSE_CHARS:
        raise LLMOutputError(
            f"answer is {len(text)} characters, more than the {MAX_RESPONSE_CHARS} allowed",
            text=text[:200],
        )
    stripped = _strip_code_fence(text.strip())
    try:
        return json.loads(stripped, parse_constant=_reject_constant, parse_float=_parse_float)
    except RecursionError:
        raise LLMOutputError("answer is nested too deeply", text=text[:200]) from None
    except ValueError as exc:  # JSONDecodeError, NaN literals, over-long integers
        raise LLMOutputError(f"answer is not valid JSON: {exc}", text=text[:200]) from None


def _strip_code_fence(text: str) -> str:
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        body = text[3:-3]
        first_newline = body.find("\n")
        return body[first_newline + 1 :] if first_newline >= 0 else body
    return text


def prompt_hash(messages: list[Message], schema: dict[str, Any], **options: Any) -> str:
    """A stable hash of everything that determines an answer; the response-cache key."""
    payload = json.dumps(
        {"messages": messages, "schema": schema, "options": options},
        sort_keys=True,
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()

