"""Per-sweep mutual exclusion for the few operations that must never interleave.

Handing out a configuration (run cap, grid index, retry queue), finishing a run
(best run, target, end of sweep) and reaping lost runs each read a sweep's
counters and write them back. Inside one server process a ``threading.Lock`` per
sweep serialises them. On PostgreSQL a transaction-scoped advisory lock keyed by
the sweep id also serialises them across server processes. It is an advisory lock,
not ``SELECT ... FOR UPDATE``, because the work inside writes the sweep row
itself through other connections (ours and Optuna's), which a row lock would
block. SQLite is served by one process, and its immediate transactions already
serialise writers on the file.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tunepilot.exceptions import DatabaseError
from tunepilot.server.db import Database


def advisory_key(sweep_id: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock``."""
    digest = hashlib.blake2b(f"tunepilot.sweep:{sweep_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SweepLocks:
    """Hands out the per-sweep lock; see the module docstring for why it exists."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, sweep_id: str) -> Iterator[None]:
        """Hold the sweep's lock for the duration of the ``with`` block."""
        with self._guard:
            lock = self._locks.setdefault(sweep_id, threading.Lock())
        with lock:
            if self._database.sqlite:
                yield
                return
            try:
                connection = self._database.engine.connect()
                transaction = connection.begin()
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(sweep_id)}
                )
            except DBAPIError as exc:
                raise DatabaseError(f"cannot lock the sweep: {exc.orig}") from None
            try:
                yield
            finally:
                try:
                    transaction.commit()
                finally:
                    connection.close()
