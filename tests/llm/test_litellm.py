"""LiteLLMBackend over a real HTTP path: an OpenAI-compatible fake server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tunepilot.exceptions import (
    LLMConfigError,
    LLMRateLimitError,
    LLMRequestError,
    LLMServerError,
    LLMTimeoutError,
)
from tunepilot.llm._base import Backend
from tunepilot.llm._litellm import LiteLLMBackend
from tunepilot.llm._retry import RetryingBackend
from tunepilot.testing._openai_server import FakeOpenAIServer

SCHEMA: dict[str, Any] = {
    "title": "proposals",
    "type": "object",
    "properties": {
        "configurations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"lr": {"type": "number"}, "depth": {"type": "integer"}},
                "required": ["lr", "depth"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["configurations"],
    "additionalProperties": False,
}
MESSAGES = [
    {"role": "system", "content": "You tune hyperparameters."},
    {"role": "user", "content": "Propose one configuration."},
]
ANSWER = {"configurations": [{"lr": 0.01, "depth": 6}]}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def make_backend(server: FakeOpenAIServer, **kwargs: Any) -> LiteLLMBackend:
    options: dict[str, Any] = {"api_base": server.base_url, "api_key": "test-key", "timeout": 5}
    options.update(kwargs)
    return LiteLLMBackend("openai/test-model", **options)


class Sleeps:
    """Records the delays RetryingBackend asks for instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def test_request_carries_model_messages_options_and_schema(server: FakeOpenAIServer) -> None:
    server.push_json(ANSWER)
    backend = make_backend(server)

    backend.complete(MESSAGES, schema=SCHEMA, temperature=0.2, seed=7, max_tokens=64)

    [body] = server.requests
    assert body["model"] == "test-model"
    assert body["messages"] == MESSAGES
    assert body["temperature"] == 0.2
    assert body["seed"] == 7
    assert body["max_tokens"] == 64
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "proposals", "schema": SCHEMA, "strict": True},
    }
    assert server.headers[0]["authorization"] == "Bearer test-key"


def test_seed_is_left_out_when_not_given(server: FakeOpenAIServer) -> None:
    make_backend(server).complete(MESSAGES, schema=SCHEMA)

    assert "seed" not in server.requests[0]
    assert server.requests[0]["temperature"] == 0.7
    assert server.requests[0]["max_tokens"] == 512


def test_schema_with_open_objects_is_sent_without_strict_mode(server: FakeOpenAIServer) -> None:
    loose = {"type": "object", "properties": {"lr": {"type": "number"}}}

    make_backend(server).complete(MESSAGES, schema=loose)

    json_schema = server.requests[0]["response_format"]["json_schema"]
    assert json_schema == {"name": "response", "schema": loose, "strict": False}


def test_structured_answer_comes_back_as_text_with_usage(server: FakeOpenAIServer) -> None:
    server.push_json(ANSWER)

    completion = make_backend(server).complete(MESSAGES, schema=SCHEMA)

    assert completion.json() == ANSWER
    assert completion.model == "test-model"
    assert completion.latency_s > 0
    assert completion.cached is False
    # The fake counts about four characters a token, as real tokenizers roughly do.
    prompt_chars = sum(len(m["content"]) for m in MESSAGES)
    assert completion.usage.prompt_tokens == (prompt_chars + 3) // 4
    assert completion.usage.completion_tokens == (len(completion.text) + 3) // 4
    # A self-hosted model has no price; that costs nothing rather than failing the call.
    assert completion.usage.cost_usd == 0.0


def test_null_content_becomes_empty_text(server: FakeOpenAIServer) -> None:
    server.push_json(None)

    completion = make_backend(server).complete(MESSAGES, schema=SCHEMA)

    assert completion.text == ""


def test_model_without_schema_support_gets_json_mode_and_schema_in_prompt(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gpt-3.5-turbo has JSON mode but no structured outputs in LiteLLM's model table;
    # OPENAI_BASE_URL points the real provider path at the fake server.
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    server.push_json(ANSWER)
    backend = LiteLLMBackend("openai/gpt-3.5-turbo", timeout=5)

    completion = backend.complete(MESSAGES, schema=SCHEMA)

    [body] = server.requests
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0] == MESSAGES[0]
    assert body["messages"][1]["content"].startswith(MESSAGES[1]["content"])
    assert '"configurations"' in body["messages"][1]["content"]
    assert server.headers[0]["authorization"] == "Bearer env-key"
    assert MESSAGES[1]["content"] == "Propose one configuration."  # caller's list untouched
    assert completion.json() == ANSWER
    assert completion.usage.cost_usd > 0  # a known model is priced from LiteLLM's table


def test_slow_answer_raises_timeout_quickly(server: FakeOpenAIServer) -> None:
    server.push_delay(10, then=ANSWER)
    backend = make_backend(server, timeout=0.5)

    start = time.perf_counter()
    with pytest.raises(LLMTimeoutError, match=r"within 0\.5 s"):
        backend.complete(MESSAGES, schema=SCHEMA)

    assert time.perf_counter() - start < 3
    assert len(server.requests) == 1


def test_rate_limit_is_retried_after_retry_after(server: FakeOpenAIServer) -> None:
    server.push_status(429, retry_after=0.25)
    server.push_json(ANSWER)
    sleeps = Sleeps()
    backend = RetryingBackend(make_backend(server), sleep=sleeps)

    completion = backend.complete(MESSAGES, schema=SCHEMA)

    assert completion.json() == ANSWER
    assert len(server.requests) == 2
    assert sleeps.delays == [0.25]
    assert backend.retries == 1


def test_rate_limit_error_carries_retry_after(server: FakeOpenAIServer) -> None:
    server.push_status(429, retry_after=3)

    with pytest.raises(LLMRateLimitError) as info:
        make_backend(server).complete(MESSAGES, schema=SCHEMA)

    assert info.value.retry_after == 3.0


def test_server_error_twice_then_success(server: FakeOpenAIServer) -> None:
    server.push_status(500)
    server.push_status(503)
    server.push_json(ANSWER)
    sleeps = Sleeps()
    backend = RetryingBackend(make_backend(server), max_retries=2, sleep=sleeps, seed=0)

    completion = backend.complete(MESSAGES, schema=SCHEMA)

    assert completion.json() == ANSWER
    assert len(server.requests) == 3
    assert (backend.attempts, backend.retries) == (3, 2)
    assert len(sleeps.delays) == 2


def test_server_error_forever_gives_up_after_max_retries(server: FakeOpenAIServer) -> None:
    for _ in range(10):
        server.push_status(500)
    backend = RetryingBackend(make_backend(server), max_retries=2, sleep=Sleeps())

    with pytest.raises(LLMServerError, match="HTTP 500|server had an error"):
        backend.complete(MESSAGES, schema=SCHEMA)

    assert len(server.requests) == 3
    assert backend.attempts == 3


def test_dropped_connection_is_a_retryable_server_error(server: FakeOpenAIServer) -> None:
    server.push_disconnect()
    server.push_json(ANSWER)
    backend = RetryingBackend(make_backend(server), sleep=Sleeps())

    assert backend.complete(MESSAGES, schema=SCHEMA).json() == ANSWER
    assert len(server.requests) == 2


def test_unreachable_server_is_a_server_error() -> None:
    with FakeOpenAIServer() as gone:
        base_url = gone.base_url
    backend = LiteLLMBackend("openai/test-model", api_base=base_url, api_key="k", timeout=2)

    with pytest.raises(LLMServerError, match="could not reach|failed"):
        backend.complete(MESSAGES, schema=SCHEMA)


def test_rejected_key_names_the_environment_variable(server: FakeOpenAIServer) -> None:
    server.push_status(401)
    backend = RetryingBackend(make_backend(server), sleep=Sleeps())

    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        backend.complete(MESSAGES, schema=SCHEMA)

    assert len(server.requests) == 1  # a bad key is not retried


@pytest.mark.parametrize("status", [400, 404, 422])
def test_rejected_request_is_not_retried(server: FakeOpenAIServer, status: int) -> None:
    server.push_status(status, message="response_format is not supported")
    backend = RetryingBackend(make_backend(server), sleep=Sleeps())

    with pytest.raises(LLMRequestError, match="response_format is not supported"):
        backend.complete(MESSAGES, schema=SCHEMA)

    assert len(server.requests) == 1


def test_missing_key_is_reported_before_any_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    with pytest.raises(LLMConfigError, match="set OPENAI_API_KEY .* or pass api_key="):
        LiteLLMBackend("openai/gpt-4.1-mini")


def test_missing_key_for_a_compatible_server_says_any_value_will_do(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY.*any value will do"):
        LiteLLMBackend("openai/test-model", api_base=server.base_url)
    assert server.requests == []


def test_model_without_provider_is_a_config_error() -> None:
    with pytest.raises(LLMConfigError, match="prefix the model with its provider"):
        LiteLLMBackend("no-such-model", api_key="k")


def test_options_the_backend_owns_are_refused() -> None:
    with pytest.raises(LLMConfigError, match="num_retries"):
        LiteLLMBackend("openai/test-model", api_key="k", num_retries=3)


def test_backend_follows_the_protocol_and_hides_the_key(server: FakeOpenAIServer) -> None:
    backend = make_backend(server, api_key="sk-secret")

    assert isinstance(backend, Backend)
    assert backend.name == "openai/test-model"
    assert "sk-secret" not in repr(backend)


def test_a_password_in_api_base_reaches_no_error_and_no_repr() -> None:
    with FakeOpenAIServer() as gone:
        base_url = gone.base_url
    api_base = base_url.replace("http://", "http://tuner:pw-91c3e7@")
    backend = LiteLLMBackend("openai/test-model", api_base=api_base, api_key="k", timeout=2)

    assert "pw-91c3e7" not in repr(backend)
    with pytest.raises(LLMServerError) as raised:
        backend.complete(MESSAGES, schema=SCHEMA)
    assert "tuner:***@127.0.0.1" in str(raised.value)
    assert "pw-91c3e7" not in str(raised.value)
