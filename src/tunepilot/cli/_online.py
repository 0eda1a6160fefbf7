"""``tunepilot online ...``: the online optimizer's simulator and worlds."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tunepilot.exceptions import TunepilotError

EXIT_USAGE = 2

online_app = typer.Typer(
    name="online", help="Online optimizer: simulate it in a hidden world, list the shipped worlds.",
    no_args_is_help=True,
)


def run_simulation(*, world: str, seeds: int, first_seed: int = 1, direct: bool = False,
                   progress: bool = False) -> dict[str, Any]:
    """Simulate ``world`` for ``seeds`` seeds from ``first_seed``; the summary dict.

    Raises:
        SpecError: the world file is missing or invalid.
    """
    from tunepilot.online._simulator import SeedResult, simulate
    from tunepilot.online._world import load_world

    loaded = load_world(world)
    err = Console(stderr=True, highlight=False)

    def report(result: SeedResult) -> None:
        if progress:
            saved = 1 - result.cost["optimizer"] / result.cost["premium"]
            err.print(f"seed {result.seed}: cost -{saved:.1%}, quality "
                      f"{100 * (result.quality['optimizer'] - result.quality['premium']):+.2f} points, "
                      f"{result.rollbacks} rollbacks ({result.wall_s:.0f} s)")

    summary, _ = simulate(loaded, list(range(first_seed, first_seed + seeds)), api=not direct,
                          progress=report)
    summary["path"] = "direct ingest" if direct else "collector API (in-process ASGI)"
    return summary


def simulate_command(
    world: Annotated[str, typer.Option("--world", help="World YAML file, or a shipped world's name.")] = "default",
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="How many seeds.")] = 20,
    first_seed: Annotated[int, typer.Option("--first-seed", help="The first seed (evaluation seeds start at 1).")] = 1,
    direct: Annotated[bool, typer.Option("--direct", help="Call the optimizer's ingest instead of the collector API.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON, nothing else.")] = False,
) -> None:
    """Run the optimizer in a simulated world against premium-everywhere, the best single
    configuration, a random router at the same cost and an oracle."""
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        summary = run_simulation(world=world, seeds=seeds, first_seed=first_seed, direct=direct,
                                 progress=not json_output)
    except TunepilotError as exc:
        err.print(f"[red]error: {escape(str(exc))}[/red]")
        raise typer.Exit(EXIT_USAGE) from None
    if json_output:
        typer.echo(json.dumps(summary))
        return
    table = Table(title=f"world {summary['world']}, {len(summary['seeds'])} seeds")
    table.add_column("policy")
    table.add_column("cost saved vs premium", justify="right")
    table.add_column("quality vs premium (points)", justify="right")
    for name, saved in summary["cost_reduction_by_baseline"].items():
        table.add_row(name, f"{saved:.1%}", f"{summary['quality_delta_points_by_baseline'][name]:+.2f}")
    Console().print(table)
    capture = summary["oracle_capture"]
    typer.echo(
        f"oracle capture {capture:.0%}" if capture is not None else "oracle saves nothing here")
    typer.echo(f"quality delta lower 95% bound {summary['quality_delta_lower95']:+.2f} points; "
               f"p99 latency {summary['p99_latency_ms']:.0f} ms (budget "
               f"{summary['p99_latency_budget_ms']:.0f}); rollbacks {summary['rollbacks']}")


def worlds_command() -> None:
    """List the shipped worlds."""
    from tunepilot.online._world import builtin_worlds, load_world

    for name, path in sorted(builtin_worlds().items()):
        world = load_world(path)
        typer.echo(f"{name}: {world.description or world.name}")


online_app.command("simulate")(simulate_command)
online_app.command("worlds")(worlds_command)
