"""``tunepilot report``: an HTML report and the best configuration of one study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from tunepilot.exceptions import TunepilotError
from tunepilot.runner import write_report

EXIT_USAGE = 2


def report_command(
    storage: Annotated[
        str, typer.Argument(metavar="STORAGE",
                            help="Storage URL (sqlite:///tunepilot.db) or SQLite file.")
    ],
    study: Annotated[str, typer.Option(help="The study to report on.")],
    out: Annotated[Path, typer.Option(help="Folder for report.html and best.yaml.")] = Path(
        "report"),
) -> None:
    """Write report.html (charts that open offline) and best.yaml for one study."""
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        report = write_report(storage=storage, study_name=study, out_dir=out)
    except TunepilotError as exc:
        err.print(f"[red]error: {escape(str(exc))}[/red]")
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(f"wrote {report.html} ({len(report.plots)} charts) and {report.best}")
    for title, why in report.skipped.items():
        err.print(f"[yellow]{escape(title)} not shown: {escape(why)}[/yellow]")
