"""Bearer-token authentication for every route of the app, except a public allowlist.

It is ASGI middleware rather than a router dependency so that nothing mounted later
(the dashboard, the online optimizer, static files) can be left open by forgetting
a dependency: a route is protected unless its exact path is in :data:`PUBLIC_PATHS`.

Authentication is on when ``TUNEPILOT_TOKEN`` is set or the database holds tokens
made with ``tunepilot token create``. Tokens are compared by SHA-256 digest in
constant time. Wrong tokens count against the client's address
(:class:`~tunepilot.server._lockout.Lockout`): past the limit it gets 429.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Iterable
from typing import Protocol

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from tunepilot.server._lockout import Lockout, client_address, send_locked_out
from tunepilot.server._settings import Settings
from tunepilot.server.db import Database, hash_token, token_digests

#: Paths served without a token: the liveness probe and the API's own description.
PUBLIC_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
#: Seconds a read of the token table is reused; a new token works within this delay.
TOKEN_CACHE_SECONDS = 5.0

_UNAUTHORIZED = json.dumps({
    "detail": "missing or invalid API token; send the header 'Authorization: Bearer <token>' "
              "with TUNEPILOT_TOKEN or a token from 'tunepilot token create'"
}).encode()


class SessionGate(Protocol):
    """Authenticates some paths (the dashboard's) by a session cookie instead.

    :class:`TokenAuth` hands every request whose path the gate ``handles`` to it,
    with the current token digests; the gate lets it through or answers itself.
    """

    def handles(self, path: str) -> bool: ...

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, digests: frozenset[str]
    ) -> None: ...


def lockout_for(settings: Settings) -> Lockout:
    """The failure counter that ``settings`` asks for."""
    return Lockout(max_failures=settings.max_failed_auth, window=settings.failed_auth_window)


class TokenAuth:
    """ASGI middleware: refuse requests without a valid bearer token (HTTP 401)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        database: Database,
        public: Iterable[str] = PUBLIC_PATHS,
        gate: SessionGate | None = None,
        lockout: Lockout | None = None,
    ) -> None:
        self.app = app
        self.lockout = lockout if lockout is not None else lockout_for(settings)
        self.public = frozenset(public)
        self.gate = gate
        self._configured = (
            {hash_token(settings.auth_token)} if settings.auth_token else set()
        )
        self._database = database
        self._cache: tuple[float, frozenset[str]] = (-1e9, frozenset())
        self._lock = threading.Lock()

    def digests(self) -> frozenset[str]:
        """Digests of every valid token (configured and from the database), cached briefly."""
        with self._lock:
            at, digests = self._cache
            if time.monotonic() - at < TOKEN_CACHE_SECONDS:
                return digests
            digests = frozenset(self._configured | token_digests(self._database))
            self._cache = (time.monotonic(), digests)
            return digests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        digests = await anyio.to_thread.run_sync(self.digests)
        if self.gate is not None and self.gate.handles(scope["path"]):
            await self.gate(scope, receive, send, self.app, digests)
            return
        if not digests:
            await self.app(scope, receive, send)
            return
        if _authorization(scope) is not None:
            address = client_address(scope)
            wait = self.lockout.retry_after(address)
            if wait > 0:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                else:
                    await send_locked_out(send, self.lockout, wait)
                return
            if _presented(scope, digests):
                await self.app(scope, receive, send)
                return
            self.lockout.fail(address)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({
            "type": "http.response.start", "status": 401,
            "headers": [(b"content-type", b"application/json"),
                        (b"www-authenticate", b"Bearer"),
                        (b"content-length", str(len(_UNAUTHORIZED)).encode())],
        })
        await send({"type": "http.response.body", "body": _UNAUTHORIZED})


def bearer_presented(scope: Scope, digests: frozenset[str]) -> bool:
    """Whether the request carries ``Authorization: Bearer`` with one of ``digests``."""
    return _presented(scope, digests)


def _authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text: str = value.decode("latin-1")
            return text
    return None


def _presented(scope: Scope, digests: frozenset[str]) -> bool:
    value = _authorization(scope)
    if value is None:
        return False
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    digest = hash_token(token.strip())
    return any(hmac.compare_digest(digest, known) for known in digests)
