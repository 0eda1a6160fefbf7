"""Engines and sessions: SQLite in WAL mode with immediate transactions, or PostgreSQL.

On SQLite, reading is kept apart from writing: a read-only engine (``read_only=True``)
begins deferred transactions on query-only connections. In WAL mode such a
transaction reads a snapshot and never waits for the file lock, so the dashboard and
other GET requests answer while a writer holds it (a bulk import, a slow disk), and a
write attempted through it fails at once instead of taking the lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tunepilot.exceptions import DatabaseError

#: Seconds a SQLite writer waits for the file lock before giving up.
SQLITE_TIMEOUT = 60.0


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return url.startswith("sqlite")


def _sqlite_hooks(engine: Engine, *, pragmas: bool, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop pysqlite from issuing its own deferred BEGIN; the hook below begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if pragmas and not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        if pragmas:
            cursor.execute("PRAGMA foreign_keys=ON")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # A reader reads a WAL snapshot without the lock; a writer queues for it.
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for tunepilot's tables.

    On SQLite the file is switched to WAL (readers never block the writer) and every
    transaction starts with ``BEGIN IMMEDIATE``, so two writers queue on the file
    lock instead of failing with a stale snapshot. With ``read_only`` (SQLite only)
    transactions begin deferred on query-only connections: they never take or wait
    for the lock, and any write through them fails.
    """
    if not is_sqlite(url):
        # No pool_pre_ping: it costs a round trip per checkout, a fifth of a request's
        # queries; a connection broken by a database restart fails one request (503,
        # which the SDK retries) and is replaced.
        return create_engine(url, pool_size=10, max_overflow=30, pool_recycle=3600)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_TIMEOUT, "check_same_thread": False}
    )
    _sqlite_hooks(engine, pragmas=True, read_only=read_only)
    return engine


def make_storage(url: str, *, read_only: bool = False) -> optuna.storages.RDBStorage:
    """The Optuna storage over the same database (its tables are created if missing).

    On SQLite its transactions also begin immediately, as ``tunepilot run``'s storage
    does (``runner/_storage.py``): Optuna's check-then-set on a trial's state is
    otherwise not atomic across connections. With ``read_only`` (SQLite only) they
    begin deferred on query-only connections, as :func:`make_engine`'s do.
    """
    try:
        if is_sqlite(url):
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT,
                                                     "check_same_thread": False}}
            )
            _sqlite_hooks(storage.engine, pragmas=False, read_only=read_only)
            storage.engine.dispose()  # connections made while creating tables predate the hooks
            return storage
        return optuna.storages.RDBStorage(
            url, engine_kwargs={"pool_size": 10, "max_overflow": 30, "pool_recycle": 3600}
        )
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseError(f"cannot open the database {_safe(url)}: {exc.orig}") from None


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class Database:
    """Engine plus session factory: one session scope per unit of work.

    Database errors become :class:`~tunepilot.exceptions.DatabaseError` here, at the
    boundary, so routers only ever see domain errors.
    """

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, read_only=read_only)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def sqlite(self) -> bool:
        """Whether this is a SQLite database."""
        return is_sqlite(self.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        session = self._sessions()
        try:
            with session.begin():
                yield session
        except IntegrityError as exc:
            raise DatabaseError(f"the change conflicts with stored data: {exc.orig}") from None
        except (OperationalError, DBAPIError) as exc:
            raise DatabaseError(
                f"the database {_safe(self.url)} failed: {exc.orig}; check that it is "
                "reachable and not locked by another program"
            ) from None
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
