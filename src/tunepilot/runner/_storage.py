"""Open an Optuna storage by URL, safe for several processes on one SQLite file."""

from __future__ import annotations

from typing import Any

import optuna
from sqlalchemy import event


def open_storage(url: str, *, timeout: float = 60.0) -> optuna.storages.BaseStorage:
    """Open the Optuna storage at ``url`` (``sqlite:///file.db``, ``postgresql://...``).

    For SQLite, every transaction starts with ``BEGIN IMMEDIATE`` and waits up to
    ``timeout`` seconds for the file lock. Without this, pysqlite reads and writes
    outside one transaction, and two processes can both take the same enqueued trial
    (Optuna's check-then-set on the trial state is not atomic there), so a batch of
    LLM proposals could run a configuration twice.

    Example:
        .. code-block:: python

            storage = open_storage("sqlite:///tunepilot.db")
            study = optuna.create_study(storage=storage, study_name="s", load_if_exists=True)
    """
    if not url.startswith("sqlite"):
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    storage = optuna.storages.RDBStorage(
        url, engine_kwargs={"connect_args": {"timeout": timeout}}
    )
    engine = storage.engine

    @event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
        # Stop pysqlite from issuing its own deferred BEGIN; SQLAlchemy's begin does it.
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    # Connections made while Optuna created the schema predate the hooks.
    engine.dispose()
    return storage
