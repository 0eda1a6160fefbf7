"""``tunepilot online ...``: the online optimizer's simulator and worlds, and its apps,
decisions (with evidence) and rollouts on a running server."""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
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
        typer.echo(json.dumps(_finite(summary), allow_nan=False))
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
    lower = summary["quality_delta_lower95"]
    bound = f"{lower:+.2f} points" if lower is not None else "n/a (needs 2 seeds or more)"
    typer.echo(f"quality delta lower 95% bound {bound}; "
               f"p99 latency {summary['p99_latency_ms']:.0f} ms (budget "
               f"{summary['p99_latency_budget_ms']:.0f}); rollbacks {summary['rollbacks']}")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None``: JSON has no numbers for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def worlds_command() -> None:
    """List the shipped worlds."""
    from tunepilot.online._world import builtin_worlds, load_world

    for name, path in sorted(builtin_worlds().items()):
        world = load_world(path)
        typer.echo(f"{name}: {world.description or world.name}")


UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="Server URL (TUNEPILOT_URL; default http://127.0.0.1:8000)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, nothing else.")]
PREFIX = "/api/v1/online"


def call_server(method: str, path: str, *, url: str | None = None, params: dict[str, Any] | None = None) -> Any:
    """One request to the online API of a running server; the decoded JSON answer.

    Raises:
        ClientError: the server cannot be reached or refused the request (its detail
            is in the message).
    """
    import httpx

    from tunepilot.exceptions import ClientError

    base = (url or os.environ.get("TUNEPILOT_URL") or "http://127.0.0.1:8000").rstrip("/")
    token = os.environ.get("TUNEPILOT_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method != "GET":
        headers["Content-Type"] = "application/json"  # the server refuses writes of other types
    try:
        response = httpx.request(method, f"{base}{PREFIX}{path}", params=params, headers=headers,
                                 timeout=30)
    except httpx.TransportError as exc:
        raise ClientError(f"cannot reach {base}: {exc}; start it with 'tunepilot server' or "
                          "set TUNEPILOT_URL") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        hint = "; set TUNEPILOT_TOKEN" if response.status_code == 401 else ""
        raise ClientError(f"{method} {PREFIX}{path}: {response.status_code} {detail}{hint}",
                          status=response.status_code)
    return response.json() if response.content else None


def _fail(exc: TunepilotError) -> typer.Exit:
    Console(stderr=True, soft_wrap=True, highlight=False).print(f"[red]error: {escape(str(exc))}[/red]")
    return typer.Exit(EXIT_USAGE)


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def apps_command(url: UrlOption = None, json_output: JsonOption = False) -> None:
    """List the applications of a running server."""
    try:
        apps = call_server("GET", "/apps", url=url)
    except TunepilotError as exc:
        raise _fail(exc) from None
    if json_output:
        typer.echo(json.dumps(apps))
        return
    for app in apps:
        typer.echo(f"{app['name']}: {len(app['variants'])} variants, baseline {app['baseline']}")


def decisions_command(
    app: Annotated[str, typer.Argument(help="Application name.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    url: UrlOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show an application's decisions, newest first; --json adds their evidence."""
    try:
        decisions = call_server("GET", f"/apps/{app}/decisions", url=url, params={"limit": limit})
    except TunepilotError as exc:
        raise _fail(exc) from None
    if json_output:
        typer.echo(json.dumps(decisions))
        return
    table = Table(title=f"decisions of {app}")
    for column in ("time (UTC)", "segment", "kind", "variant", "verdict", "reason"):
        table.add_column(column)
    for d in decisions:
        table.add_row(_when(d["time"]), d["segment"], d["kind"], d.get("variant") or "",
                      d.get("verdict") or "", escape(d.get("reason") or ""))
    Console().print(table)


def rollout_command(
    app: Annotated[str, typer.Argument(help="Application name.")],
    url: UrlOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show an application's rollout: candidate, step, state and gate verdicts."""
    try:
        rollout = call_server("GET", f"/apps/{app}/rollout", url=url)
    except TunepilotError as exc:
        raise _fail(exc) from None
    _print_rollout(app, rollout, json_output)


def _print_rollout(app: str, rollout: dict[str, Any] | None, json_output: bool) -> None:
    if json_output:
        typer.echo(json.dumps(rollout))
        return
    if rollout is None:
        typer.echo(f"{app} has no rollout")
        return
    step = rollout["steps"][min(rollout["step"], len(rollout["steps"]) - 1)]
    typer.echo(f"{app} [{rollout['segment']}]: {rollout['candidate']} against {rollout['baseline']}, "
               f"{rollout['state']}, step {rollout['step'] + 1}/{len(rollout['steps'])} ({step:.0%})")
    for gate in rollout["gates"]:
        typer.echo(f"  {_when(gate['time'])} {gate['fraction']:.0%}: {gate['verdict']} - {gate['reason']}")


def _control(action: str) -> Any:
    def command(app: Annotated[str, typer.Argument(help="Application name.")],
                url: UrlOption = None, json_output: JsonOption = False) -> None:
        try:
            rollout = call_server("POST", f"/apps/{app}/rollout/{action}", url=url)
        except TunepilotError as exc:
            raise _fail(exc) from None
        _print_rollout(app, rollout, json_output)

    command.__doc__ = {
        "pause": "Pause an application: rollouts hold where they are, no new changes.",
        "resume": "Resume an application; paused rollouts restart their step's analysis.",
        "abort": "Abort an application's rollouts: traffic goes back to the leaders.",
    }[action]
    return command


def delete_command(
    app: Annotated[str, typer.Argument(help="Application name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = None,
) -> None:
    """Delete an application with its state and decisions (abort its rollout first)."""
    if not yes:
        typer.confirm(f"Delete application {app!r} with all its decisions?", abort=True)
    try:
        call_server("DELETE", f"/apps/{app}", url=url)
    except TunepilotError as exc:
        raise _fail(exc) from None
    typer.echo(f"deleted {app}")


online_app.command("simulate")(simulate_command)
online_app.command("worlds")(worlds_command)
online_app.command("apps")(apps_command)
online_app.command("decisions")(decisions_command)
online_app.command("rollout")(rollout_command)
online_app.command("delete")(delete_command)
for _action in ("pause", "resume", "abort"):
    online_app.command(_action)(_control(_action))
