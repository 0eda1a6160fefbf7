"""``tunepilot sweep CONFIG.yaml`` and ``tunepilot agent SWEEP_ID``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from tunepilot._yaml import load_yaml
from tunepilot.exceptions import TunepilotError

EXIT_USAGE = 2
_err = Console(stderr=True, soft_wrap=True, highlight=False)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="Server URL (TUNEPILOT_URL; default http://127.0.0.1:8000)."),
]


def create_sweep(path: Path, *, project: str | None, url: str | None) -> str:
    """Read a W&B sweep config from YAML and create the sweep; return its id."""
    from tunepilot.sdk import sweep

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TunepilotError(f"{path}: cannot read the file: {exc}") from None
    config = load_yaml(text, source=str(path))
    if not isinstance(config, dict):
        raise TunepilotError(f"{path}: expected a mapping with method, metric and parameters")
    return sweep(config, project=project, url=url)


def sweep_command(
    config: Annotated[Path, typer.Argument(metavar="CONFIG.yaml", help="W&B sweep config.")],
    project: Annotated[str | None, typer.Option(help="Project of the sweep.")] = None,
    url: UrlOption = None,
) -> None:
    """Create a sweep from a W&B sweep config; print its id."""
    # The client's warnings (an unreachable server it retries) reach the terminal.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        sweep_id = create_sweep(config, project=project, url=url)
    except TunepilotError as exc:
        _err.print(f"[red]error: {escape(str(exc))}[/red]")
        raise typer.Exit(EXIT_USAGE) from None
    _err.print(f"created sweep {sweep_id}; start agents with: tunepilot agent {sweep_id}")
    typer.echo(sweep_id)


def agent_command(
    sweep_id: Annotated[str, typer.Argument(
        help="The sweep to work on (W&B's entity/project/sweep_id form works too)."
    )],
    count: Annotated[int | None, typer.Option(min=1, help="Runs to do before stopping.")] = None,
    url: UrlOption = None,
    grace_period: Annotated[
        float, typer.Option(help="Seconds between SIGTERM and SIGKILL when a run is stopped.")
    ] = 10.0,
) -> None:
    """Run the sweep's program for each configuration the server hands out."""
    from tunepilot.sdk import agent

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    try:
        n = agent(sweep_id, count=count, url=url, grace_period=grace_period)
    except TunepilotError as exc:
        _err.print(f"[red]error: {escape(str(exc))}[/red]")
        raise typer.Exit(EXIT_USAGE) from None
    _err.print(f"agent done after {n} runs")
