"""Cross-site request forgery: what a dashboard form must show to change anything.

A browser attaches the dashboard's cookies to a form posted from any page of the
same site, and "same site" spans every port of ``127.0.0.1``; the no-token default
has no cookie to check at all. So every ``POST`` under ``/ui`` must:

- not come from elsewhere: an ``Origin`` other than the server's own (``null`` from a
  sandboxed frame or a ``data:`` page included), or a ``Sec-Fetch-Site`` other than
  ``same-origin`` or ``none``, is refused;
- carry the form token: an HMAC, under a key that lives only in this process, of a
  random per-browser cookie. Pages embed it (``csrf_token()`` in templates); a page
  of another origin cannot read it.

A request with a valid bearer token needs no form token: a browser never adds one on
its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from contextvars import ContextVar
from urllib.parse import parse_qs, urlsplit

COOKIE = "tunepilot_csrf"
FIELD = "csrf"
HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: ``Sec-Fetch-Site`` values of requests a page of this server made, or a person typed.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})

_current: ContextVar[str] = ContextVar("tunepilot_csrf_token", default="")


def current_token() -> str:
    """The form token of the request being answered (templates call it)."""
    return _current.get()


class FormTokens:
    """Form tokens bound to a browser's random cookie, under a per-process key.

    Example:
        >>> tokens = FormTokens()
        >>> cookie = tokens.new_cookie()
        >>> tokens.valid(cookie, tokens.token_for(cookie))
        True
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(32)

    def token_for(self, cookie: str) -> str:
        return hmac.new(self._key, cookie.encode(), hashlib.sha256).hexdigest()

    def valid(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        return hmac.compare_digest(self.token_for(cookie), token)

    def use(self, cookie: str) -> None:
        """Make ``cookie``'s token the one pages rendered for this request embed."""
        _current.set(self.token_for(cookie))


def foreign_origin(headers: dict[bytes, bytes], host: str) -> str | None:
    """Why a state-changing request seems to come from another site, or ``None``.

    Args:
        headers: the request's headers (lower-case names).
        host: the ``Host`` it was sent to.
    """
    site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
    if site and site not in OWN_FETCH_SITES:
        return f"the browser says this form comes from another site (Sec-Fetch-Site: {site})"
    origin = headers.get(b"origin")
    if origin is None:
        return None
    text = origin.decode("latin-1").strip()
    if text.lower() == "null":
        return "a form from a sandboxed or local page (Origin: null) cannot change anything"
    if urlsplit(text).netloc.lower() != host.lower():
        return f"form posted from another origin ({text})"
    return None


def form_token(body: bytes, headers: dict[bytes, bytes]) -> str | None:
    """The form token in the ``X-CSRF-Token`` header or the URL-encoded body."""
    given = headers.get(HEADER)
    if given is not None:
        return given.decode("latin-1").strip()
    kind = headers.get(b"content-type", b"").decode("latin-1")
    if not kind.startswith("application/x-www-form-urlencoded"):
        return None
    try:
        values = parse_qs(body.decode("utf-8"), max_num_fields=50).get(FIELD)
    except (UnicodeDecodeError, ValueError):
        return None
    return values[-1] if values else None
