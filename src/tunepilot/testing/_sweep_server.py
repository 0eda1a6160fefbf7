"""A real sweep server on a free loopback port, in a thread or a child process, for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, timeout: float = 60.0) -> None:
    """Wait until ``GET url/health`` answers 200.

    Raises:
        TimeoutError: it did not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sweep server at {url} did not become healthy")
        time.sleep(0.05)


class SweepServer:
    """``tunepilot server`` for a test: the real app, real uvicorn, real database.

    In a thread by default (fast, in-process); with ``process=True`` as a child
    process that a test can kill (``kill()``) and start again (``start()``) on the
    same database and port. The database is migrated first.

    Example:
        .. code-block:: python

            from tunepilot.testing import SweepServer

            with SweepServer("sqlite:///sweeps.db", heartbeat_interval=1.0) as server:
                import tunepilot.sdk as wandb
                sweep_id = wandb.sweep(config, url=server.url)
    """

    def __init__(self, db: str, *, process: bool = False, **settings: Any) -> None:
        self.db = db
        self.process = process
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SweepServer:
        from tunepilot.server import upgrade_database

        upgrade_database(self.db)
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving and wait until healthy."""
        if self.process:
            env = dict(os.environ, TUNEPILOT_DB=self.db, TUNEPILOT_PORT=str(self.port))
            env.update({f"TUNEPILOT_{k.upper()}": str(v) for k, v in self.settings.items()})
            self._child = subprocess.Popen(
                [sys.executable, "-c", "from tunepilot.cli import main; main()", "server"],
                env=env,
            )
        else:
            import uvicorn

            from tunepilot.server import Settings, create_app

            app = create_app(Settings(db=self.db, port=self.port, **self.settings))
            config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                    access_log=False)
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._server.run, daemon=True)
            self._thread.start()
        wait_healthy(self.url)

    def kill(self) -> None:
        """SIGKILL the child process (``process=True`` only): no shutdown at all."""
        assert self._child is not None, "kill() needs SweepServer(..., process=True)"
        self._child.send_signal(signal.SIGKILL)
        self._child.wait()
        self._child = None

    def stop(self) -> None:
        """Shut down gracefully."""
        if self._child is not None:
            self._child.terminate()
            try:
                self._child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            self._child = None
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(timeout=30)
            self._server = None
