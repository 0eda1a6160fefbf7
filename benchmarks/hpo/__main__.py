"""Sample-efficiency benchmark (BENCHMARKS.md §1).

Run:     python -m benchmarks.hpo --suite synthetic --samplers random,tpe,blend --budget 30 --seeds 5
Centres: python -m benchmarks.hpo --suite synthetic --make-centres 300
Report:  python -m benchmarks.hpo --report benchmarks/results/hpo-synthetic-*.json [--paired tpe-mv]
Resume:  python -m benchmarks.hpo --resume benchmarks/results/hpo-bayesmark-<stamp>.json
Advice:  python -m benchmarks.hpo --suite bayesmark --record-advice 10
Merge:   python -m benchmarks.hpo --merge old.json=gate new.json=zrule --out tuning.json

Every run writes ``benchmarks/results/hpo-<suite>-<stamp>.json`` with the raw value of
every trial, rewritten after each (task, sampler, seed) so an interrupted run keeps
what it measured; runs of LLM samplers also record which part chose each trial and
the blend's β (``parts``, ``betas``). Runs go seed by seed (every sampler on every
task for seed 0, then seed 1, ...), so a run stopped early still compares all
samplers on the seeds it finished; ``--resume`` carries on with the same settings and
skips what is done. ``--jobs N`` runs N (task, sampler, seed) jobs at once in separate processes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
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

from benchmarks._common import commit
from benchmarks.hpo._bayesmark import bayesmark_tasks
from benchmarks.hpo._samplers import (
    ADVICE,
    CONTROLLED,
    FIXED_BASE,
    SAMPLERS,
    Recorder,
    available,
    first_trial,
    make_sampler,
    missing,
)
from benchmarks.hpo._score import (
    best_value_table,
    complete_seeds,
    markdown_table,
    paired,
    paired_table,
    plot,
    regret_curves,
    run_differences,
    runs_table,
    summary,
    task_table,
)
from benchmarks.hpo._synthetic import synthetic_tasks
from benchmarks.hpo._tasks import Task
from tunepilot import LLMSampler
from tunepilot.llm import make_backend

RESULTS = Path(__file__).resolve().parents[1] / "results"
CENTRES = Path(__file__).resolve().parent / "centres.json"
LABELS = {
    "blend-informative": "blend, controlled prior: informative (not an LLM)",
    "blend-misleading": "blend, controlled prior: misleading (not an LLM)",
    "blend": "blend, embedded SmolLM2-135M",
    "blend-gp": "blend on GP, embedded SmolLM2-135M",
    "blend-tpe": "blend on TPE, embedded SmolLM2-135M",
    "blend-defaults": "blend, the default configuration as a user prior (no LLM)",
    "blend-recorded": "blend, embedded SmolLM2-135M's recorded first answer, replayed (not a live LLM)",
    "llm": "llm, embedded SmolLM2-135M",
    "tpe": "TPE (independent)",
    "tpe-mv": "TPE (multivariate, Optuna default)",
    "tpe-default": "TPE (multivariate), the default configuration first",
    "gp-default": "GP, the default configuration first",
}


def tasks_for(suite: str, names: list[str] | None) -> list[Task]:
    tasks = synthetic_tasks() if suite == "synthetic" else bayesmark_tasks()
    if names:
        unknown = set(names) - {t.name for t in tasks}
        if unknown:
            raise SystemExit(f"unknown tasks {sorted(unknown)}; known: {[t.name for t in tasks]}")
        tasks = [t for t in tasks if t.name in names]
    return tasks


def run_study(
    task: Task, sampler: optuna.samplers.BaseSampler, budget: int, first: dict[str, Any] | None = None,
) -> tuple[list[float], float, optuna.Study]:
    """Run ``budget`` trials of ``task``, ``first`` as trial 0 if given; the values in
    order, the seconds and the study."""
    study = optuna.create_study(direction=task.direction, sampler=sampler)
    if first is not None:
        study.enqueue_trial(first)
    distributions = task.space.to_optuna()

    def objective(trial: optuna.Trial) -> float:
        return task.objective({n: trial._suggest(n, d) for n, d in distributions.items()})

    started = time.perf_counter()
    study.optimize(objective, n_trials=budget)
    values = [t.value if t.value is not None else float("nan") for t in study.trials]
    return values, time.perf_counter() - started, study


def provenance(study: optuna.Study) -> dict[str, list[Any]] | None:
    """Which part chose each trial of an LLM sampler, the blend's β then, and its base.

    ``parts``: ``llm.blend_part`` (prior, gp, tpe or random) of blend trials, else
    ``llm.source`` (llm, fallback, ...); ``betas``: ``llm.beta`` where the blend
    recorded one; ``bases``: ``llm.base`` (gp or tpe, which ``base="auto"`` can switch
    mid-study), where recorded. None for samplers that record none of them.
    """
    attrs = [t.user_attrs for t in study.trials]
    if not any("llm.source" in a for a in attrs):
        return None
    trail = {
        "parts": [a.get("llm.blend_part", a.get("llm.source")) for a in attrs],
        "betas": [a.get("llm.beta") for a in attrs],
    }
    if any("llm.base" in a for a in attrs):
        trail["bases"] = [a.get("llm.base") for a in attrs]
    return trail


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
        "processor": platform.machine(), "cpus": os.cpu_count(), **_cpu(),
    }
    return {"machine": machine, "versions": versions, "commit": commit("src", "benchmarks/hpo")}


def _cpu() -> dict[str, Any]:
    """The CPU model and its vector extensions, where Linux says them.

    llama.cpp picks its kernels by instruction set, so the embedded model can answer a
    seeded prompt differently on another CPU: the result file says which one ran it.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = fields.get("flags", "").split()
    return {"cpu": fields.get("model name"),
            "simd": [f for f in flags if f in ("avx", "avx2", "fma", "f16c") or f.startswith("avx512")]}


def _job(suite: str, task_name: str, name: str, seed: int, budget: int, model: str) -> dict[str, Any]:
    """One (task, sampler, seed) run; a top-level function so a process pool can run it."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("tunepilot").setLevel(logging.ERROR)
    task = tasks_for(suite, [task_name])[0]
    centres = json.loads(CENTRES.read_text()) if name in CONTROLLED else {}
    advice = json.loads(ADVICE.read_text()) if name == "blend-recorded" else {}
    sampler = make_sampler(name, task, seed, centres=centres, advice=advice, model=model)
    first = first_trial(name, task)
    try:
        values, seconds, study = run_study(task, sampler, budget, first)
    finally:
        close = getattr(sampler, "close", None)
        if close is not None:
            close()
    entry = {"task": task.name, "direction": task.direction, "sampler": name, "seed": seed,
             "values": values, "seconds": round(seconds, 3)}
    if first is not None:
        entry["enqueued"] = first  # trial 0's configuration, the task's default
    trail = provenance(study)
    if trail is not None:
        entry.update(trail)
    stats = getattr(sampler, "stats", None)
    if stats is not None:
        entry["llm_stats"] = stats.as_dict()
    versions = getattr(sampler, "versions", None)
    if versions is not None:
        entry["versions"] = versions  # packages of the sampler's own virtualenv (HEBO)
    return entry


def _one_thread() -> None:
    # Jobs run side by side, one core each: BLAS, torch and llama.cpp must not each
    # start a thread per core. (llama.cpp otherwise picks its threads from the load when
    # the model loads; two processes that each take both cores of a 2-core machine ran
    # 2-5 times slower.)
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("TUNEPILOT_LLM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def _command() -> str:
    """This process's command line, as a result file records it."""
    return "python -m benchmarks.hpo " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _new_record(args: argparse.Namespace, samplers: list[str], skipped: list[str]) -> dict[str, Any]:
    return {
        "suite": args.suite,
        "command": _command(),
        **environment(),
        "budget": args.budget,
        "seeds": args.seeds,
        "samplers": samplers,
        "skipped": skipped,
        "labels": {s: LABELS.get(s, s) for s in samplers},
        "tasks": args.tasks,
        "results": [],
    }


def _save(out: Path, record: dict[str, Any]) -> None:
    """Write the result file whole or not at all: a run killed mid-write keeps the last copy."""
    part = out.with_name(out.name + ".part")
    part.write_text(json.dumps(record, indent=1))
    os.replace(part, out)


def run(args: argparse.Namespace) -> Path:
    if args.resume:
        out = Path(args.resume)
        record = json.loads(out.read_text())
        args.suite, args.budget, args.tasks = record["suite"], record["budget"], record.get("tasks")
        if args.seeds is not None:  # more seeds for a finished run: every sampler gets them
            if set(args.seeds) <= set(record["seeds"]):
                raise SystemExit(f"{out} already has seeds {record['seeds']}; --seeds can only add seeds")
            record["seeds"] = sorted(set(record["seeds"]) | set(args.seeds))
        seeds = record["seeds"]
        samplers = args.samplers or record["samplers"]
        for name in samplers:  # a sampler added to a finished run: same tasks, seeds and budget
            if name not in record["samplers"]:
                record["samplers"].append(name)
                record["labels"][name] = LABELS.get(name, name)
            if name in record.get("skipped", []):
                record["skipped"].remove(name)
        record.setdefault("resumed", []).append({
            "command": _command(),
            "at": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
            **environment(),
        })
    else:
        samplers = args.samplers or ["random", "tpe", "blend"]
        skipped = [s for s in samplers if not available(s)]
        for name in skipped:
            print(f"skipping {name}: {missing(name)}", file=sys.stderr)
        samplers = [s for s in samplers if s not in skipped]
        seeds = args.seeds = list(range(5)) if args.seeds is None else args.seeds
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = Path(args.out) if args.out else RESULTS / f"hpo-{args.suite}-{stamp}.json"
        record = _new_record(args, samplers, skipped)
    tasks = tasks_for(args.suite, args.tasks)
    if "blend-recorded" in samplers:
        advice = json.loads(ADVICE.read_text()).get(args.suite, {}) if ADVICE.exists() else {}
        unadvised = [t.name for t in tasks if t.name not in advice]
        if unadvised:
            raise SystemExit(
                f"no recorded advice for {', '.join(unadvised)}; run 'python -m benchmarks.hpo "
                f"--suite {args.suite} --record-advice 10' first"
            )
    if any(s in CONTROLLED for s in samplers):
        centres = json.loads(CENTRES.read_text())
        uncentred = [t.name for t in tasks if t.name not in centres]
        if uncentred:
            raise SystemExit(
                f"no best/worst-known centres for {', '.join(uncentred)}; run 'python -m "
                f"benchmarks.hpo --suite {args.suite} --make-centres 80' first"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["task"], r["sampler"], r["seed"]) for r in record["results"]}
    jobs = [(t.name, s, seed) for seed in seeds for t in tasks for s in samplers
            if (t.name, s, seed) not in done]
    # Only samplers with runs left must be installed: a finished one may have been run elsewhere.
    unavailable = sorted({s for _, s, _ in jobs if not available(s)})
    if unavailable:
        raise SystemExit("cannot run: " + "; ".join(f"{s}: {missing(s)}" for s in unavailable))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        bar = progress.add_task("runs", total=len(jobs) + len(done), completed=len(done))

        def finished(entry: dict[str, Any]) -> None:
            record["results"].append(entry)
            _save(out, record)
            progress.update(bar, advance=1, description=(
                f"{entry['sampler']:>18} {entry['task']:<20} seed {entry['seed']}"))

        if args.jobs <= 1:
            for task_name, name, seed in jobs:
                finished(_job(args.suite, task_name, name, seed, args.budget, args.model))
        else:
            with concurrent.futures.ProcessPoolExecutor(args.jobs, initializer=_one_thread) as pool:
                futures = [pool.submit(_job, args.suite, task_name, name, seed, args.budget, args.model)
                           for task_name, name, seed in jobs]
                for future in concurrent.futures.as_completed(futures):
                    finished(future.result())
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


def record_advice(args: argparse.Namespace) -> None:
    """The embedded model's first answer for each task, for ``blend-recorded`` to replay."""
    advice = json.loads(ADVICE.read_text()) if ADVICE.exists() else {}
    suite = advice.setdefault(args.suite, {})
    for task in tasks_for(args.suite, args.tasks):
        recorder = Recorder(make_backend(args.model, seed=args.record_advice))
        sampler = make_sampler("blend", task, args.record_advice, centres={}, model=recorder)
        assert isinstance(sampler, LLMSampler)
        run_study(task, sampler, 1)
        if not recorder.texts:
            raise SystemExit(f"{task.name}: the model was not asked (an error was logged?)")
        suite[task.name] = {"seed": args.record_advice, "model": recorder.name,
                            "text": recorder.texts[0], **sampler.stats.as_dict()}
        print(f"{task.name}: {recorder.texts[0]}", file=sys.stderr)
        advice["machine"] = environment()["machine"]  # llama.cpp's answers depend on the CPU
        ADVICE.write_text(json.dumps(advice, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def report(paths: list[str], only: list[str] | None = None, png: str | None = None,
           by_task: bool = False, only_seeds: list[int] | None = None, base: str | None = None) -> None:
    results: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    samplers: list[str] = []
    planned: set[int] = set()
    suite = ""
    for path in paths:
        data = json.loads(Path(path).read_text())
        results += data["results"]
        labels.update(data.get("labels", {}))
        samplers += [s for s in data.get("samplers", []) if s not in samplers]
        planned |= set(data.get("seeds", [])) | {r["seed"] for r in data["results"]}
        suite = data["suite"]
    if only:
        missing_samplers = set(only) - {r["sampler"] for r in results}
        if missing_samplers:
            sys.exit(f"no results for {sorted(missing_samplers)} in {', '.join(paths)}")
        # Normalized regret needs random search's runs, and --paired its base's: they are
        # scored, if not shown.
        scored = set(only) | {"random"} | ({base} if base else set())
        left_out = sorted({r["sampler"] for r in results} - scored)
        if left_out:  # f_opt is the best value in the runs scored, so it can differ from the whole file's
            print(f"the runs of {', '.join(left_out)} are left out, also of the best value ever seen "
                  "on each task (f_opt): regrets can differ from a report of the whole file",
                  file=sys.stderr)
        results = [r for r in results if r["sampler"] in scored]
        samplers = [s for s in samplers if s in scored] or list(only)
    if only_seeds is not None:  # these seeds only, e.g. as a table made before more were added
        results = [r for r in results if r["seed"] in only_seeds]
        planned = {seed for seed in planned if seed in only_seeds}
    results, seeds = complete_seeds(results, samplers or sorted({r["sampler"] for r in results}))
    if not seeds:
        sys.exit("no seed is complete yet (every sampler on every task); carry the run on with --resume")
    if seeds != sorted(planned):
        print(f"partial run: scoring seeds {seeds} of {sorted(planned)}; the others are unfinished",
              file=sys.stderr)
    centres = json.loads(CENTRES.read_text()) if CENTRES.exists() else {}
    f_opt = {name: c["best_value"] for name, c in centres.items()}
    try:
        curves = regret_curves(results, f_opt)
    except ValueError as error:
        sys.exit(f"{error}: {', '.join(paths)} cannot be scored")
    shown = {s: curve for s, curve in curves.items() if not only or s in only}
    print(markdown_table(summary(shown), labels))
    if base:
        try:
            differences = paired(curves, base)
        except ValueError as error:
            sys.exit(f"--paired {base}: {error} in {', '.join(paths)}")
        differences = {s: d for s, d in differences.items() if s in shown}
        print(f"\nPaired over seeds: each sampler's mean regret minus {labels.get(base, base)}'s on "
              "the same seed, mean ± standard error over seeds (negative is better), and on how "
              "many seeds it is ahead\n")
        print(paired_table(differences, base, labels))
        print(f"\nRun by run at the final budget: each (task, seed)'s regret minus "
              f"{labels.get(base, base)}'s on the same seed (runs with a finite regret)\n")
        runs = run_differences(results, f_opt, base)
        print(runs_table({s: d for s, d in runs.items() if s in shown}, base, labels))
    if by_task:
        order = [s for s in samplers if s != "random"] or sorted({r["sampler"] for r in results})
        print("\nPer task: mean normalized regret over seeds; tasks where random search is "
              "closest to the optimum first\n")
        print(task_table(results, f_opt, order))
    if suite == "bayesmark":
        accuracy = best_value_table([r for r in results if r["sampler"] in shown], "maximize")
        n = len({r["task"] for r in results if r["direction"] == "maximize"})
        print(f"\nNot normalized: mean best CV accuracy over the {n} classification tasks, "
              "± standard error over seeds (higher is better)\n")
        print(markdown_table(accuracy, labels, metric="accuracy", digits=4, higher_is_better=True))
    png = png or str(Path(paths[0]).with_name(f"hpo-{suite}-regret.png"))
    plot(shown, labels, f"{suite}: mean normalized regret ({len({r['task'] for r in results})} tasks)", png)
    print(f"\nplot: {png}", file=sys.stderr)


def _is_blend(sampler: str) -> bool:
    """Samplers whose runs depend on tunepilot's blend or LLM code (a rule can tell them apart)."""
    return sampler.split(":")[0] in (
        "llm", "blend", *FIXED_BASE, "blend-defaults", "blend-recorded", *CONTROLLED)


def merge(specs: list[str], out: Path) -> Path:
    """Merge result files of one suite, tasks and budget into ``out``.

    Each spec is ``FILE`` or ``FILE=RULE``; with a rule, that file's blend and llm samplers
    are renamed ``SAMPLER:RULE``, so that runs of several versions of the blend can be
    scored side by side (``--report OUT --paired tpe-mv``). Runs found in more than one
    file must have the same values; they are kept once. Every input's command, commit,
    machine and notes are kept under ``merged``.
    """
    if out.exists():
        raise SystemExit(f"{out} exists; --merge writes a new file")
    record: dict[str, Any] | None = None
    runs: dict[tuple[str, str, int], tuple[dict[str, Any], str]] = {}
    for spec in specs:
        path, _, rule = spec.partition("=")
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise SystemExit(f"--merge {spec}: cannot read {path}: {error}") from None
        if rule and (":" in rule or not rule.strip()):
            raise SystemExit(f"--merge {spec}: a rule is a plain name such as 'zrule'")

        def rename(sampler: str) -> str:
            return f"{sampler}:{rule}" if rule and _is_blend(sampler) and ":" not in sampler else sampler

        if record is None:
            record = {
                "suite": data["suite"],
                "command": _command(),
                **environment(),
                "budget": data["budget"], "seeds": [], "samplers": [], "skipped": [], "labels": {},
                "tasks": data.get("tasks"), "merged": [], "notes": [], "results": [],
            }
        for field in ("suite", "budget", "tasks"):
            if data.get(field) != record[field]:
                raise SystemExit(f"--merge {spec}: its {field} is {data.get(field)!r}, the first "
                                 f"file's {record[field]!r}; only runs of one suite, budget and task "
                                 "list merge")
        for sampler in data["samplers"]:
            name = rename(sampler)
            if name not in record["samplers"]:
                record["samplers"].append(name)
                label = data.get("labels", {}).get(sampler, LABELS.get(sampler, sampler))
                record["labels"][name] = f"{label} [{rule}]" if name != sampler else label
        record["seeds"] = sorted(set(record["seeds"]) | set(data["seeds"]))
        record["merged"].append({field: data.get(field) for field in
                                 ("command", "commit", "machine", "versions", "resumed")}
                                | {"file": Path(path).name, "rule": rule or None})
        record["notes"] += [f"{Path(path).name}: {note}" for note in data.get("notes", [])]
        for result in data["results"]:
            entry = {**result, "sampler": rename(result["sampler"])}
            run_key = (entry["task"], entry["sampler"], entry["seed"])
            if run_key in runs:
                if runs[run_key][0]["values"] != entry["values"]:
                    raise SystemExit(f"--merge: {run_key} differs between {runs[run_key][1]} and "
                                     f"{path}; give one of them a rule to keep both")
                continue
            runs[run_key] = (entry, path)
    assert record is not None
    record["results"] = [entry for entry, _ in runs.values()]
    out.parent.mkdir(parents=True, exist_ok=True)
    _save(out, record)
    return out


def seed_list(text: str) -> list[int]:
    """``N`` is seeds 0..N-1, ``A-B`` seeds A..B."""
    first, dash, last = text.partition("-")
    try:
        seeds = list(range(int(first), int(last) + 1)) if dash else list(range(int(text)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a count N or a range A-B") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"{text!r} names no seed")
    return seeds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hpo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=("synthetic", "bayesmark"), default="synthetic")
    parser.add_argument("--samplers", type=lambda s: s.split(","), default=None,
                        help="default random,tpe,blend; with --resume: run only these, adding new "
                        "ones to the file; with --report: score only these")
    parser.add_argument("--tasks", type=lambda s: s.split(","), default=None)
    parser.add_argument("--budget", type=int, default=30,
                        help="trials per run (default 30); --report shows 10, 20, 30 and 50 trials "
                        "where the runs reach them, and their last trial")
    parser.add_argument("--seeds", type=seed_list, default=None, metavar="N|A-B",
                        help="seeds 0..N-1 (default 5), or A..B; with --resume: add these seeds to the "
                        "file; with --report: score only these seeds")
    parser.add_argument("--model", default="local", help="model for the llm and blend samplers")
    parser.add_argument("--out", default=None, help="result file (default: benchmarks/results/...)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, in separate processes")
    parser.add_argument("--resume", default=None, metavar="FILE",
                        help="carry on an interrupted run: same settings, skip finished runs")
    parser.add_argument("--make-centres", type=int, default=0, metavar="N",
                        help="compute best/worst-known centres with N random + N TPE trials per task")
    parser.add_argument("--record-advice", type=int, default=None, metavar="SEED",
                        help="record the embedded model's first answer per task (seeded SEED) for "
                        "blend-recorded, in benchmarks/hpo/advice.json")
    parser.add_argument("--merge", nargs="+", default=None, metavar="FILE[=RULE]",
                        help="merge result files into --out; =RULE renames that file's blend and llm "
                        "samplers SAMPLER:RULE")
    parser.add_argument("--report", nargs="+", default=None, metavar="FILE",
                        help="print the regret table of result files and write the plot")
    parser.add_argument("--by-task", action="store_true",
                        help="with --report: also print each task's regret per sampler at the final budget")
    parser.add_argument("--paired", default=None, metavar="SAMPLER",
                        help="with --report: also print each sampler's difference from SAMPLER, seed by seed")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="where --report writes the plot (default: hpo-<suite>-regret.png beside the file)")
    args = parser.parse_args(argv)
    # A report scores whatever its files hold (tuning files name samplers SAMPLER:RULE);
    # report() says which of the asked-for names it does not find.
    unknown = set(args.samplers or ()) - set(SAMPLERS)
    if unknown and not (args.report or args.merge):
        parser.error(f"unknown samplers {sorted(unknown)}; choose from {', '.join(SAMPLERS)}")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("tunepilot").setLevel(logging.ERROR)
    if args.merge:
        if not args.out:
            parser.error("--merge needs --out FILE")
        print(merge(args.merge, Path(args.out)))
    elif args.report:
        report(args.report, args.samplers, args.plot, args.by_task, args.seeds, args.paired)
    elif args.record_advice is not None:
        record_advice(args)
    elif args.make_centres:
        make_centres(args)
    else:
        print(run(args))


if __name__ == "__main__":
    main()
