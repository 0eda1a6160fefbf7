"""Alembic migrations shipped inside the package: upgrade, downgrade, and the check made on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy.exc import DBAPIError

from tunepilot._redact import redact
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
        DatabaseError: the database cannot be reached, is newer than this tunepilot,
            or a migration failed.
    """
    url = normalize_db_url(url)
    _check_known(url, database_revision(url))
    make_storage(url).engine.dispose()  # Optuna creates and migrates its own tables
    _migrate(url, "upgrade", revision)
    return database_revision(url) or ""


def downgrade_database(url: str, revision: str) -> str:
    """Migrate tunepilot's tables in the database at ``url`` back to ``revision``.

    What later migrations added (tables, columns and what they hold) is dropped.
    Optuna's tables are left as they are.

    Args:
        url: the database.
        revision: the migration to go back to (``0005``), or ``base`` for none of
            tunepilot's tables.

    Returns:
        The revision the database is at afterwards (``""`` at ``base``).

    Raises:
        DatabaseError: the database cannot be reached, is newer than this tunepilot,
            ``revision`` is unknown or later than the database's, or a migration failed.
    """
    url = normalize_db_url(url)
    current = database_revision(url)
    _check_known(url, current)
    if revision != "base":
        scripts = ScriptDirectory.from_config(_config())
        if not _known(revision):
            known = ", ".join(reversed([s.revision for s in scripts.walk_revisions()]))
            raise DatabaseError(
                f"no migration {revision!r}; this tunepilot knows {known} (and 'base')")
        if current is None or revision not in {r.revision for r in scripts.iterate_revisions(
                current, "base")}:
            raise DatabaseError(
                f"the database is at migration {current or 'base'}, before {revision}; "
                f"'tunepilot db upgrade' goes forward")
    _migrate(url, "downgrade", revision)
    return database_revision(url) or ""


def _migrate(url: str, direction: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = _config()
            config.attributes["connection"] = connection
            step = command.upgrade if direction == "upgrade" else command.downgrade
            step(config, revision)
    except DBAPIError as exc:
        raise DatabaseError(f"migrating the database failed: {exc.orig}") from None
    except (CommandError, RevisionError) as exc:
        raise DatabaseError(f"migrating the database failed: {exc}") from None
    finally:
        engine.dispose()


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(_config()).get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


def _check_known(url: str, current: str | None) -> None:
    """Refuse a database migrated by a newer tunepilot: this one cannot read or move it."""
    if current is None or _known(current):
        return
    head = head_revision()
    raise DatabaseError(
        f"the database is at migration {current}, newer than this tunepilot (its newest is "
        f"{head}); use the newer tunepilot, or go back with it first: 'tunepilot db "
        f"downgrade {head} --db {redact(url)}' (back the database up first)"
    )


def check_database(url: str) -> None:
    """Raise unless the database is at the newest migration, saying what to run.

    Raises:
        DatabaseError: the database is not migrated (or is newer than this tunepilot).
    """
    current, head = database_revision(url), head_revision()
    if current == head:
        return
    shown = redact(url)
    if current is None:
        raise DatabaseError(
            f"the database has no tunepilot tables yet; create them with "
            f"'tunepilot db upgrade --db {shown}' (or start the server with --migrate)"
        )
    _check_known(url, current)
    raise DatabaseError(
        f"the database is at migration {current}, this tunepilot needs {head}; run "
        f"'tunepilot db upgrade --db {shown}' (back it up first)"
    )
