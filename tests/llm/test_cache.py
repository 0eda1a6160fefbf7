"""CachedBackend: replaying answers from disk, over the real LiteLLM path where it matters."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tunepilot.exceptions import LLMRequestError
from tunepilot.llm._base import Backend, Completion, Message, Usage, prompt_hash
from tunepilot.llm._cache import CachedBackend
from tunepilot.llm._litellm import LiteLLMBackend
from tunepilot.testing._openai_server import FakeOpenAIServer

MESSAGES: list[Message] = [{"role": "user", "content": "Propose a learning rate."}]
SCHEMA: dict[str, Any] = {"type": "object", "properties": {"lr": {"type": "number"}}}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder=lambda body: json.dumps({"lr": body.get("seed")})) as fake:
        yield fake


@pytest.fixture
def backend(server: FakeOpenAIServer, tmp_path: Path) -> CachedBackend:
    inner = LiteLLMBackend(
        "openai/test-model", api_base=server.base_url, api_key="test-key", timeout=5
    )
    return CachedBackend(inner, tmp_path / "cache")


class Counting:
    """A local backend that answers with a running count."""

    def __init__(self, name: str = "counting") -> None:
        self.name = name
        self.calls = 0

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any],
        temperature: float = 0.7,
        seed: int | None = None,
        max_tokens: int = 512,
    ) -> Completion:
        self.calls += 1
        return Completion(
            text=json.dumps({"call": self.calls}),
            usage=Usage(prompt_tokens=11, completion_tokens=5, cost_usd=0.002),
            model=self.name,
            latency_s=0.3,
        )


def cache_file(directory: Path, **options: Any) -> Path:
    key = prompt_hash(MESSAGES, SCHEMA, **options)
    return directory / f"{key}.json"


def test_identical_call_is_answered_from_disk(
    backend: CachedBackend, server: FakeOpenAIServer
) -> None:
    first = backend.complete(MESSAGES, schema=SCHEMA, seed=1)
    again = backend.complete(MESSAGES, schema=SCHEMA, seed=1)

    assert len(server.requests) == 1
    assert again.text == first.text
    assert again.usage == first.usage
    assert again.model == first.model
    assert (first.cached, again.cached) == (False, True)
    assert again.latency_s == 0.0
    assert (backend.hits, backend.misses) == (1, 1)


def test_different_seed_goes_to_the_model(
    backend: CachedBackend, server: FakeOpenAIServer
) -> None:
    one = backend.complete(MESSAGES, schema=SCHEMA, seed=1)
    two = backend.complete(MESSAGES, schema=SCHEMA, seed=2)

    assert len(server.requests) == 2
    assert (one.json(), two.json()) == ({"lr": 1}, {"lr": 2})
    assert (backend.hits, backend.misses) == (0, 2)


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.1},
        {"max_tokens": 99},
        {"schema": {"type": "object", "properties": {"lr": {"type": "integer"}}}},
        {"messages": [{"role": "user", "content": "Propose a batch size."}]},
    ],
)
def test_any_change_to_the_call_is_a_miss(tmp_path: Path, change: dict[str, Any]) -> None:
    inner = Counting()
    backend = CachedBackend(inner, tmp_path)
    call: dict[str, Any] = {"messages": MESSAGES, "schema": SCHEMA}

    backend.complete(**call)
    backend.complete(**{**call, **change})

    assert inner.calls == 2


def test_another_model_does_not_share_answers(tmp_path: Path) -> None:
    CachedBackend(Counting("model-a"), tmp_path).complete(MESSAGES, schema=SCHEMA)
    other = Counting("model-b")

    CachedBackend(other, tmp_path).complete(MESSAGES, schema=SCHEMA)

    assert other.calls == 1


def test_answers_survive_a_new_process(tmp_path: Path) -> None:
    first = CachedBackend(Counting(), tmp_path).complete(MESSAGES, schema=SCHEMA, seed=4)
    replay_inner = Counting()

    replayed = CachedBackend(replay_inner, tmp_path).complete(MESSAGES, schema=SCHEMA, seed=4)

    assert replay_inner.calls == 0
    assert replayed.text == first.text
    assert replayed.usage == Usage(prompt_tokens=11, completion_tokens=5, cost_usd=0.002)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        "[]",
        '{"format": 1, "model": "counting", "text": 42, "usage": {}}',
        '{"format": 1, "model": "m", "text": "{}", '
        '"usage": {"prompt_tokens": true, "completion_tokens": 1, "cost_usd": 0}}',
        '{"format": 99, "model": "m", "text": "{}", '
        '"usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost_usd": 0}}',
    ],
)
def test_corrupt_file_is_a_miss_and_is_overwritten(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tunepilot.llm")
    inner = Counting()
    backend = CachedBackend(inner, tmp_path)
    path = cache_file(tmp_path, model="counting", temperature=0.7, seed=None, max_tokens=512)
    path.write_text(content)

    fresh = backend.complete(MESSAGES, schema=SCHEMA)
    again = backend.complete(MESSAGES, schema=SCHEMA)

    assert inner.calls == 1
    assert fresh.cached is False and again.cached is True
    assert json.loads(path.read_text())["text"] == fresh.text
    assert "corrupt response cache file" in caplog.text


def test_corrupt_file_over_http_is_a_miss(
    backend: CachedBackend, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    backend.complete(MESSAGES, schema=SCHEMA, seed=5)
    [path] = (tmp_path / "cache").glob("*.json")
    path.write_bytes(b"\x00\xff garbage")

    completion = backend.complete(MESSAGES, schema=SCHEMA, seed=5)

    assert completion.cached is False
    assert completion.json() == {"lr": 5}
    assert len(server.requests) == 2


def test_errors_are_not_cached(backend: CachedBackend, server: FakeOpenAIServer) -> None:
    server.push_status(400)
    with pytest.raises(LLMRequestError):
        backend.complete(MESSAGES, schema=SCHEMA, seed=1)

    completion = backend.complete(MESSAGES, schema=SCHEMA, seed=1)

    assert completion.json() == {"lr": 1}
    assert len(server.requests) == 2


def test_unwritable_entry_still_returns_the_answer(tmp_path: Path) -> None:
    inner = Counting()
    backend = CachedBackend(inner, tmp_path)
    # A directory where the file should go can be neither read nor replaced.
    cache_file(tmp_path, model="counting", temperature=0.7, seed=None, max_tokens=512).mkdir()

    completion = backend.complete(MESSAGES, schema=SCHEMA)

    assert completion.json() == {"call": 1}
    assert not list(tmp_path.glob(".*.tmp"))


def test_concurrent_writers_leave_one_whole_file(tmp_path: Path) -> None:
    inner = Counting()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        backend = CachedBackend(inner, tmp_path)
        barrier.wait()
        try:
            for _ in range(20):
                backend.complete(MESSAGES, schema=SCHEMA)
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert [p.suffix for p in tmp_path.iterdir()] == [".json"]
    assert json.loads(next(tmp_path.iterdir()).read_text())["format"] == 1


def test_wrapper_is_a_backend_named_after_its_inner(tmp_path: Path) -> None:
    backend = CachedBackend(Counting("inner-model"), tmp_path / "new" / "dir")

    assert isinstance(backend, Backend)
    assert backend.name == "inner-model"
    assert (tmp_path / "new" / "dir").is_dir()
