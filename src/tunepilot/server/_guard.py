"""Checks on every request before anything else sees it: Host, content type, body size.

- **Host.** A page on another site can make a browser talk to the server through a
  name that resolves to it (DNS rebinding); such requests carry that name in ``Host``.
  Only the server's own names (:attr:`Settings.host_names`) and IP addresses, which
  no DNS answer can stand for, are served.
- **Content type.** A page on another site can send a ``POST`` without asking first
  only as ``text/plain``, a form or multipart, or without a body. The API's
  ``POST``, ``PUT`` and ``PATCH`` need ``application/json`` (OTLP also takes
  protobuf), which a browser sends cross-site only after a CORS preflight this
  server never grants. The dashboard's forms have their own checks
  (:mod:`tunepilot.server.web._csrf`).
- **Body size.** A body over ``max_body_bytes`` is refused from its
  ``Content-Length``, or as soon as that many bytes have arrived.

It is ASGI middleware, like :class:`~tunepilot.server._auth.TokenAuth`, so a route
added later is covered without doing anything.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable

from fastapi.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tunepilot.server._settings import Settings

JSON = "application/json"
PROTOBUF = frozenset({"application/x-protobuf", "application/protobuf"})
#: Methods that change state and that a browser may send cross-site without a preflight
#: when the body type allows (POST), plus those that carry a body.
WRITES = frozenset({"POST", "PUT", "PATCH"})


class BodyTooLarge(HTTPException):
    """A request body over the limit (HTTP 413), whoever reads it."""

    def __init__(self, limit: int, setting: str = "TUNEPILOT_MAX_BODY_BYTES") -> None:
        super().__init__(413, f"the request body is larger than {_size(limit)}; send less, "
                              f"or raise the limit ({setting})")


def _size(count: int) -> str:
    if count >= 1024 * 1024 and count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB ({count:,} bytes)"
    if count >= 1024 and count % 1024 == 0:
        return f"{count // 1024} KiB ({count:,} bytes)"
    return f"{count:,} bytes"


def host_name(value: str) -> str:
    """The name part of a ``Host`` header: no port, no brackets, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class RequestGuard:
    """ASGI middleware: refuse foreign ``Host`` names, non-JSON writes and large bodies.

    Args:
        app: the app behind it.
        settings: names (``allowed_hosts``) and the body limit (``max_body_bytes``).
        forms: whether a path takes browser forms instead (the dashboard's); those
            paths get the Host and size checks only.
        protobuf_paths: paths that also take OTLP protobuf bodies.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        forms: Callable[[str], bool] = lambda _: False,
        protobuf_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.names = settings.host_names
        self.any_host = "*" in settings.allowed_hosts
        self.max_body = settings.max_body_bytes
        self.forms = forms
        self.protobuf_paths = frozenset(protobuf_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope.get("headers", [])}
        problem = self._host_problem(headers.get("host"))
        if problem is not None:
            await _refuse(scope, send, 400, problem)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method in WRITES and not self.forms(path):
            problem = self._type_problem(path, headers.get("content-type"))
            if problem is not None:
                await _refuse(scope, send, 415, problem)
                return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await _refuse(scope, send, 413, BodyTooLarge(self.max_body).detail)
            return
        await self._limited(scope, receive, send)

    def _host_problem(self, host: str | None) -> str | None:
        if host is None or self.any_host:
            return None
        name = host_name(host)
        if name in self.names or is_ip_address(name):
            return None
        return (f"this server does not answer to the name {name!r}; if it is its own, add "
                "it to TUNEPILOT_ALLOWED_HOSTS (comma-separated)")

    def _type_problem(self, path: str, content_type: str | None) -> str | None:
        media = (content_type or "").split(";")[0].strip().lower()
        if media == JSON or (media in PROTOBUF and path in self.protobuf_paths):
            return None
        wanted = "application/json or application/x-protobuf" \
            if path in self.protobuf_paths else JSON
        given = f"Content-Type {media!r}" if media else "no Content-Type"
        return (f"send {wanted}, even without a body (got {given}): browsers send other "
                "types from any site, so they are refused")

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            # Read outside FastAPI's handlers (the dashboard's form check): answer here.
            if started:
                raise
            await _refuse(scope, send, 413, exc.detail)


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
