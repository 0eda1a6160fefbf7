"""Sampler overhead (BENCHMARKS.md §2): time inside the sampler per trial, LLM latency excluded.

    python -m benchmarks.overhead [--sizes 100,500,1000] [--trials 20] [--repeats 3]

For each history size N, a study is filled with N completed trials of a 6-D
function; then each sampler proposes ``--trials`` more (ask, evaluate, tell) and the
time of each ask is measured. The LLM samplers use an instant fake backend, and the
time spent inside the backend is subtracted, so what is left is the sampler's own
work: reading the study, building the prompt, parsing, the prior and the blended
acquisition. Prompt tokens per call are recorded against N (they should stay flat).
Medians over repeats; TPE is measured in the same run, on the same histories.
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


def measure(name: str, size: int, trials: int, seed: int) -> dict[str, Any]:
    backend = TimedFake(seed) if name != "tpe" else None
    if name == "tpe":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(seed=seed)
    else:
        sampler = LLMSampler(backend, mode=name, search_space=SPACE, seed=seed)  # type: ignore[arg-type]
    study = optuna.create_study(sampler=sampler)
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
        "sampler": name, "history": size, "seed": seed, "ms_per_trial": 1000 * statistics.median(per_trial),
        "ms_mean": 1000 * statistics.fmean(per_trial),
        "prompt_tokens": backend.prompt_tokens if backend else [],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100, 500, 1000])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rows = []
    for size in args.sizes:
        for seed in range(args.repeats):
            for name in ("tpe", "blend", "llm"):  # interleaved, so drift hits all alike
                rows.append(measure(name, size, args.trials, seed))
                print(f"N={size} seed={seed} {name}: {rows[-1]['ms_per_trial']:.2f} ms", file=sys.stderr)
    table = {}
    for size in args.sizes:
        med = {name: statistics.median(r["ms_per_trial"] for r in rows if r["sampler"] == name and r["history"] == size)
               for name in ("tpe", "blend", "llm")}
        tokens = [t for r in rows if r["sampler"] == "llm" and r["history"] == size for t in r["prompt_tokens"]]
        table[size] = {**{f"{k}_ms": round(v, 3) for k, v in med.items()},
                       "blend_over_tpe": round(med["blend"] / med["tpe"], 3),
                       "llm_over_tpe": round(med["llm"] / med["tpe"], 3),
                       "llm_prompt_tokens_median": statistics.median(tokens) if tokens else None}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else RESULTS / f"overhead-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "sampler-overhead",
        "command": "python -m benchmarks.overhead " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        **environment(), "commit": commit("src", "benchmarks/overhead.py"), "trials_per_size": args.trials, "repeats": args.repeats,
        "summary": table, "rows": rows,
    }, indent=1))
    print("| history | TPE ms | blend ms | blend/TPE | llm ms | llm/TPE | prompt tokens (llm) |")
    print("|---|---|---|---|---|---|---|")
    for size, row in table.items():
        print(f"| {size} | {row['tpe_ms']:.2f} | {row['blend_ms']:.2f} | {row['blend_over_tpe']:.2f} | "
              f"{row['llm_ms']:.2f} | {row['llm_over_tpe']:.2f} | {row['llm_prompt_tokens_median']} |")
    print(out)


if __name__ == "__main__":
    main()
