"""Sample-efficiency benchmark (BENCHMARKS.md §1).

Run:     python -m benchmarks.hpo --suite synthetic --samplers random,tpe,blend --budget 30 --seeds 5
Centres: python -m benchmarks.hpo --suite synthetic --make-centres 300
Report:  python -m benchmarks.hpo --report benchmarks/results/hpo-synthetic-*.json

Every run writes ``benchmarks/results/hpo-<suite>-<stamp>.json`` with the raw value of
every trial, rewritten after each (task, sampler, seed) so an interrupted run keeps
what it measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import optuna
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks.hpo._bayesmark import bayesmark_tasks
from benchmarks.hpo._samplers import CONTROLLED, SAMPLERS, available, make_sampler
from benchmarks.hpo._score import markdown_table, plot, regret_curves, summary
from benchmarks.hpo._synthetic import synthetic_tasks
from benchmarks.hpo._tasks import Task

RESULTS = Path(__file__).resolve().parents[1] / "results"
CENTRES = Path(__file__).resolve().parent / "centres.json"
LABELS = {
    "blend-informative": "blend, controlled prior: informative (not an LLM)",
    "blend-misleading": "blend, controlled prior: misleading (not an LLM)",
    "blend": "blend, embedded SmolLM2-135M",
    "llm": "llm, embedded SmolLM2-135M",
    "tpe": "TPE (independent)",
    "tpe-mv": "TPE (multivariate, Optuna default)",
}


def tasks_for(suite: str, names: list[str] | None) -> list[Task]:
    tasks = synthetic_tasks() if suite == "synthetic" else bayesmark_tasks()
    if names:
        unknown = set(names) - {t.name for t in tasks}
        if unknown:
            raise SystemExit(f"unknown tasks {sorted(unknown)}; known: {[t.name for t in tasks]}")
        tasks = [t for t in tasks if t.name in names]
    return tasks


def run_once(task: Task, sampler: optuna.samplers.BaseSampler, budget: int) -> tuple[list[float], float]:
    study = optuna.create_study(direction=task.direction, sampler=sampler)
    distributions = task.space.to_optuna()

    def objective(trial: optuna.Trial) -> float:
        return task.objective({n: trial._suggest(n, d) for n, d in distributions.items()})

    started = time.perf_counter()
    study.optimize(objective, n_trials=budget)
    values = [t.value if t.value is not None else float("nan") for t in study.trials]
    return values, time.perf_counter() - started


def environment() -> dict[str, Any]:
    packages = ["tunepilot", "optuna", "numpy", "scikit-learn", "llama-cpp-python", "torch", "cmaes"]
    versions = {}
    for name in packages:
        try:
            versions[name] = version(name)
        except Exception:  # not installed
            versions[name] = None
    machine = {
        "platform": platform.platform(), "python": platform.python_version(),
        "processor": platform.machine(), "cpus": os.cpu_count(),
    }
    return {"machine": machine, "versions": versions}


def run(args: argparse.Namespace) -> Path:
    tasks = tasks_for(args.suite, args.tasks)
    samplers = args.samplers
    skipped = [s for s in samplers if not available(s) or s == "hebo"]
    for name in skipped:
        print(f"skipping {name}: its package is not installed", file=sys.stderr)
    samplers = [s for s in samplers if s not in skipped]
    centres = json.loads(CENTRES.read_text()) if any(s in CONTROLLED for s in samplers) else {}
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else RESULTS / f"hpo-{args.suite}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "suite": args.suite,
        "command": "python -m benchmarks.hpo " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        **environment(),
        "budget": args.budget,
        "seeds": list(range(args.seeds)),
        "samplers": samplers,
        "skipped": skipped,
        "labels": {s: LABELS.get(s, s) for s in samplers},
        "results": [],
    }
    jobs = [(t, s, seed) for s in samplers for t in tasks for seed in range(args.seeds)]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        bar = progress.add_task("runs", total=len(jobs))
        for task, name, seed in jobs:
            progress.update(bar, description=f"{name:>18} {task.name:<20} seed {seed}")
            sampler = make_sampler(name, task, seed, centres=centres, model=args.model)
            values, seconds = run_once(task, sampler, args.budget)
            entry = {"task": task.name, "direction": task.direction, "sampler": name, "seed": seed,
                     "values": values, "seconds": round(seconds, 3)}
            stats = getattr(sampler, "stats", None)
            if stats is not None:
                entry["llm_stats"] = stats.as_dict()
            record["results"].append(entry)
            out.write_text(json.dumps(record, indent=1))
            progress.advance(bar)
    return out


def make_centres(args: argparse.Namespace) -> None:
    """Best- and worst-known configurations per task from long random + TPE runs."""
    centres = json.loads(CENTRES.read_text()) if CENTRES.exists() else {}
    for task in tasks_for(args.suite, args.tasks):
        trials = []
        for sampler in (optuna.samplers.RandomSampler(seed=1000), optuna.samplers.TPESampler(seed=1000)):
            study = optuna.create_study(direction=task.direction, sampler=sampler)
            distributions = task.space.to_optuna()
            study.optimize(
                lambda t: task.objective({n: t._suggest(n, d) for n, d in distributions.items()}),
                n_trials=args.make_centres,
            )
            trials += [t for t in study.trials if t.value is not None]
        ranked = sorted(trials, key=lambda t: t.value, reverse=task.direction == "maximize")
        centres[task.name] = {
            "best": ranked[0].params, "best_value": ranked[0].value,
            "worst": ranked[-1].params, "worst_value": ranked[-1].value,
            "trials": len(trials),
        }
        print(f"{task.name}: best {ranked[0].value:.4g}, worst {ranked[-1].value:.4g}", file=sys.stderr)
        CENTRES.write_text(json.dumps(centres, indent=1, sort_keys=True))


def report(paths: list[str]) -> None:
    results: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    suite = ""
    for path in paths:
        data = json.loads(Path(path).read_text())
        results += data["results"]
        labels.update(data.get("labels", {}))
        suite = data["suite"]
    centres = json.loads(CENTRES.read_text()) if CENTRES.exists() else {}
    f_opt = {name: c["best_value"] for name, c in centres.items()}
    curves = regret_curves(results, f_opt)
    print(markdown_table(summary(curves), labels))
    png = Path(paths[0]).with_name(f"hpo-{suite}-regret.png")
    plot(curves, labels, f"{suite}: mean normalized regret ({len({r['task'] for r in results})} tasks)", str(png))
    print(f"\nplot: {png}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hpo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=("synthetic", "bayesmark"), default="synthetic")
    parser.add_argument("--samplers", type=lambda s: s.split(","), default=["random", "tpe", "blend"])
    parser.add_argument("--tasks", type=lambda s: s.split(","), default=None)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--model", default="local", help="model for the llm and blend samplers")
    parser.add_argument("--out", default=None, help="result file (default: benchmarks/results/...)")
    parser.add_argument("--make-centres", type=int, default=0, metavar="N",
                        help="compute best/worst-known centres with N random + N TPE trials per task")
    parser.add_argument("--report", nargs="+", default=None, metavar="FILE",
                        help="print the regret table of result files and write the plot")
    args = parser.parse_args(argv)
    unknown = set(args.samplers) - set(SAMPLERS)
    if unknown:
        parser.error(f"unknown samplers {sorted(unknown)}; choose from {', '.join(SAMPLERS)}")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("tunepilot").setLevel(logging.ERROR)
    if args.report:
        report(args.report)
    elif args.make_centres:
        make_centres(args)
    else:
        print(run(args))


if __name__ == "__main__":
    main()
