"""make_backend: model strings, and ``"auto"`` against servers on 127.0.0.1 and keys in the env."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tunepilot.exceptions import LLMConfigError
from tunepilot.llm import make_backend
from tunepilot.llm._auto import HOSTED_MODELS
from tunepilot.llm._base import Backend
from tunepilot.llm._litellm import LiteLLMBackend
from tunepilot.llm._local import LocalBackend
from tunepilot.llm._retry import RetryingBackend
from tunepilot.testing import FakeOpenAIServer

MESSAGES = [{"role": "user", "content": "Propose a learning rate."}]
SCHEMA: dict[str, Any] = {"type": "object", "properties": {"lr": {"type": "number"}}}
SECRET = "sk-test-0123456789abcdef"
AUTO_ENV = ("TUNEPILOT_LLM_BASE", "TUNEPILOT_LLM_API_KEY", "OLLAMA_HOST",
            *(variable for variable, _ in HOSTED_MODELS))


class FakeOllama:
    """Ollama's model list (``/api/tags``, ``/api/ps``) and its OpenAI-compatible chat route."""

    def __init__(self, installed: list[dict[str, Any]], loaded: Sequence[str] = ()) -> None:
        self.installed = installed
        self.loaded = list(loaded)
        self.chat_requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/api/tags":
                    self._send({"models": fake.installed})
                elif self.path == "/api/ps":
                    self._send({"models": [{"name": n, "model": n} for n in fake.loaded]})
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                fake.chat_requests.append(body)
                self._send({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": '{"lr": 0.01}'}}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
                })

            def _send(self, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def model(name: str, gigabytes: float, family: str = "qwen2") -> dict[str, Any]:
    return {"name": name, "model": name, "size": int(gigabytes * 1e9),
            "details": {"format": "gguf", "family": family, "families": [family]}}


INSTALLED = [
    model("nomic-embed-text:latest", 0.27, family="nomic-bert"),
    model("qwen2.5:7b", 4.7),
    model("llama3.3:70b", 42.5, family="llama"),
    model("gemma3:1b", 0.8, family="gemma3"),
]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Where sockets connect; a connection anywhere but 127.0.0.1 fails the test."""
    seen: list[Any] = []
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        seen.append(address)
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"a network call to {address} was made")
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return seen


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, connections: list[Any]) -> pytest.MonkeyPatch:
    """No server named, no key, and Ollama's address a closed port of this machine."""
    for variable in AUTO_ENV:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    return monkeypatch


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama(INSTALLED)
    yield fake
    fake.close()


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def inner(backend: Backend) -> Backend:
    assert isinstance(backend, RetryingBackend)
    return backend.inner


def hosted(backend: Backend) -> LiteLLMBackend:
    chosen = inner(backend)
    assert isinstance(chosen, LiteLLMBackend)
    return chosen


def auto_line(caplog: pytest.LogCaptureFixture) -> str:
    [line] = [r.getMessage() for r in caplog.records
              if r.name == "tunepilot.llm" and r.getMessage().startswith("model auto:")]
    [record] = [r for r in caplog.records if r.getMessage() == line]
    assert record.levelno == logging.WARNING  # the level `tunepilot run` and scripts show
    return line


def test_model_strings_build_their_backends(env: pytest.MonkeyPatch) -> None:
    env.setenv("OPENAI_API_KEY", SECRET)
    assert isinstance(inner(make_backend("local")), LocalBackend)
    assert hosted(make_backend(" openai/gpt-4.1-mini ", timeout=5)).model == "openai/gpt-4.1-mini"
    with pytest.raises(LLMConfigError, match="model is empty; use 'auto'"):
        make_backend("  ")


def test_auto_uses_the_server_named_by_tunepilot_llm_base(
    env: pytest.MonkeyPatch, server: FakeOpenAIServer, ollama: FakeOllama,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env.setenv("TUNEPILOT_LLM_BASE", server.base_url)
    env.setenv("OLLAMA_HOST", f"127.0.0.1:{ollama.port}")  # answers too, but comes second
    env.setenv("OPENAI_API_KEY", SECRET)
    server.push_json({"lr": 0.01})

    with caplog.at_level(logging.WARNING, logger="tunepilot.llm"):
        backend = make_backend("auto", timeout=5)
        answer = backend.complete(MESSAGES, schema=SCHEMA)

    chosen = hosted(backend)
    assert (chosen.model, chosen.api_base) == ("openai/test-model", server.base_url)
    assert answer.json() == {"lr": 0.01}
    assert server.requests[0]["model"] == "test-model"
    # The user's OpenAI key is not for this server, and is never shown.
    assert SECRET not in server.headers[0].get("authorization", "")
    port = server.base_url.split(":")[-1].split("/")[0]
    assert auto_line(caplog) == (
        f"model auto: server at 127.0.0.1:{port}/v1 (TUNEPILOT_LLM_BASE), test-model"
    )
    assert SECRET not in caplog.text and SECRET not in repr(backend)
    assert not ollama.chat_requests


def test_auto_finds_the_v1_route_under_a_bare_server_url(
    env: pytest.MonkeyPatch, server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("TUNEPILOT_LLM_BASE", server.base_url.removesuffix("/v1"))
    env.setenv("TUNEPILOT_LLM_API_KEY", "server-key")
    with caplog.at_level(logging.WARNING, logger="tunepilot.llm"):
        backend = make_backend("auto", timeout=5)
        backend.complete(MESSAGES, schema=SCHEMA)
    assert hosted(backend).api_base == server.base_url
    assert server.headers[0]["authorization"] == "Bearer server-key"
    assert "server-key" not in caplog.text


def test_auto_uses_ollama_and_picks_an_installed_chat_model(
    env: pytest.MonkeyPatch, ollama: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("OLLAMA_HOST", f"127.0.0.1:{ollama.port}")
    env.setenv("ANTHROPIC_API_KEY", SECRET)  # a local server comes before a hosted model

    with caplog.at_level(logging.WARNING, logger="tunepilot.llm"):
        backend = make_backend("auto", timeout=5)
        answer = backend.complete(MESSAGES, schema=SCHEMA)

    # Not the embedding model, nor the 70B one while a model that fits a 16 GB GPU exists.
    assert auto_line(caplog) == f"model auto: Ollama at 127.0.0.1:{ollama.port}, qwen2.5:7b"
    assert hosted(backend).api_base == f"http://127.0.0.1:{ollama.port}/v1"
    assert answer.json() == {"lr": 0.01}
    assert [r["model"] for r in ollama.chat_requests] == ["qwen2.5:7b"]


def test_auto_prefers_the_model_ollama_has_loaded(
    env: pytest.MonkeyPatch, ollama: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    ollama.loaded = ["llama3.3:70b"]
    env.setenv("OLLAMA_HOST", f"http://127.0.0.1:{ollama.port}")
    with caplog.at_level(logging.WARNING, logger="tunepilot.llm"):
        make_backend("auto")
    assert auto_line(caplog).endswith(", llama3.3:70b")


@pytest.mark.parametrize("form", ["0.0.0.0:{port}", "http://localhost:{port}", "[::]:{port}"])
def test_auto_reads_ollama_host_as_ollama_does(
    env: pytest.MonkeyPatch, ollama: FakeOllama, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("OLLAMA_HOST", form.format(port=ollama.port))
    with caplog.at_level(logging.WARNING, logger="tunepilot.llm"):
        make_backend("auto")
    assert "Ollama at" in auto_line(caplog)


def test_auto_says_why_an_answering_ollama_was_not_used(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    empty = FakeOllama([model("nomic-embed-text:latest", 0.27, family="nomic-bert")])
    try:
        env.setenv("OLLAMA_HOST", f"127.0.0.1:{empty.port}")
        with caplog.at_level(logging.WARNING, logger="tunepilot.llm"):
            backend = make_backend("auto")
    finally:
        empty.close()
    assert isinstance(inner(backend), LocalBackend)
    assert auto_line(caplog) == (
        f"model auto: embedded SmolLM2-135M (Ollama at 127.0.0.1:{empty.port} has no chat "
        "model installed (ollama pull qwen2.5:7b); no API key found)"
    )


@pytest.mark.parametrize(("variable", "expected"), HOSTED_MODELS)
def test_auto_uses_a_hosted_model_whose_key_is_set_without_calling_it(
    env: pytest.MonkeyPatch, connections: list[Any], caplog: pytest.LogCaptureFixture,
    variable: str, expected: str,
) -> None:
    env.setenv(variable, SECRET)
    with caplog.at_level(logging.WARNING, logger="tunepilot.llm"):
        backend = make_backend("auto")
    chosen = hosted(backend)
    assert (chosen.model, chosen.api_base) == (expected, None)
    assert auto_line(caplog) == f"model auto: no local server, {variable} set: {expected}"
    assert SECRET not in caplog.text and SECRET not in repr(backend)
    # Only the probe of Ollama's (closed) port: nothing left this machine.
    assert all(address[0] == "127.0.0.1" for address in connections)


def test_auto_names_a_server_that_did_not_answer(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port()
    env.setenv("TUNEPILOT_LLM_BASE", f"http://127.0.0.1:{port}/v1")
    env.setenv("OPENAI_API_KEY", SECRET)
    with caplog.at_level(logging.WARNING, logger="tunepilot.llm"):
        backend = make_backend("auto")
    assert hosted(backend).model == "openai/gpt-4.1-mini"
    assert auto_line(caplog) == (
        f"model auto: TUNEPILOT_LLM_BASE 127.0.0.1:{port}/v1 refused the connection, "
        "OPENAI_API_KEY set: openai/gpt-4.1-mini"
    )


def test_auto_falls_back_to_the_embedded_model(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("OPENAI_API_KEY", "  ")  # set but empty is no key
    with caplog.at_level(logging.WARNING, logger="tunepilot.llm"):
        backend = make_backend("auto")
    chosen = inner(backend)
    assert isinstance(chosen, LocalBackend) and chosen.model_path is None
    assert auto_line(caplog) == (
        "model auto: embedded SmolLM2-135M (no local server or API key found)"
    )


def test_a_server_that_never_answers_delays_the_choice_by_a_second_only(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), answers nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        env.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
        started = time.perf_counter()
        with caplog.at_level(logging.WARNING, logger="tunepilot.llm"):
            make_backend("auto")
        elapsed = time.perf_counter() - started
    assert elapsed < 2.5
    assert f"Ollama at 127.0.0.1:{port} did not answer within 1 s" in auto_line(caplog)


def test_importing_tunepilot_probes_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-c",
         "import tunepilot, sys; print('tunepilot.llm._auto' in sys.modules)"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert result.stdout.split() == ["False"]
