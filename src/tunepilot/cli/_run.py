"""``tunepilot run``: run the studies a YAML spec declares."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, redirect_stdout
from pathlib import Path
from typing import Annotated

import optuna
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tunepilot.exceptions import TunepilotError
from tunepilot.runner import RunResult, load_studies, run_studies

#: Exit status for errors the user can fix: a bad spec, objective, storage or model.
EXIT_USAGE = 2
#: Exit status when every trial of the run failed.
EXIT_ALL_FAILED = 1
#: Exit status after Ctrl-C, as shells report SIGINT.
EXIT_INTERRUPTED = 130


def run_command(
    spec: Annotated[Path, typer.Argument(metavar="SPEC.yaml", help="The YAML study spec.")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(metavar="[KEY=VALUE]...",
                       help="Changes to every study, in Hydra's syntax: n_trials=50, "
                            "sampler.name=tpe, parameters.lr='interval(0,1)'."),
    ] = None,
    study: Annotated[
        str | None, typer.Option(help="Run only the study of this name.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Storage URL, overriding the spec's (e.g. sqlite:///runs.db)."),
    ] = None,
    n_trials: Annotated[
        int | None,
        typer.Option("--n-trials", min=1,
                     help="The study's budget of trials, earlier runs included."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the sampler.")] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the result, nothing else.")
    ] = False,
) -> None:
    """Run the studies declared in SPEC.yaml and show each one's best trial.

    Trials are stored as they finish. Running again resumes each study up to its
    n_trials; a finished study gets no more trials until n_trials is raised. With
    --json, one JSON object: the result, or {"studies": [...]} for several studies.
    """
    # One INFO line per trial would bury the progress bar; failures stay visible.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        loaded = load_studies(spec, overrides=overrides or (), only=study)
        with _stdout_to_stderr() if json_output else nullcontext():
            results = run_studies(
                loaded,
                storage=storage,
                n_trials=n_trials,
                seed=seed,
                progress=not json_output and err.is_terminal,
            )
    except TunepilotError as exc:
        err.print(f"[red]error: {escape(str(exc))}[/red]")
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:  # before the first trial, e.g. while a model loads
        err.print("[yellow]interrupted before any trial ran[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED) from None

    if json_output:
        dicts = [r.as_dict() for r in results]
        typer.echo(json.dumps(dicts[0] if len(loaded) == 1 else {"studies": dicts}, default=str))
    else:
        out = Console(soft_wrap=True, highlight=False)
        for result in results:
            _print_result(result, out)
    result = results[-1]
    if result.interrupted:
        err.print(
            f"[yellow]interrupted: finished trials are stored in {escape(result.storage)}; "
            "run the same command to continue[/yellow]"
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    for result in results:
        if result.n_trials and not result.states.get("COMPLETE") and not result.states.get(
                "PRUNED"):
            first = result.failures[0] if result.failures else {"number": "?",
                                                                "reason": "unknown"}
            err.print(
                f"[red]{result.study_name}: all {result.n_trials} trials failed; trial "
                f"{first['number']}: {escape(str(first['reason']))}[/red]"
            )
            raise typer.Exit(EXIT_ALL_FAILED)


def _print_result(result: RunResult, console: Console) -> None:
    if result.n_trials == 0 and result.budget is not None:
        console.print(
            f"study {escape(result.study_name)!r} already has {result.total_trials} trials "
            f"(n_trials: {result.budget}); raise n_trials to run more"
        )
    if result.best_trials:
        table = Table(title=f"Pareto front of study {result.study_name!r} ({result.direction})")
        table.add_column("trial", justify="right")
        table.add_column("values", justify="right")
        table.add_column("parameters")
        for best in result.best_trials[:10]:
            table.add_row(str(best["number"]), ", ".join(f"{v:.6g}" for v in best["values"]),
                          escape(", ".join(f"{k}={_shown(v)}" for k, v in best["params"].items())))
        console.print(table)
    if result.best_value is not None:
        table = Table(title=f"best trial #{result.best_number} of study {result.study_name!r}")
        table.add_column("", style="bold")
        table.add_column("value", justify="right")
        table.add_row(f"objective ({result.direction})", f"[green]{result.best_value:.6g}[/green]",
                      end_section=True)
        for name, value in result.best_params.items():
            table.add_row(escape(name), escape(_shown(value)))
        console.print(table)
    console.print(_summary_line(result))
    if result.failures:
        first = result.failures[0]
        console.print(
            f"[yellow]{len(result.failures)} failed; first, trial {first['number']}: "
            f"{escape(str(first['reason']))}[/yellow]"
        )


def _shown(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _summary_line(result: RunResult) -> str:
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(result.states.items()))
    parts = [f"{result.n_trials} trials ({states or 'none'})"]
    if result.steps:
        parts.append(f"{result.steps} steps reported")
    if result.sources:
        parts.append("sources: " + ", ".join(f"{k} {v}" for k, v in sorted(result.sources.items())))
        parts.append(f"{result.repaired_trials} repaired")
    if result.bases:
        parts.append("blend base: " + ", ".join(f"{k} {v}" for k, v in sorted(result.bases.items())))
    parts.append(f"stored in {escape(result.storage)}")
    return " · ".join(parts)


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout to stderr, so ``--json`` output stays parseable.

    The file descriptor is redirected too when there is one: native code such as
    llama.cpp writes to it directly, past Python's ``sys.stdout``.
    """
    sys.stdout.flush()
    try:
        out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        out_fd = err_fd = -1
    saved = os.dup(out_fd) if out_fd >= 0 else -1
    try:
        if saved >= 0:
            os.dup2(err_fd, out_fd)
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        if saved >= 0:
            os.dup2(saved, out_fd)
            os.close(saved)
