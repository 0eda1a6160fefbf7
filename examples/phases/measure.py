"""Do the phases pay? Trials to reach the single-study best, with and without ``prior_from``.

For each seed, three runs of spec.yaml, each in a fresh SQLite file:

- ``phases``: the spec as written, each phase starting from the one before;
- ``alone``: the same three phases with ``prior_from=null``, each starting from nothing;
- ``single``: one study on the whole training set (``finetune``) with as many trials
  as the three phases together, starting from nothing.

The target of a seed is the best validation loss ``single`` reaches (``--target
alone``: the best the ``finetune`` phase reaches in ``alone``). A run's cost is the
number of trials, all phases counted, until its ``finetune`` study first reaches the
target, and how many of those were on the full set (the expensive ones); a run that
never reaches it is counted as not reached.

    python examples/phases/measure.py --seeds 0-9 --out phases.json

Prints one line per seed and run, then the mean per run; ``--out`` keeps every
trial's value as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import optuna

from tunepilot.runner import load_studies, run_studies

SPEC = Path(__file__).with_name("spec.yaml")
RUNS = ("phases", "alone", "single")


def _seeds(text: str) -> list[int]:
    if "-" in text:
        first, last = text.split("-", 1)
        return list(range(int(first), int(last) + 1))
    return [int(s) for s in text.split(",")]


def _losses(storage: str, name: str) -> list[float]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [t.value if t.value is not None else float("inf") for t in study.trials]


def run_seed(seed: int, workdir: Path) -> dict[str, Any]:
    """Run the three variants for one seed and return every study's losses, in order."""
    phases = load_studies(SPEC)
    budget = sum(s.n_trials or 0 for s in phases)
    variants: dict[str, tuple[list[str], str | None]] = {
        "phases": ([], None),
        "alone": (["prior_from=null"], None),
        "single": (["prior_from=null", f"n_trials={budget}"], "finetune"),
    }
    out: dict[str, Any] = {}
    for run, (overrides, only) in variants.items():
        storage = f"sqlite:///{workdir / f'{run}-{seed}.db'}"
        specs = load_studies(SPEC, overrides=overrides, only=only)
        run_studies(specs, storage=storage, seed=seed, progress=False)
        out[run] = {spec.name: _losses(storage, spec.name) for spec in specs}
    return out


def cost(losses: dict[str, list[float]], target: float) -> tuple[int, int] | None:
    """(all trials, full-set trials) until ``finetune`` first reaches ``target``."""
    before = sum(len(v) for k, v in losses.items() if k != "finetune")
    for index, loss in enumerate(losses["finetune"], start=1):
        if loss <= target:
            return before + index, index
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,3,5 (default 0-9)")
    parser.add_argument("--target", choices=RUNS[1:], default="single",
                        help="whose best value the runs must reach (default single)")
    parser.add_argument("--out", type=Path, help="write every trial's loss here as JSON")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results: dict[int, dict[str, Any]] = {}
    costs: dict[str, list[tuple[int, int] | None]] = {run: [] for run in RUNS}
    with tempfile.TemporaryDirectory() as workdir:
        for seed in _seeds(args.seeds):
            losses = run_seed(seed, Path(workdir))
            results[seed] = losses
            target = min(losses[args.target]["finetune"])
            for run in RUNS:
                spent = cost(losses[run], target)
                costs[run].append(spent)
                shown = f"{spent[0]} trials ({spent[1]} on the full set)" if spent else "not reached"
                best = min(losses[run]["finetune"])
                print(f"seed {seed} {run:>6}: best {best:.4f}, target {target:.4f}: {shown}",
                      flush=True)
    print()
    for run in RUNS:
        reached = [c for c in costs[run] if c is not None]
        if reached:
            print(f"{run:>6}: reached {len(reached)} of {len(costs[run])} seeds; mean "
                  f"{statistics.mean(c[0] for c in reached):.1f} trials, "
                  f"{statistics.mean(c[1] for c in reached):.1f} on the full set")
        else:
            print(f"{run:>6}: reached 0 of {len(costs[run])} seeds")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
