"""The ``tunepilot`` command: a Typer app whose commands are thin layers over library calls."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from tunepilot.cli._online import online_app
from tunepilot.cli._report import report_command
from tunepilot.cli._run import run_command
from tunepilot.cli._server import db_app, server_command, token_app
from tunepilot.cli._studies import studies_command
from tunepilot.cli._sweep import agent_command, sweep_command

app = typer.Typer(
    name="tunepilot",
    help="LLM-guided hyperparameter optimization on Optuna.",
    no_args_is_help=True,
    add_completion=False,
    # Locals can hold API keys and user data; a traceback should not print them.
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"tunepilot {version('tunepilot')}")
        except PackageNotFoundError:
            typer.echo("tunepilot (not installed as a package)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:
    """LLM-guided hyperparameter optimization on Optuna."""


app.command("run")(run_command)
app.command("report")(report_command)
app.command("studies")(studies_command)
app.command("server")(server_command)
app.command("sweep")(sweep_command)
app.command("agent")(agent_command)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(online_app, name="online")


def main() -> None:
    """Entry point of the ``tunepilot`` console script."""
    app()
