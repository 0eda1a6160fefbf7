"""The dashboard's gate: sessions, form checks, security headers, server timing.

The API keeps bearer tokens; a browser cannot send one on a link or a form, so
the dashboard's paths take a session cookie that the login form sets after
checking a token. The cookie is 256 random bits; the server keeps, in memory,
each session's expiry and a short tag of its token's digest. Logging out ends the
session for good (a saved copy of the cookie no longer works), a revoked token
ends its sessions, and a restart ends them all.

Every ``POST`` under ``/ui`` passes the checks of :mod:`tunepilot.server.web._csrf`,
login and logout included; a websocket under ``/ui`` needs the same origin and,
with a token configured, a session.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from http.cookies import SimpleCookie
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tunepilot.server._auth import bearer_presented, lockout_for
from tunepilot.server._guard import BodyTooLarge
from tunepilot.server._lockout import Lockout, client_address, send_locked_out
from tunepilot.server._settings import Settings
from tunepilot.server.web import _csrf

PREFIX = "/ui"
COOKIE = "tunepilot_session"
SESSION_SECONDS = 12 * 3600
#: Sessions kept at most; past it the ones that expire first are dropped.
MAX_SESSIONS = 10_000
#: Served without a session: the login form and the static files (CSS, JS, Plotly).
PUBLIC_PREFIXES = (f"{PREFIX}/login", f"{PREFIX}/static/")

_POLICY = (
    "default-src 'self'; script-src 'self'{extra}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
#: No inline script and no eval, so markup that slips into a page cannot run.
#: Plotly needs inline styles.
CSP = _POLICY.format(extra="")
#: For the parallel-coordinates tab only: Plotly's WebGL traces compile their drawing
#: code with ``new Function``. Inline scripts stay forbidden there too.
CSP_WEBGL = _POLICY.format(extra=" 'unsafe-eval'")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def digest_tag(digest: str) -> str:
    """The part of a token digest a session names (enough to tell tokens apart)."""
    return digest[:16]


class DashboardGate:
    """Session-cookie authentication, form checks and headers for the dashboard's paths.

    :class:`~tunepilot.server._auth.TokenAuth` hands it every request under
    ``/ui`` and ``/``. With no token configured anywhere, every page is open; forms
    still need their form token.

    Example:
        .. code-block:: python

            from tunepilot.server import Settings
            from tunepilot.server.web import DashboardGate

            gate = DashboardGate(Settings(token="s3cret"))
            cookie = gate.issue("0" * 64)
            assert gate.verify(cookie, frozenset({"0" * 64}))
            gate.revoke(cookie)
            assert not gate.verify(cookie, frozenset({"0" * 64}))
    """

    def __init__(
        self, settings: Settings, *, max_age: int = SESSION_SECONDS, lockout: Lockout | None = None
    ) -> None:
        self.settings = settings
        self.max_age = max_age
        self.lockout = lockout if lockout is not None else lockout_for(settings)
        self.forms = _csrf.FormTokens()
        self._sessions: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def handles(self, path: str) -> bool:
        return path == "/" or path == PREFIX or path.startswith(f"{PREFIX}/")

    def issue(self, digest: str, *, now: float | None = None) -> str:
        """A new session for a login with the token whose digest is ``digest``."""
        cookie = secrets.token_urlsafe(32)
        expires = (time.time() if now is None else now) + self.max_age
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._make_room()
            self._sessions[_key(cookie)] = (expires, digest_tag(digest))
        return cookie

    def verify(self, cookie: str | None, digests: frozenset[str]) -> bool:
        """Whether ``cookie`` is a live session of this server whose token is still valid."""
        if not cookie:
            return False
        with self._lock:
            found = self._sessions.get(_key(cookie))
        if found is None:
            return False
        expires, tag = found
        if expires < time.time():
            self.revoke(cookie)
            return False
        return any(hmac.compare_digest(tag, digest_tag(d)) for d in digests)

    def revoke(self, cookie: str | None) -> None:
        """End the session ``cookie`` (logging out): the cookie no longer works anywhere."""
        if cookie:
            with self._lock:
                self._sessions.pop(_key(cookie), None)

    def _make_room(self) -> None:
        now = time.time()
        for key in [k for k, (expires, _) in self._sessions.items() if expires < now]:
            del self._sessions[key]
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = sorted(self._sessions, key=lambda k: self._sessions[k][0])
            for key in oldest[: len(oldest) - MAX_SESSIONS + 1]:
                del self._sessions[key]

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, digests: frozenset[str]
    ) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, app, digests)
            return
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers", []))
        given = cookie_value(scope, _csrf.COOKIE)
        form_cookie = given if given and len(given) <= 64 else self.forms.new_cookie()
        fresh = form_cookie != given
        self.forms.use(form_cookie)
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                out = list(message.get("headers", []))
                if not any(name == b"content-security-policy" for name, _ in out):
                    out.append((b"content-security-policy", CSP.encode()))
                out += SECURITY_HEADERS
                out.append((b"server-timing", f"app;dur={elapsed:.1f}".encode()))
                if fresh:
                    out.append((b"set-cookie", _form_cookie_header(form_cookie, secure)))
                message = {**message, "headers": out}
            await send(message)

        unsafe = scope["method"] not in _csrf.SAFE_METHODS
        if unsafe:
            problem = _csrf.foreign_origin(headers, headers.get(b"host", b"").decode("latin-1"))
            if problem is not None:
                await _forbidden(send_with_headers, problem)
                return
        bearer = False
        if digests and b"authorization" in headers:
            address = client_address(scope)
            wait = self.lockout.retry_after(address)
            if wait > 0:
                await send_locked_out(send_with_headers, self.lockout, wait)
                return
            bearer = bearer_presented(scope, digests)
            if not bearer:
                self.lockout.fail(address)
        public = any(scope["path"].startswith(p) for p in PUBLIC_PREFIXES)
        if not (public or not digests or bearer
                or self.verify(cookie_value(scope, COOKIE), digests)):
            await _deny(scope, send_with_headers)
            return
        if unsafe and not bearer:
            body = await _read_form(receive, self.settings.max_form_bytes)
            token = _csrf.form_token(body, headers)
            if fresh or not self.forms.valid(form_cookie, token):
                await _forbidden(send_with_headers, "the form has no valid form token (the "
                                                    "page is too old, or another site sent "
                                                    "it); reload the page and send it again")
                return
            receive = _replay(body, receive)
        await app(scope, receive, send_with_headers)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, digests: frozenset[str]
    ) -> None:
        headers = dict(scope.get("headers", []))
        host = headers.get(b"host", b"").decode("latin-1")
        origin = {b"origin": headers[b"origin"]} if b"origin" in headers else {}
        same_origin = _csrf.foreign_origin(origin, host) is None
        signed_in = (not digests or bearer_presented(scope, digests)
                     or self.verify(cookie_value(scope, COOKIE), digests))
        if same_origin and signed_in:
            await app(scope, receive, send)
            return
        await send({"type": "websocket.close", "code": 1008})


def _key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8", "replace")).hexdigest()


def _form_cookie_header(value: str, secure: bool) -> bytes:
    flags = "; Secure" if secure else ""
    return f"{_csrf.COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{flags}".encode()


async def _read_form(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit, "TUNEPILOT_MAX_FORM_BYTES")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _forbidden(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def cookie_value(scope: Scope, name: str) -> str | None:
    """The value of the cookie ``name`` in the request, if any."""
    for header, value in scope.get("headers", []):
        if header == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no cookie
                return None
            morsel = jar.get(name)
            if morsel is not None:
                return morsel.value
    return None


def session_cookie(scope: Scope) -> str | None:
    """The session cookie's value in the request, if any."""
    return cookie_value(scope, COOKIE)


async def _deny(scope: Scope, send: Send) -> None:
    """A page asks for a login (303 to the form); anything else gets 401."""
    path = scope["path"]
    if scope["method"] in ("GET", "HEAD") and not path.startswith(f"{PREFIX}/api/"):
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + (f"?{query}" if query else "")
        location = f"{PREFIX}/login?next={quote(target, safe='')}"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b'{"detail": "log in at /ui/login first"}'
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
