"""Normalized regret from raw result files, the README table and the regret plot.

For a task and budget b: regret = (f_best(b) − f_opt) / (f_random(b) − f_opt), signs
flipped for maximisation, where f_opt is the best value ever seen on the task (in
these results and the stored long runs) and f_random(b) the mean over seeds of
random search's best at b. 0 is the optimum, 1 is random search. A sampler's score at
b is the mean over tasks; its standard error is taken over seeds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

#: The budgets a report shows where the runs reach them (50: the synthetic suite's long runs).
BUDGETS = (10, 20, 30, 50)


def checkpoints(trials: int, budgets: Sequence[int] = BUDGETS) -> list[int]:
    """The budgets a report shows for runs of ``trials`` trials: those of ``budgets`` they
    reach, and ``trials`` itself (a run's last trial is always shown, a smoke run's too)."""
    return [b for b in budgets if b < trials] + [trials]


def _best_so_far(values: Sequence[float], sign: float) -> np.ndarray:
    arr = sign * np.asarray([v if v is not None else np.inf * sign for v in values], dtype=float)
    return np.minimum.accumulate(np.where(np.isnan(arr), np.inf, arr))


def complete_seeds(results: list[dict[str, Any]], samplers: Sequence[str]) -> tuple[list[dict[str, Any]], list[int]]:
    """Keep only the seeds that every sampler finished on every task.

    A run stopped part-way (and carried on later with ``--resume``) leaves seeds with
    some tasks or samplers missing; scoring them would compare samplers over different
    tasks. Returns the kept results and the kept seeds.
    """
    tasks = {r["task"] for r in results}
    done: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for r in results:
        done[r["seed"]].add((r["task"], r["sampler"]))
    need = {(t, s) for t in tasks for s in samplers}
    seeds = sorted(seed for seed, pairs in done.items() if need <= pairs)
    return [r for r in results if r["seed"] in seeds], seeds


def task_regrets(
    results: list[dict[str, Any]], f_opt: dict[str, float]
) -> dict[str, tuple[np.ndarray, dict[str, dict[int, np.ndarray]]]]:
    """task -> (f_random − f_opt after each trial, sampler -> seed -> normalized regret).

    Where random search's mean is already at the optimum the denominator is 0 and the
    regret is NaN: the task says nothing about the samplers and is left out of means.
    """
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_task[r["task"]].append(r)
    out: dict[str, tuple[np.ndarray, dict[str, dict[int, np.ndarray]]]] = {}
    for task, runs in by_task.items():
        sign = 1.0 if runs[0]["direction"] == "minimize" else -1.0
        budget = min(len(r["values"]) for r in runs)
        best = {id(r): _best_so_far(r["values"][:budget], sign) for r in runs}
        opt = min(float(b.min()) for b in best.values())
        if task in f_opt:  # the stored long runs' best, in the same sign convention
            opt = min(opt, sign * f_opt[task])
        randoms = [best[id(r)] for r in runs if r["sampler"] == "random"]
        if not randoms:
            raise ValueError(f"task {task}: normalized regret needs random-search runs in the same file")
        gap = np.mean(randoms, axis=0) - opt
        scale = np.where(gap > 0, gap, np.nan)
        regrets: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
        for r in runs:
            regrets[r["sampler"]][r["seed"]] = (best[id(r)] - opt) / scale
        out[task] = (gap, dict(regrets))
    return out


def regret_curves(results: list[dict[str, Any]], f_opt: dict[str, float]) -> dict[str, dict[int, np.ndarray]]:
    """sampler -> seed -> mean-over-tasks normalized regret after each trial."""
    curves: dict[str, dict[int, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    for _, regrets in task_regrets(results, f_opt).values():
        for sampler, seeds in regrets.items():
            for seed, curve in seeds.items():
                curves[sampler][seed].append(curve)
    return {
        sampler: {seed: np.nanmean(np.stack(per_task), axis=0) for seed, per_task in seeds.items()}
        for sampler, seeds in curves.items()
    }


def task_table(results: list[dict[str, Any]], f_opt: dict[str, float], samplers: Sequence[str]) -> str:
    """Per task at the final budget: random search's distance from the optimum, and each
    sampler's mean normalized regret over seeds, the tasks with the smallest distance
    first (where one evaluation more or less right moves a regret the most)."""
    per_task = task_regrets(results, f_opt)
    budget = min(len(gap) for gap, _ in per_task.values())
    lines = [f"| task (@{budget}) | f_random − f_opt | "
             + " | ".join(samplers) + " |",
             "|---|---|" + "---|" * len(samplers)]
    for task, (gap, regrets) in sorted(per_task.items(), key=lambda kv: kv[1][0][budget - 1]):
        cells = []
        for s in samplers:
            values = [curve[budget - 1] for curve in regrets.get(s, {}).values()]
            cells.append(f"{np.mean(values):.3f}" if values and np.all(np.isfinite(values)) else "–")
        lines.append(f"| {task} | {gap[budget - 1]:.4g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_se(col: np.ndarray) -> tuple[float, float]:
    """Mean and standard error over seeds; one seed has no standard error (NaN)."""
    se = float(col.std(ddof=1) / np.sqrt(len(col))) if len(col) > 1 else float("nan")
    return float(col.mean()), se


def summary(curves: dict[str, dict[int, np.ndarray]], budgets: Sequence[int] = BUDGETS) -> dict[str, dict[int, tuple[float, float]]]:
    """sampler -> budget -> (mean regret, standard error over seeds)."""
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for sampler, seeds in curves.items():
        stacked = np.stack(list(seeds.values()))
        out[sampler] = {}
        for b in checkpoints(stacked.shape[1], budgets):
            out[sampler][b] = _mean_se(stacked[:, b - 1])
    return out


def paired(
    curves: dict[str, dict[int, np.ndarray]], base: str, budgets: Sequence[int] = BUDGETS,
) -> dict[str, dict[int, tuple[float, float, int, int]]]:
    """sampler -> budget -> (mean difference from ``base``, its SE, seeds ahead, seeds).

    The difference is taken seed by seed (sampler's mean regret over tasks minus
    ``base``'s on the same seed, so the same startup draws and the same tasks), then
    averaged over the seeds both ran; negative is better than ``base``. Pairing takes out
    the seed-to-seed variation the two share, which the unpaired standard errors of
    :func:`summary` carry twice.
    """
    if base not in curves:
        raise ValueError(f"no results for {base!r} to pair with")
    out: dict[str, dict[int, tuple[float, float, int, int]]] = {}
    for sampler, seeds in curves.items():
        if sampler == base:
            continue
        shared = sorted(set(seeds) & set(curves[base]))
        if not shared:
            continue
        diffs = np.stack([seeds[seed] - curves[base][seed] for seed in shared])
        out[sampler] = {}
        for b in checkpoints(diffs.shape[1], budgets):
            col = diffs[:, b - 1]
            out[sampler][b] = (*_mean_se(col), int((col < 0).sum()), len(col))
    return out


def run_differences(
    results: list[dict[str, Any]], f_opt: dict[str, float], base: str,
) -> dict[str, list[tuple[float, float, str, int]]]:
    """sampler -> its runs' (difference from ``base``, share of the paired mean, task, seed)
    at the final budget, largest difference (either sign) first.

    The paired mean of :func:`paired` is a mean over seeds of means over tasks; a run's
    share of it is its difference divided by (tasks with a finite regret on its seed ×
    seeds). Normalized regret is heavy-tailed (one accuracy step on a near-trivial task
    is worth several units), so a few runs can make most of a mean: this says which.
    """
    per_task = task_regrets(results, f_opt)
    budget = min(len(gap) for gap, _ in per_task.values())
    diffs: dict[str, list[tuple[float, str, int]]] = defaultdict(list)
    for task, (_, regrets) in per_task.items():
        if base not in regrets:
            continue
        for sampler, seeds in regrets.items():
            for seed, curve in seeds.items():
                if sampler != base and seed in regrets[base]:
                    d = float(curve[budget - 1] - regrets[base][seed][budget - 1])
                    if np.isfinite(d):
                        diffs[sampler].append((d, task, seed))
    out: dict[str, list[tuple[float, float, str, int]]] = {}
    for sampler, runs in diffs.items():
        tasks_on: dict[int, int] = defaultdict(int)
        for _, _, seed in runs:
            tasks_on[seed] += 1
        n_seeds = len(tasks_on)
        out[sampler] = sorted(
            ((d, d / (tasks_on[seed] * n_seeds), task, seed) for d, task, seed in runs),
            key=lambda run: -abs(run[0]),
        )
    return out


def runs_table(
    runs: dict[str, list[tuple[float, float, str, int]]], base: str, labels: dict[str, str], top: int = 3,
) -> str:
    """A table of :func:`run_differences`: how the runs split, and the runs that weigh most."""
    lines = ["| sampler − " + labels.get(base, base) + " | runs ahead / level / behind | median | "
             f"{top} largest differences, either sign (their share of the mean) |", "|---|---|---|---|"]
    for sampler in sorted(runs, key=lambda s: sum(r[1] for r in runs[s])):
        d = np.array([r[0] for r in runs[sampler]])
        split = " / ".join(f"{np.mean(x):.0%}" for x in (d < 0, d == 0, d > 0))
        largest = runs[sampler][:top]
        named = ", ".join(f"{task} seed {seed} {diff:+.2f}" for diff, _, task, seed in largest)
        share = sum(r[1] for r in largest)
        total = sum(r[1] for r in runs[sampler])
        lines.append(f"| {labels.get(sampler, sampler)} | {split} | {np.median(d):+.3f} | "
                     f"{named} ({share:+.3f} of {total:+.3f}) |")
    return "\n".join(lines)


def paired_table(
    table: dict[str, dict[int, tuple[float, float, int, int]]], base: str, labels: dict[str, str],
) -> str:
    """A table of :func:`paired`, best sampler first."""
    budgets = sorted({b for row in table.values() for b in row})
    lines = ["| sampler − " + labels.get(base, base) + " | "
             + " | ".join(f"@{b} (seeds ahead)" for b in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    for sampler in sorted(table, key=lambda s: table[s][budgets[-1]][0]):
        cells = []
        for b in budgets:
            mean, se, ahead, n = table[sampler][b]
            cells.append(f"{mean:+.3f} ± {se:.3f} ({ahead}/{n})" if np.isfinite(se)
                         else f"{mean:+.3f} (1 seed)")
        lines.append(f"| {labels.get(sampler, sampler)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def best_value_table(
    results: list[dict[str, Any]], direction: str, budgets: Sequence[int] = BUDGETS,
) -> dict[str, dict[int, tuple[float, float]]]:
    """sampler -> budget -> (mean best raw value over the tasks of ``direction``, SE over seeds).

    Not normalized: meaningful only where those tasks share a scale, as the Bayesmark
    suite's classification tasks do (CV accuracy, the measure LLAMBO reports). It does
    not divide by how far random search is from the optimum, so tasks that every
    sampler solves count for little instead of for much.
    """
    per_seed: dict[str, dict[int, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    sign = 1.0 if direction == "minimize" else -1.0
    for r in results:
        if r["direction"] == direction:
            per_seed[r["sampler"]][r["seed"]].append(sign * _best_so_far(r["values"], sign))
    curves = {}
    for sampler, seeds in per_seed.items():
        budget = min(len(b) for runs in seeds.values() for b in runs)
        curves[sampler] = {seed: np.mean([b[:budget] for b in runs], axis=0) for seed, runs in seeds.items()}
    return summary(curves, budgets)


def _cell(mean: float, se: float, digits: int = 3) -> str:
    # One seed has no standard error: the table says so instead of printing nan.
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if np.isfinite(se) else f"{mean:.{digits}f} (1 seed)"


def markdown_table(
    table: dict[str, dict[int, tuple[float, float]]], labels: dict[str, str], *,
    metric: str = "regret", digits: int = 3, higher_is_better: bool = False,
) -> str:
    """A table of :func:`summary` or :func:`best_value_table`, best sampler first."""
    budgets = sorted({b for row in table.values() for b in row})
    lines = ["| sampler | " + " | ".join(f"{metric} @{b}" for b in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    sign = -1.0 if higher_is_better else 1.0
    order = sorted(table, key=lambda s: sign * table[s].get(budgets[-1], (sign * np.inf, 0))[0])
    for sampler in order:
        cells = [_cell(*table[sampler][b], digits) if b in table[sampler] else "–" for b in budgets]
        lines.append(f"| {labels.get(sampler, sampler)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(curves: dict[str, dict[int, np.ndarray]], labels: dict[str, str], title: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for sampler, seeds in sorted(curves.items()):
        stacked = np.stack(list(seeds.values()))
        mean = stacked.mean(axis=0)
        x = np.arange(1, len(mean) + 1)
        ax.plot(x, mean, label=labels.get(sampler, sampler))
    ax.set_xlabel("trials")
    ax.set_ylabel("mean normalized regret (1 = random search)")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
