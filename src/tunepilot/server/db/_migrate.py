"""Alembic migrations shipped inside the package: upgrade, and the check made on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError

from tunepilot.exceptions import DatabaseError
from tunepilot.server.db._engine import make_engine, make_storage
from tunepilot.server.db._models import VERSION_TABLE
from tunepilot.server._settings import normalize_db_url

_SCRIPTS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def head_revision() -> str:
    """The newest migration this version of tunepilot ships."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def database_revision(url: str) -> str | None:
    """The migration the database at ``url`` is at, or None for a database without our tables.

    Raises:
        DatabaseError: the database cannot be reached.
    """
    engine = make_engine(normalize_db_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": VERSION_TABLE}
            )
            return context.get_current_revision()
    except DBAPIError as exc:
        raise DatabaseError(f"cannot read the database: {exc.orig}") from None
    finally:
        engine.dispose()


def upgrade_database(url: str, revision: str = "head") -> str:
    """Create or migrate tunepilot's tables (and Optuna's) in the database at ``url``.

    Returns:
        The revision the database is at afterwards.

    Raises:
        DatabaseError: the database cannot be reached or a migration failed.
    """
    url = normalize_db_url(url)
    make_storage(url).engine.dispose()  # Optuna creates and migrates its own tables
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = _config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except DBAPIError as exc:
        raise DatabaseError(f"migrating the database failed: {exc.orig}") from None
    finally:
        engine.dispose()
    return database_revision(url) or ""


def check_database(url: str) -> None:
    """Raise unless the database is at the newest migration, saying what to run.

    Raises:
        DatabaseError: the database is not migrated (or is newer than this tunepilot).
    """
    current, head = database_revision(url), head_revision()
    if current == head:
        return
    if current is None:
        raise DatabaseError(
            f"the database has no tunepilot tables yet; create them with "
            f"'tunepilot db upgrade --db {url}' (or start the server with --migrate)"
        )
    raise DatabaseError(
        f"the database is at migration {current}, this tunepilot needs {head}; run "
        f"'tunepilot db upgrade --db {url}' (back it up first), or upgrade tunepilot if "
        "the database is newer"
    )
