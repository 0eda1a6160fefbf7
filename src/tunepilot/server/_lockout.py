"""Failed logins and bearer tokens, counted per client address.

An address that fails ``max_failed_auth`` times within ``failed_auth_window`` seconds
is refused (HTTP 429) until its oldest counted failure is that old: guessing a
token then costs a window per few tries instead of running at the server's speed.
While an address is refused, even a right token is not checked, or the answer
would tell a guesser when it had found one.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from starlette.types import Scope, Send

#: Addresses remembered at most; the least recently failing are forgotten first.
MAX_ADDRESSES = 10_000


class Lockout:
    """Failure counts per client address, with a bounded memory.

    Example:
        >>> lockout = Lockout(max_failures=2, window=60.0)
        >>> lockout.fail("10.0.0.7"); lockout.fail("10.0.0.7")
        >>> lockout.retry_after("10.0.0.7") > 0
        True
    """

    def __init__(
        self, *, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def fail(self, address: str) -> None:
        """Count one failed attempt from ``address``."""
        now = self._clock()
        with self._lock:
            times = self._failures.pop(address, None) or deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[address] = times
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        now = self._clock()
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return 0.0
            while times and now - times[0] >= self.window:
                times.popleft()
            if not times:
                del self._failures[address]
                return 0.0
            if len(times) < self.max_failures:
                return 0.0
            return self.window - (now - times[0])

    def message(self, wait: float) -> str:
        return (f"too many failed logins or API tokens from this address "
                f"({self.max_failures} in {self.window:g} s); try again in {math.ceil(wait)} s "
                "(TUNEPILOT_MAX_FAILED_AUTH, TUNEPILOT_FAILED_AUTH_WINDOW)")


def client_address(scope: Scope) -> str:
    """The address the request came from (the proxy's, behind a proxy)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def send_locked_out(send: Send, lockout: Lockout, wait: float) -> None:
    """Answer 429 with ``Retry-After`` and a JSON ``detail``."""
    body = json.dumps({"detail": lockout.message(wait)}).encode()
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/json"),
                            (b"retry-after", str(math.ceil(wait)).encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
