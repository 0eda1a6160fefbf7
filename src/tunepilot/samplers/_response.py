"""The structured answer the LLM must give, and how an untrusted answer is turned into configurations.

The answer is data, never code: it is parsed as JSON, its shape checked by a pydantic
model generated from the search space, and each value fitted into the space by
:meth:`SearchSpace.repair`, which reports every clamp, snap and coercion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from tunepilot.exceptions import LLMConfigError, LLMError, LLMOutputError
from tunepilot.llm import Completion, Message, Usage
from tunepilot.samplers._stats import LLMStats
from tunepilot.space import SearchSpace

RATIONALE_CHARS = 200
_REPAIR_PROMPT = (
    "Your answer could not be used: {errors}. Answer again with JSON only, exactly in the "
    "requested shape, with every parameter set to a value inside its range."
)


def response_schema(space: SearchSpace, count: int) -> dict[str, Any]:
    """JSON schema of an answer: ``count`` configurations, best first, then a short rationale.

    Each parameter's ``description`` says its scale in words (see
    :meth:`SearchSpace.explain`); its ``minimum`` and ``maximum`` bound the numbers a
    local model can write.
    """
    return {
        "type": "object",
        "properties": {
            "configurations": {
                "type": "array",
                "description": "the configurations, the one expected to do best first",
                "items": space.json_schema(),
                "minItems": count,
                "maxItems": count,
            },
            "rationale": {"type": "string", "maxLength": RATIONALE_CHARS},
        },
        "required": ["configurations", "rationale"],
        "additionalProperties": False,
    }


@lru_cache(maxsize=64)
def configuration_model(space: SearchSpace) -> type[BaseModel]:
    """A pydantic model with one required field per parameter.

    Values are typed ``Any`` on purpose: range and type problems are repaired and
    counted by the space, not rejected here; this model checks presence and shape.
    Field names are aliased because parameter names need not be identifiers.
    """
    fields: dict[str, Any] = {
        f"p{i}": (Any, Field(alias=name)) for i, name in enumerate(space)
    }
    return create_model(
        "Configuration", __config__=ConfigDict(extra="ignore"), **fields
    )


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    configurations: list[Any]
    rationale: Any = ""


@dataclass(frozen=True)
class Proposal:
    """One configuration from the LLM, inside the space, with what was repaired."""

    values: dict[str, Any]
    repairs: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedAnswer:
    proposals: list[Proposal]
    rationale: str
    errors: list[str]


def parse_answer(completion: Completion, space: SearchSpace) -> ParsedAnswer:
    """Turn an untrusted answer into configurations inside ``space``.

    Never raises for bad content: problems are returned in ``errors`` (an unusable
    answer has no proposals and at least one error).
    """
    try:
        data = completion.json()
    except LLMOutputError as exc:
        return ParsedAnswer([], "", [str(exc)])
    try:
        envelope = _Envelope.model_validate(data)
    except ValidationError as exc:
        return ParsedAnswer([], "", [_first_errors(exc)])
    rationale = envelope.rationale if isinstance(envelope.rationale, str) else ""
    model = configuration_model(space)
    proposals: list[Proposal] = []
    errors: list[str] = []
    for i, item in enumerate(envelope.configurations):
        try:
            model.model_validate(item)
        except ValidationError as exc:
            errors.append(f"configuration {i + 1}: {_first_errors(exc)}")
            continue
        repaired = space.repair(item)
        if repaired.values is None:
            errors.append(f"configuration {i + 1}: " + "; ".join(repaired.errors))
        else:
            proposals.append(Proposal(repaired.values, repaired.repairs))
    if not envelope.configurations:
        errors.append("'configurations' is empty")
    return ParsedAnswer(proposals, rationale[:RATIONALE_CHARS], errors)


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "answer"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Answer:
    """What one request, and its repair round trip if it needed one, came to."""

    proposals: tuple[Proposal, ...]
    errors: tuple[str, ...]
    rationale: str
    usage: Usage
    latency_s: float
    cached: bool


def answer_with_repair(
    ask: Callable[[list[Message]], Completion],
    messages: list[Message],
    space: SearchSpace,
    want: int,
    stats: LLMStats,
) -> Answer:
    """Ask, parse, and when the answer gave fewer than ``want`` usable configurations,
    ask once more with the errors; every invalid answer and round trip is counted.

    Raises:
        LLMError: the first request failed, or the repair failed with nothing usable.
    """
    completion = ask(messages)
    usage, latency, cached = completion.usage, completion.latency_s, completion.cached
    answer = parse_answer(completion, space)
    proposals, errors, rationale = list(answer.proposals), list(answer.errors), answer.rationale
    if errors:
        stats.count("invalid_responses")
    if errors and len(proposals) < want:
        stats.count("repair_round_trips")
        followup = messages + [
            {"role": "assistant", "content": completion.text[:2000]},
            {"role": "user", "content": _REPAIR_PROMPT.format(errors="; ".join(errors[:5]))},
        ]
        try:
            second = ask(followup)
        except LLMConfigError:
            raise
        except LLMError as exc:
            if not proposals:
                raise
            errors.append(f"repair request failed: {exc}")
        else:
            usage, latency = usage + second.usage, latency + second.latency_s
            repaired = parse_answer(second, space)
            if repaired.errors:
                stats.count("invalid_responses")
            proposals += repaired.proposals
            rationale = rationale or repaired.rationale
            errors = repaired.errors if repaired.proposals else errors + repaired.errors
    return Answer(tuple(proposals), tuple(errors), rationale, usage, latency, cached)
