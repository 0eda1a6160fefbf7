"""``tunepilot studies``: the studies in a storage, with counts and best values."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tunepilot.exceptions import TunepilotError
from tunepilot.runner import list_studies

EXIT_USAGE = 2


def studies_command(
    storage: Annotated[
        str, typer.Argument(metavar="STORAGE",
                            help="Storage URL (sqlite:///tunepilot.db) or SQLite file.")
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON list, nothing else.")
    ] = False,
) -> None:
    """List the studies in STORAGE with their trial counts and best values."""
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        studies = list_studies(storage)
    except TunepilotError as exc:
        err.print(f"[red]error: {escape(str(exc))}[/red]")
        raise typer.Exit(EXIT_USAGE) from None
    if json_output:
        typer.echo(json.dumps(studies))
        return
    if not studies:
        typer.echo(f"{storage} holds no studies")
        return
    table = Table()
    for column in ("study", "directions", "trials", "complete", "pruned", "failed", "best"):
        table.add_column(column, justify="left" if column in ("study", "directions") else "right")
    for study in studies:
        states = study["states"]
        table.add_row(escape(study["name"]), ", ".join(study["directions"]),
                      str(study["n_trials"]), str(states.get("COMPLETE", 0)),
                      str(states.get("PRUNED", 0)), str(states.get("FAIL", 0)), _best(study))
    Console(soft_wrap=True, highlight=False).print(table)


def _best(study: dict[str, Any]) -> str:
    if study["pareto_size"] is not None:
        return f"{study['pareto_size']} on the Pareto front"
    return "–" if study["best_value"] is None else f"{study['best_value']:.6g}"
