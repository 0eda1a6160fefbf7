"""A scriptable OpenAI-compatible HTTP server for fault-injection tests."""

from __future__ import annotations

import collections
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], "str | None"]
"""Turns a request body into the assistant's message content."""

_STATUS_ERRORS = {
    400: ("invalid_request_error", "The request is invalid."),
    401: ("invalid_request_error", "Incorrect API key provided."),
    403: ("permission_denied", "You are not allowed to use this model."),
    404: ("invalid_request_error", "The model does not exist."),
    408: ("timeout", "The request timed out."),
    422: ("invalid_request_error", "The request could not be processed."),
    429: ("rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", "The server had an error while processing your request."),
    502: ("server_error", "Bad gateway."),
    503: ("server_error", "The engine is currently overloaded."),
}


@dataclass(frozen=True)
class _Reply:
    content: str | None


@dataclass(frozen=True)
class _Status:
    status: int
    retry_after: float | None
    message: str | None


@dataclass(frozen=True)
class _Delay:
    seconds: float
    then: _Reply | None


@dataclass(frozen=True)
class _Disconnect:
    pass


_Behaviour = _Reply | _Status | _Delay | _Disconnect


def _default_responder(body: dict[str, Any]) -> str:
    return "{}"


def _count_tokens(text: str) -> int:
    # Roughly what a BPE tokenizer gives for English and JSON: about 4 characters a token.
    return max(1, (len(text) + 3) // 4) if text else 0


class FakeOpenAIServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1, with scripted faults.

    It serves ``POST /v1/chat/completions`` from a daemon thread on an ephemeral port.
    Each request takes the next queued behaviour (an answer, an HTTP error, a delay, a
    dropped connection); when the queue is empty, ``responder`` answers. Every request
    body is recorded in :attr:`requests` and its headers in :attr:`headers`, so tests can
    check what a client really sent.

    Args:
        responder: Builds the assistant's message content from the request body when no
            behaviour is queued. The default answers ``"{}"``.

    Example:
        .. code-block:: python

            from tunepilot.llm import LiteLLMBackend
            from tunepilot.testing import FakeOpenAIServer

            with FakeOpenAIServer() as server:
                server.push_status(429, retry_after=0.1)
                server.push_json({"configurations": [{"lr": 0.01}]})
                backend = LiteLLMBackend(
                    "openai/test-model", api_base=server.base_url, api_key="test-key"
                )
                ...
                assert server.requests[0]["model"] == "test-model"
    """

    def __init__(self, *, responder: Responder | None = None) -> None:
        self.responder: Responder = responder or _default_responder
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._queue: collections.deque[_Behaviour] = collections.deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, e.g. ``http://127.0.0.1:54321/v1``."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running: call start() or use `with`")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def push_json(self, obj_or_text: Any) -> None:
        """Queue a successful answer; a ``str`` is sent verbatim, anything else as JSON.

        ``None`` sends a message whose ``content`` is ``null``.
        """
        self._push(_Reply(_as_content(obj_or_text)))

    def push_status(
        self, status: int, *, retry_after: float | None = None, message: str | None = None
    ) -> None:
        """Queue an HTTP error in OpenAI's error format, with a ``Retry-After`` header if given."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error code (400-599), got {status}")
        self._push(_Status(status, retry_after, message))

    def push_delay(self, seconds: float, *, then: Any = None) -> None:
        """Queue a pause before answering with ``then`` (as :meth:`push_json`).

        With ``then=None`` the responder answers after the pause.
        """
        self._push(_Delay(seconds, None if then is None else _Reply(_as_content(then))))

    def push_disconnect(self) -> None:
        """Queue a dropped connection: the request is read, then the socket closes unanswered."""
        self._push(_Disconnect())

    def start(self) -> FakeOpenAIServer:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._closing.clear()
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        httpd.daemon_threads = True
        # A handler parked in a long delay must not hold up close().
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="FakeOpenAIServer",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; pending delays end at once."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._closing.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _push(self, behaviour: _Behaviour) -> None:
        with self._lock:
            self._queue.append(behaviour)

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> _Behaviour | None:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            return self._queue.popleft() if self._queue else None


def _as_content(obj_or_text: Any) -> str | None:
    if obj_or_text is None or isinstance(obj_or_text, str):
        return obj_or_text
    return json.dumps(obj_or_text)


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0 closes each connection after its answer, so no idle keep-alive
        # thread outlives the test and pooled clients never reuse a dead socket.
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send_json(200, {"object": "list", "data": [{"id": "test-model"}]})
            else:
                self._send_error(404, "Not found.")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send_error(404, f"Unknown path {self.path}.")
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send_error(400, "The body is not JSON.")
                return
            if not isinstance(body, dict):
                self._send_error(400, "The body is not a JSON object.")
                return
            behaviour = server._next(body, {k.lower(): v for k, v in self.headers.items()})
            try:
                self._act(behaviour, body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout), which is what the test wanted

        def _act(self, behaviour: _Behaviour | None, body: dict[str, Any]) -> None:
            if isinstance(behaviour, _Delay):
                if server._closing.wait(behaviour.seconds):
                    return
                behaviour = behaviour.then
            if isinstance(behaviour, _Status):
                self._send_error(behaviour.status, behaviour.message, behaviour.retry_after)
            elif isinstance(behaviour, _Disconnect):
                self.close_connection = True
            elif isinstance(behaviour, _Reply):
                self._send_completion(body, behaviour.content)
            else:
                self._send_completion(body, server.responder(body))

        def _send_completion(self, body: dict[str, Any], content: str | None) -> None:
            messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
            prompt = "".join(str(m.get("content") or "") for m in messages)
            prompt_tokens = _count_tokens(prompt)
            completion_tokens = _count_tokens(content or "")
            self._send_json(
                200,
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", ""),
                    "system_fingerprint": "fp_fake",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content, "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                },
            )

        def _send_error(
            self, status: int, message: str | None = None, retry_after: float | None = None
        ) -> None:
            kind, default = _STATUS_ERRORS.get(status, ("server_error", "Error."))
            headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
            error = {"message": message or default, "type": kind, "param": None, "code": kind}
            self._send_json(status, {"error": error}, headers)

        def _send_json(
            self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
