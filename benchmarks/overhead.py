"""Sampler overhead (BENCHMARKS.md §2): time inside the sampler per trial, LLM latency excluded.

    python -m benchmarks.overhead [--sizes 100,500,1000] [--gp-sizes 100,300]
                                  [--trials 20] [--gp-trials 10] [--repeats 3]

For each history size N, a study is filled with N completed trials of a 6-D
function; then each sampler proposes ``--trials`` more (ask, evaluate, tell) and the
time of each ask is measured. The LLM samplers use an instant fake backend, and the
time spent inside the backend is subtracted, so what is left is the sampler's own
work: reading the study, building the prompt, parsing, the prior, the blended
acquisition and the claim that keeps parallel workers apart. The history's trials
were not drawn from the prior, so its advice is untested and keeps its full weight:
every blend trial takes the blended path, the costlier one. Prompt tokens per call
are recorded against N (they should stay flat). Medians over repeats; the blend on
TPE is measured against Optuna's TPE at ``--sizes``, the blend on the GP against
Optuna's GPSampler at ``--gp-sizes``, in the same run, on the same histories.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from benchmarks._common import commit
from benchmarks.hpo.__main__ import environment
from tunepilot import LLMSampler
from tunepilot.llm import Completion
from tunepilot.testing import FakeLLM

SPACE = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(6)}
RESULTS = Path(__file__).resolve().parent / "results"


def f(params: dict[str, float]) -> float:
    x = np.array([params[n] for n in SPACE])
    return float(((x - 0.3) ** 2).sum() + 0.1 * math.sin(10 * x[0]))


class TimedFake:
    """An instant fake model that also measures the time spent inside it."""

    def __init__(self, seed: int) -> None:
        self.inner = FakeLLM("valid", seed=seed)
        self.name = "fake-timed"
        self.seconds = 0.0
        self.prompt_tokens: list[int] = []

    def complete(self, messages: Any, **kwargs: Any) -> Completion:
        started = time.perf_counter()
        answer = self.inner.complete(messages, **kwargs)
        self.seconds += time.perf_counter() - started
        self.prompt_tokens.append(sum(len(m["content"]) for m in messages) // 4)
        return answer


def history(n: int, seed: int) -> list[optuna.trial.FrozenTrial]:
    rng = np.random.RandomState(seed)
    trials = []
    for _ in range(n):
        params = {name: float(rng.rand()) for name in SPACE}
        trials.append(create_trial(params=params, distributions=SPACE, value=f(params)))
    return trials


def _sampler(name: str, backend: TimedFake | None, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "llm":
        return LLMSampler(backend, mode="llm", search_space=SPACE, seed=seed)
    return LLMSampler(backend, mode="blend", base=name.removeprefix("blend-"), search_space=SPACE,
                      seed=seed)


def measure(name: str, size: int, trials: int, seed: int) -> dict[str, Any]:
    backend = TimedFake(seed) if name not in ("tpe", "gp") else None
    study = optuna.create_study(sampler=_sampler(name, backend, seed))
    study.add_trials(history(size, seed))
    per_trial = []
    for _ in range(trials):
        before = backend.seconds if backend else 0.0
        started = time.perf_counter()
        trial = study.ask(SPACE)
        elapsed = time.perf_counter() - started - ((backend.seconds - before) if backend else 0.0)
        study.tell(trial, f(trial.params))
        per_trial.append(elapsed)
    return {
        "sampler": name, "history": size, "seed": seed,
        "ms_per_trial": 1000 * statistics.median(per_trial),
        "ms_mean": 1000 * statistics.fmean(per_trial),
        "prompt_tokens": backend.prompt_tokens if backend else [],
    }


#: Each family: the samplers measured side by side, the first the reference.
FAMILIES = {"tpe": ("tpe", "blend-tpe", "llm"), "gp": ("gp", "blend-gp")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sizes = lambda s: [int(x) for x in s.split(",") if x]
    parser.add_argument("--sizes", type=sizes, default=[100, 500, 1000])
    parser.add_argument("--gp-sizes", type=sizes, default=[100, 300])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--gp-trials", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    plan = [("tpe", size, args.trials) for size in args.sizes]
    plan += [("gp", size, args.gp_trials) for size in args.gp_sizes]
    rows = []
    for family, size, trials in plan:
        for seed in range(args.repeats):
            for name in FAMILIES[family]:  # interleaved, so drift hits all alike
                rows.append({**measure(name, size, trials, seed), "family": family})
                print(f"N={size} seed={seed} {name}: {rows[-1]['ms_per_trial']:.2f} ms",
                      file=sys.stderr)
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for family, size, _ in plan:
        names = FAMILIES[family]
        med = {n: statistics.median(r["ms_per_trial"] for r in rows
                                    if r["sampler"] == n and r["history"] == size) for n in names}
        tokens = [t for r in rows if r["sampler"] == "llm" and r["history"] == size
                  for t in r["prompt_tokens"]]
        table.setdefault(family, {})[size] = {
            **{f"{n}_ms": round(v, 3) for n, v in med.items()},
            **{f"{n}_over_{family}": round(med[n] / med[family], 3) for n in names[1:]},
            **({"llm_prompt_tokens_median": statistics.median(tokens)} if tokens else {}),
        }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else RESULTS / f"overhead-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "sampler-overhead",
        "command": "python -m benchmarks.overhead " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        **environment(), "commit": commit("src", "benchmarks/overhead.py"),
        "trials_per_size": args.trials, "gp_trials_per_size": args.gp_trials,
        "repeats": args.repeats, "summary": table, "rows": rows,
    }, indent=1))
    for family, by_size in table.items():
        names = FAMILIES[family]
        print(f"| history | {' | '.join(f'{n} ms' for n in names)} | "
              f"{' | '.join(f'{n}/{family}' for n in names[1:])} |")
        print("|---" * (1 + 2 * len(names) - 1) + "|")
        for size, row in by_size.items():
            cells = [f"{row[f'{n}_ms']:.2f}" for n in names]
            cells += [f"{row[f'{n}_over_{family}']:.2f}" for n in names[1:]]
            print(f"| {size} | " + " | ".join(cells) + " |")
    print(out)


if __name__ == "__main__":
    main()
