"""RetryingBackend: which errors are retried, how long it waits, what it reports."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tunepilot.exceptions import (
    LLMConfigError,
    LLMError,
    LLMOutputError,
    LLMRateLimitError,
    LLMRequestError,
    LLMServerError,
    LLMTimeoutError,
)
from tunepilot.llm._base import Backend, Completion, Message
from tunepilot.llm._retry import RetryingBackend

MESSAGES: list[Message] = [{"role": "user", "content": "Propose a learning rate."}]
SCHEMA: dict[str, Any] = {"type": "object"}


class Scripted:
    """A backend that raises the scripted errors in order, then answers."""

    name = "scripted"

    def __init__(self, *outcomes: Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[dict[str, Any]] = []

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any],
        temperature: float = 0.7,
        seed: int | None = None,
        max_tokens: int = 512,
    ) -> Completion:
        self.calls.append({"temperature": temperature, "seed": seed, "max_tokens": max_tokens})
        if self.outcomes:
            raise self.outcomes.pop(0)
        return Completion(text='{"lr": 0.1}', model=self.name)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.mark.parametrize(
    "error", [LLMTimeoutError("slow"), LLMServerError("502"), LLMRateLimitError("429")]
)
def test_transient_error_is_retried_until_success(error: LLMError) -> None:
    inner = Scripted(error, error)
    backend = RetryingBackend(inner, max_retries=2, sleep=Sleeps())

    completion = backend.complete(MESSAGES, schema=SCHEMA, temperature=0.1, seed=3, max_tokens=9)

    assert completion.text == '{"lr": 0.1}'
    assert (backend.attempts, backend.retries) == (3, 2)
    assert inner.calls == [{"temperature": 0.1, "seed": 3, "max_tokens": 9}] * 3


@pytest.mark.parametrize(
    "error",
    [
        LLMConfigError("no key"),
        LLMRequestError("bad request"),
        LLMOutputError("not json"),
        ValueError("a bug, not a provider failure"),
    ],
)
def test_permanent_error_is_raised_at_once(error: Exception) -> None:
    sleeps = Sleeps()
    backend = RetryingBackend(Scripted(error), sleep=sleeps)

    with pytest.raises(type(error)) as info:
        backend.complete(MESSAGES, schema=SCHEMA)

    assert info.value is error
    assert backend.attempts == 1
    assert sleeps.delays == []


def test_last_error_is_raised_when_retries_run_out() -> None:
    errors = [LLMServerError(f"failure {i}") for i in range(4)]
    backend = RetryingBackend(Scripted(*errors), max_retries=2, sleep=Sleeps())

    with pytest.raises(LLMServerError) as info:
        backend.complete(MESSAGES, schema=SCHEMA)

    assert info.value is errors[2]
    assert (backend.attempts, backend.retries) == (3, 2)


def test_zero_retries_makes_one_attempt() -> None:
    backend = RetryingBackend(Scripted(LLMTimeoutError("slow")), max_retries=0, sleep=Sleeps())

    with pytest.raises(LLMTimeoutError):
        backend.complete(MESSAGES, schema=SCHEMA)

    assert backend.attempts == 1


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    sleeps = Sleeps()
    errors = [LLMServerError("down")] * 6
    backend = RetryingBackend(
        Scripted(*errors), max_retries=6, base_delay=0.5, max_delay=4.0, sleep=sleeps, seed=1
    )

    backend.complete(MESSAGES, schema=SCHEMA)

    caps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(sleeps.delays) == 6
    assert all(0.0 <= d <= cap for d, cap in zip(sleeps.delays, caps, strict=True))
    assert len(set(sleeps.delays)) == 6  # jittered, not a fixed schedule


def test_same_seed_gives_same_delays() -> None:
    def delays(seed: int) -> list[float]:
        sleeps = Sleeps()
        errors = [LLMServerError("down")] * 3
        RetryingBackend(Scripted(*errors), max_retries=3, seed=seed, sleep=sleeps).complete(
            MESSAGES, schema=SCHEMA
        )
        return sleeps.delays

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)


def test_retry_after_is_honoured_and_capped() -> None:
    sleeps = Sleeps()
    inner = Scripted(
        LLMRateLimitError("429", retry_after=1.5), LLMRateLimitError("429", retry_after=60)
    )
    backend = RetryingBackend(inner, max_retries=2, max_delay=8.0, sleep=sleeps)

    backend.complete(MESSAGES, schema=SCHEMA)

    assert sleeps.delays == [1.5, 8.0]


def test_each_retry_is_logged_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    inner = Scripted(LLMTimeoutError("no answer within 5 s"), LLMServerError("HTTP 503"))
    backend = RetryingBackend(inner, max_retries=2, sleep=Sleeps())

    with caplog.at_level(logging.WARNING, logger="tunepilot.llm"):
        backend.complete(MESSAGES, schema=SCHEMA)

    records = [r for r in caplog.records if r.name == "tunepilot.llm"]
    assert [r.levelno for r in records] == [logging.WARNING] * 2
    assert "no answer within 5 s" in records[0].getMessage()
    assert "retry 1 of 2" in records[0].getMessage()
    assert "HTTP 503" in records[1].getMessage()


def test_wrapper_is_a_backend_named_after_its_inner() -> None:
    backend = RetryingBackend(Scripted())

    assert isinstance(backend, Backend)
    assert backend.name == "scripted"


@pytest.mark.parametrize(
    "options",
    [{"max_retries": -1}, {"max_retries": 1.5}, {"base_delay": -1}, {"max_delay": 0.1}],
)
def test_invalid_settings_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(LLMConfigError):
        RetryingBackend(Scripted(), **options)
