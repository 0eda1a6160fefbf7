"""``tunepilot server``, ``tunepilot db upgrade|downgrade|current`` and ``tunepilot token create|list|revoke``."""

from __future__ import annotations

import errno
import json
import socket
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from tunepilot.exceptions import TunepilotError

EXIT_USAGE = 2
_err = Console(stderr=True, soft_wrap=True, highlight=False)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (TUNEPILOT_DB; default sqlite:///tunepilot.db)."),
]


def _fail(message: str) -> typer.Exit:
    _err.print(f"[red]error: {escape(message)}[/red]")
    return typer.Exit(EXIT_USAGE)


def _settings(**given: Any) -> Any:
    try:
        from pydantic import ValidationError

        from tunepilot.server import Settings
    except ImportError as exc:
        raise _fail(str(exc)) from None
    try:
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        # One line per problem, without pydantic's links and the input (it may be a secret).
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors())
        raise _fail(problems) from None


def serve(settings: Any, *, migrate: bool = False, log_level: str = "warning") -> None:
    """Check the database and the auth rule, then serve until interrupted.

    Raises:
        TunepilotError: the port is taken, the database is not ready, or a non-loopback
            host has no token (:func:`~tunepilot.server.create_app` refuses it).
    """
    import optuna
    import uvicorn

    from tunepilot.server import create_app, upgrade_database

    # Bound first, and served from that socket: a taken port is said before anything
    # else happens, and no other process can take it between the check and the serving.
    sock = bind(settings.host, settings.port)
    try:
        if migrate:
            upgrade_database(settings.db_url)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        app = create_app(settings)
        _err.print(f"tunepilot server on http://{settings.host}:{settings.port} "
                   f"(dashboard at /ui, API under /api/v1, docs at /docs)")
        config = uvicorn.Config(app, host=settings.host, port=settings.port,
                                log_level=log_level, access_log=log_level in ("info", "debug"))
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port``, as uvicorn binds one.

    Raises:
        TunepilotError: the port is taken, or the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise TunepilotError(
                f"port {port} on {host} is taken (another 'tunepilot server'?); stop that "
                f"process, or pick another port with --port or TUNEPILOT_PORT") from None
        raise TunepilotError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except OverflowError:
        sock.close()
        raise TunepilotError(f"port {port} is not a TCP port (0 to 65535)") from None
    return sock


def server_command(
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="Create or migrate the tables first.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the sweep API (and Optuna's tables) from one database.

    Binds 127.0.0.1 unless told otherwise; any other address needs TUNEPILOT_TOKEN
    or a token from 'tunepilot token create'.
    """
    settings = _settings(db=db, host=host, port=port)
    try:
        serve(settings, migrate=migrate, log_level=log_level)
    except TunepilotError as exc:
        raise _fail(str(exc)) from None


db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate tunepilot's tables (and Optuna's) to this version."""
    settings = _settings(db=db)
    from tunepilot.server import upgrade_database

    try:
        revision = upgrade_database(settings.db_url)
    except TunepilotError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"database at migration {revision}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(
        help="The migration to go back to (see 'tunepilot db current'), or 'base'.")],
    db: DbOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Migrate tunepilot's tables back to REVISION, to run an older tunepilot on them.

    What later migrations added is dropped; back the database up first.
    """
    settings = _settings(db=db)
    from tunepilot.server.db import downgrade_database

    if not yes:
        typer.confirm(f"Migrate the database back to {revision}? What later migrations "
                      "added is dropped", abort=True, err=True)
    try:
        now = downgrade_database(settings.db_url, revision)
    except TunepilotError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"database at migration {now or 'base'}")


@db_app.command("current")
def db_current(db: DbOption = None) -> None:
    """Print the database's migration (or 'none')."""
    settings = _settings(db=db)
    from tunepilot.server import database_revision

    try:
        typer.echo(database_revision(settings.db_url) or "none")
    except TunepilotError as exc:
        raise _fail(str(exc)) from None


@token_app.command("create")
def token_create(
    db: DbOption = None,
    name: Annotated[str, typer.Option(help="A label for the token.")] = "default",
) -> None:
    """Make an API token and print it once; only its hash is stored."""
    settings = _settings(db=db)
    from tunepilot.server import create_token
    from tunepilot.server.db import check_database

    try:
        check_database(settings.db_url)
        token = create_token(settings.db_url, name=name)
    except TunepilotError as exc:
        raise _fail(str(exc)) from None
    typer.echo(token)


@token_app.command("list")
def token_list(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the stored tokens: id, name, creation time and fingerprint (never the token)."""
    settings = _settings(db=db)
    from tunepilot.server.db import check_database, list_tokens

    try:
        check_database(settings.db_url)
        tokens = list_tokens(settings.db_url)
    except TunepilotError as exc:
        raise _fail(str(exc)) from None
    rows = [{"id": t.id, "name": t.name, "created_at": t.created_at.isoformat(timespec="seconds"),
             "fingerprint": t.fingerprint} for t in tokens]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        _err.print("no tokens stored; make one with 'tunepilot token create'")
        return
    for row in rows:
        typer.echo(f"{row['id']}\t{row['name']}\t{row['created_at']}\t{row['fingerprint']}")


@token_app.command("revoke")
def token_revoke(
    which: Annotated[str, typer.Argument(metavar="ID_OR_NAME",
                                         help="A token's id, or a name (all tokens of it).")],
    db: DbOption = None,
) -> None:
    """Delete a token: the server refuses it within seconds and ends its dashboard sessions."""
    settings = _settings(db=db)
    from tunepilot.server.db import check_database, revoke_token

    try:
        check_database(settings.db_url)
        revoked = revoke_token(settings.db_url, which)
    except TunepilotError as exc:
        raise _fail(str(exc)) from None
    for token in revoked:
        typer.echo(f"revoked token {token.id} ({token.name}, {token.fingerprint})")
