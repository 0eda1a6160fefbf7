"""The dashboard's gate: a signed session cookie, security headers, server timing.

The API keeps bearer tokens; a browser cannot send one on a link or a form, so
the dashboard's paths take a session cookie that the login form sets after
checking a token. The cookie holds an expiry and a short tag of the token's
digest, signed with HMAC-SHA256: nothing is stored on the server, and a revoked
database token ends its sessions. The signing key is derived from
``TUNEPILOT_TOKEN`` when it is set; with only database tokens it is random per
process, so sessions end when the server restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from http.cookies import SimpleCookie
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tunepilot.server._auth import bearer_presented
from tunepilot.server._settings import Settings

PREFIX = "/ui"
COOKIE = "tunepilot_session"
SESSION_SECONDS = 12 * 3600
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
    """The part of a token digest a cookie names (enough to tell tokens apart)."""
    return digest[:16]


class DashboardGate:
    """Session-cookie authentication and headers for the dashboard's paths.

    :class:`~tunepilot.server._auth.TokenAuth` hands it every request under
    ``/ui`` and ``/``. With no token configured anywhere, everything passes.

    Example:
        .. code-block:: python

            from tunepilot.server import Settings
            from tunepilot.server.web import DashboardGate

            gate = DashboardGate(Settings(token="s3cret"))
            cookie = gate.issue("0" * 64)
            assert gate.verify(cookie, frozenset({"0" * 64}))
    """

    def __init__(self, settings: Settings, *, max_age: int = SESSION_SECONDS) -> None:
        self.settings = settings
        self.max_age = max_age
        token = settings.auth_token
        self._key = (
            hmac.new(token.encode(), b"tunepilot dashboard session", hashlib.sha256).digest()
            if token else secrets.token_bytes(32)
        )

    def handles(self, path: str) -> bool:
        return path == "/" or path == PREFIX or path.startswith(f"{PREFIX}/")

    def issue(self, digest: str, *, now: float | None = None) -> str:
        """A cookie value for a login with the token whose digest is ``digest``."""
        expires = int((time.time() if now is None else now) + self.max_age)
        payload = f"{expires}.{digest_tag(digest)}"
        return f"{payload}.{self._sign(payload)}"

    def verify(self, cookie: str | None, digests: frozenset[str]) -> bool:
        """Whether ``cookie`` is ours, unexpired, and its token is still valid."""
        if not cookie or cookie.count(".") != 2:
            return False
        payload, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._sign(payload)):
            return False
        expires, _, tag = payload.partition(".")
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return any(hmac.compare_digest(tag, digest_tag(d)) for d in digests)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, digests: frozenset[str]
    ) -> None:
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                if not any(name == b"content-security-policy" for name, _ in headers):
                    headers.append((b"content-security-policy", CSP.encode()))
                headers += SECURITY_HEADERS
                headers.append((b"server-timing", f"app;dur={elapsed:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = scope["path"]
        public = any(path.startswith(p) for p in PUBLIC_PREFIXES)
        if (public or not digests or bearer_presented(scope, digests)
                or self.verify(session_cookie(scope), digests)):
            await app(scope, receive, send_with_headers)
            return
        await _deny(scope, send_with_headers)


def session_cookie(scope: Scope) -> str | None:
    """The session cookie's value in the request, if any."""
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no session
                return None
            morsel = jar.get(COOKIE)
            if morsel is not None:
                return morsel.value
    return None


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
