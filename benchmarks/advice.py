"""How well a model's first advice fits the space: values clamped into range per call.

    python -m benchmarks.advice [--suites synthetic,bayesmark] [--seeds 0-2] [--model local]

For each task and seed, the blend's first call on an empty study, as the benchmark's
``blend`` sampler makes it (the task's description, a batch of 4): how many
configurations came back usable, how many of their values had to be clamped into
their range (a value on the wrong scale: a count where the space wants a fraction,
a learning rate of 3 on a log range ending at 0.1), how many answers were invalid
and how many repair round trips were sent. A clamped value carries no advice (the
prior is uniform there), so fewer clamps per call is advice the blend can use. Values
that sit on a bound of their range are counted too (``at_bound``): a clamped value lands
there, and so does a model that is kept in range but pressed against its edge.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna

from benchmarks._common import commit
from benchmarks.hpo.__main__ import environment, seed_list, tasks_for
from tunepilot import LLMSampler
from tunepilot.space import CategoricalParam

RESULTS = Path(__file__).resolve().parent / "results"


def first_call(task: Any, seed: int, model: str) -> dict[str, Any]:
    sampler = LLMSampler(model, mode="blend", search_space=task.space, seed=seed,
                         description=task.description)
    study = optuna.create_study(sampler=sampler, direction=task.direction)
    started = time.perf_counter()
    study.ask(task.space.to_optuna())
    seconds = time.perf_counter() - started
    source = sampler._blender.sources.get("llm") if sampler._blender else None
    unknown = source.unknown if source is not None else []
    configs = source.configs if source is not None else []
    numeric = {n: p for n, p in task.space.items() if not isinstance(p, CategoricalParam)}
    at_bound = sum(c[n] in (p.low, p.high) for c in configs for n, p in numeric.items() if n in c)
    stats = sampler.stats
    return {
        "task": task.name, "seed": seed, "params": len(task.space),
        "calls": stats.calls, "proposals": stats.proposals,
        "clamped": sum(len(u) for u in unknown), "at_bound": at_bound,
        "invalid_responses": stats.invalid_responses,
        "repair_round_trips": stats.repair_round_trips, "seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.advice", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", default="synthetic,bayesmark")
    parser.add_argument("--seeds", type=seed_list, default=[0, 1, 2])
    parser.add_argument("--model", default="local")
    parser.add_argument("--label", default="", help="a word for the result file, e.g. before")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rows = []
    for suite in args.suites.split(","):
        for task in tasks_for(suite, None):
            for seed in args.seeds:
                rows.append({"suite": suite, **first_call(task, seed, args.model)})
                print(json.dumps(rows[-1]), file=sys.stderr)
    summary = {}
    for suite in args.suites.split(","):
        mine = [r for r in rows if r["suite"] == suite]
        calls = sum(r["calls"] for r in mine)
        summary[suite] = {
            "runs": len(mine), "calls": calls,
            "proposals": sum(r["proposals"] for r in mine),
            "clamped": sum(r["clamped"] for r in mine),
            "clamped_per_call": round(sum(r["clamped"] for r in mine) / max(calls, 1), 3),
            "clamped_share": round(sum(r["clamped"] for r in mine)
                                   / max(sum(r["proposals"] * r["params"] for r in mine), 1), 3),
            "at_bound": sum(r["at_bound"] for r in mine),
            "at_bound_per_call": round(sum(r["at_bound"] for r in mine) / max(calls, 1), 3),
            "invalid_responses": sum(r["invalid_responses"] for r in mine),
            "repair_round_trips": sum(r["repair_round_trips"] for r in mine),
        }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    label = f"-{args.label}" if args.label else ""
    out = Path(args.out) if args.out else RESULTS / f"advice{label}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "advice-fit",
        "command": "python -m benchmarks.advice " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        **environment(), "commit": commit("src", "benchmarks/advice.py"), "model": args.model,
        "seeds": args.seeds, "summary": summary, "rows": rows,
    }, indent=1))
    print("| suite | calls | proposals | clamped | per call | share of values | at a bound per call "
          "| invalid | repairs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for suite, row in summary.items():
        print(f"| {suite} | {row['calls']} | {row['proposals']} | {row['clamped']} | "
              f"{row['clamped_per_call']} | {row['clamped_share']} | {row['at_bound_per_call']} | "
              f"{row['invalid_responses']} | {row['repair_round_trips']} |")
    print(out)


if __name__ == "__main__":
    main()
