"""HTTP client of the sweep server: base URL and token from arguments or the environment."""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Any

import httpx

from tunepilot._redact import redact
from tunepilot.exceptions import ClientError

DEFAULT_URL = "http://127.0.0.1:8000"
_RETRY_STATUS = frozenset({502, 503, 504})
#: Sent on every write, with or without a body: the server refuses writes of other
#: types, which browsers can send from any site.
_JSON = {"Content-Type": "application/json"}
_logger = logging.getLogger("tunepilot.sdk")


class Client:
    """Calls the REST API, retrying while the server is unreachable or restarting.

    Connection errors and HTTP 502/503/504 are retried with jittered backoff for up
    to ``retry_for`` seconds, so agents carry on when the server restarts; a warning
    on ``tunepilot.sdk`` says so when a request starts retrying, and another when it
    got through. Other errors raise :class:`~tunepilot.exceptions.ClientError` with the server's reason.

    Args:
        url: server URL; ``TUNEPILOT_URL`` or ``http://127.0.0.1:8000`` by default.
        token: API token; ``TUNEPILOT_TOKEN`` by default.
        timeout: seconds one request may take.
        retry_for: seconds to keep retrying an unreachable server.
        transport: an httpx transport (tests pass ``httpx.MockTransport``).

    Example:
        .. code-block:: python

            from tunepilot.sdk import Client

            client = Client("http://127.0.0.1:8000")
            sweeps = client.get("/sweeps")
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retry_for: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("TUNEPILOT_URL") or DEFAULT_URL).rstrip("/")
        self.token = token or os.environ.get("TUNEPILOT_TOKEN") or None
        self.retry_for = retry_for
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(
            base_url=self.url + "/api/v1", headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1{path}``."""
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        """POST ``/api/v1{path}`` with a JSON body."""
        return self.request("POST", path, json=body)

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
        retry_for: float | None = None,
    ) -> Any:
        """Send one request, retrying while the server is down; return the JSON answer.

        Raises:
            ClientError: the server refused the request, or stayed unreachable.
        """
        started = time.monotonic()
        window = self.retry_for if retry_for is None else retry_for
        deadline = started + window
        delay = 0.1
        retrying = False
        while True:
            try:
                response = self._http.request(method, path, json=json, params=params,
                                              headers=_JSON if method != "GET" else None)
            except httpx.TransportError as exc:
                if time.monotonic() >= deadline:
                    raise ClientError(
                        f"cannot reach the sweep server at {redact(self.url)}: {exc}; start "
                        "it with 'tunepilot server' or set TUNEPILOT_URL"
                    ) from None
                why = f"cannot reach it ({type(exc).__name__}: {exc})"
            else:
                if response.status_code not in _RETRY_STATUS or time.monotonic() >= deadline:
                    if retrying:
                        _logger.warning("the sweep server at %s answered after %.0f s",
                                        redact(self.url), time.monotonic() - started)
                    return _answer(method, path, response)
                why = f"it answered HTTP {response.status_code}"
            if not retrying:
                retrying = True
                _logger.warning(
                    "the sweep server at %s: %s; retrying for up to %.0f s (start it with "
                    "'tunepilot server', or point TUNEPILOT_URL or --url at it)",
                    redact(self.url), why, window)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)


def _answer(method: str, path: str, response: httpx.Response) -> Any:
    if response.status_code < 400:
        return response.json() if response.content else None
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    reason = body.get("reason") if isinstance(body, dict) else None
    if response.status_code == 401:
        detail = f"{detail or 'unauthorized'}; set TUNEPILOT_TOKEN or pass token="
    raise ClientError(
        f"{method} {path}: HTTP {response.status_code}: {detail or response.text[:200]}",
        status=response.status_code, reason=reason,
    )
