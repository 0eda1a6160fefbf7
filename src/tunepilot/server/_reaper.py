"""The reaper: a background thread that fails runs whose agent stopped sending heartbeats."""

from __future__ import annotations

import logging
import threading

from tunepilot.exceptions import TunepilotError
from tunepilot.server._runs import RunService

_logger = logging.getLogger("tunepilot.server")


class Reaper:
    """Calls :meth:`RunService.reap` every ``period`` seconds until stopped.

    Example:
        .. code-block:: python

            reaper = Reaper(RunService(ctx), period=1.0)
            reaper.start()
            ...
            reaper.stop()
    """

    def __init__(self, runs: RunService, *, period: float) -> None:
        self.runs = runs
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (a daemon: it never keeps the process alive)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="tunepilot-reaper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.runs.reap()
            except TunepilotError as exc:
                # A database hiccup must not kill the thread; the next round retries.
                _logger.warning("reaper: %s", exc)
            except Exception:  # noqa: BLE001 - a daemon thread has no caller to raise to
                _logger.exception("reaper failed; trying again in %.1f s", self.period)
