"""The scores the HPO benchmark reports, on hand-made results."""

from __future__ import annotations

import math

import pytest
from benchmarks.hpo._score import (
    best_value_table,
    checkpoints,
    markdown_table,
    paired,
    paired_table,
    regret_curves,
    run_differences,
    runs_table,
    summary,
    task_regrets,
    task_table,
)


def run(task: str, sampler: str, seed: int, values: list[float | None], direction: str = "maximize"):
    return {"task": task, "direction": direction, "sampler": sampler, "seed": seed, "values": values}


def test_best_value_table_averages_best_so_far_over_tasks_then_seeds() -> None:
    results = [
        run("a", "tpe", 0, [0.5, 0.9, 0.7]), run("b", "tpe", 0, [0.6, None, 0.8]),
        run("a", "tpe", 1, [0.7, 0.7, 0.7]), run("b", "tpe", 1, [0.9, 0.1, 0.1]),
        # A minimised task is left out of a table of maximised ones.
        run("c", "tpe", 0, [100.0, 1.0, 1.0], "minimize"),
    ]
    table = best_value_table(results, "maximize", budgets=(1, 3))
    # Seed 0: (0.5 + 0.6) / 2 at 1 trial, (0.9 + 0.8) / 2 at 3; seed 1: 0.8 and 0.8.
    assert table["tpe"][1][0] == pytest.approx((0.55 + 0.8) / 2)
    assert table["tpe"][3][0] == pytest.approx((0.85 + 0.8) / 2)
    assert table["tpe"][3][1] == pytest.approx(abs(0.85 - 0.8) / 2)  # SE of two seeds
    assert best_value_table(results, "minimize", budgets=(3,))["tpe"][3][0] == 1.0


def test_accuracy_table_sorts_best_first_and_says_when_there_is_one_seed() -> None:
    results = [run("a", "random", 0, [0.5, 0.6]), run("a", "blend", 0, [0.7, 0.9])]
    table = best_value_table(results, "maximize", budgets=(2,))
    assert math.isnan(table["blend"][2][1])
    lines = markdown_table(
        table, {"blend": "the blend"}, metric="accuracy", digits=4, higher_is_better=True
    ).splitlines()
    assert lines[0] == "| sampler | accuracy @2 |"
    assert lines[2:] == ["| the blend | 0.9000 (1 seed) |", "| random | 0.6000 (1 seed) |"]


def test_per_task_regret_divides_by_random_search_distance_and_skips_solved_tasks() -> None:
    results = [
        # Task a (maximize): random search's best is 0.8 and 0.6, mean 0.7; the optimum seen is 0.9.
        run("a", "random", 0, [0.5, 0.8]), run("a", "random", 1, [0.6, 0.6]),
        run("a", "tpe", 0, [0.9, 0.9]), run("a", "tpe", 1, [0.7, 0.8]),
        # Task b: random search already reaches the optimum, so its regret is undefined.
        run("b", "random", 0, [1.0, 1.0]), run("b", "random", 1, [1.0, 1.0]),
        run("b", "tpe", 0, [0.9, 1.0]), run("b", "tpe", 1, [1.0, 1.0]),
    ]
    per_task = task_regrets(results, {})
    gap, regrets = per_task["a"]
    assert gap[-1] == pytest.approx(0.2)
    assert regrets["tpe"][0][-1] == pytest.approx(0.0)
    assert regrets["tpe"][1][-1] == pytest.approx(0.5)
    assert regrets["random"][1][-1] == pytest.approx(1.5)
    assert all(math.isnan(curve[-1]) for curve in per_task["b"][1]["tpe"].values())
    # The mean over tasks leaves the undefined task out instead of turning into NaN.
    curves = regret_curves(results, {})
    assert curves["tpe"][1][-1] == pytest.approx(0.5)
    # The per-task table lists the task nearest to solved first and prints "–" for it.
    lines = task_table(results, {}, ["tpe"]).splitlines()
    assert lines[0] == "| task (@2) | f_random − f_opt | tpe |"
    assert lines[2] == "| b | 0 | – |"
    assert lines[3] == "| a | 0.2 | 0.250 |"


def test_paired_differences_are_taken_seed_by_seed() -> None:
    # One task; random search's mean best is 0.7 at 2 trials and the optimum seen is 0.9.
    results = [
        run("a", "random", 0, [0.5, 0.8]), run("a", "random", 1, [0.6, 0.6]),
        run("a", "tpe", 0, [0.9, 0.9]), run("a", "tpe", 1, [0.7, 0.8]),
        run("a", "blend", 0, [0.8, 0.8]), run("a", "blend", 1, [0.8, 0.9]),
    ]
    curves = regret_curves(results, {})
    table = paired(curves, "tpe", budgets=(2,))
    # Regrets at 2 trials: tpe 0 and 0.5, blend 0.5 and 0 -> differences +0.5 and -0.5.
    mean, se, ahead, n = table["blend"][2]
    assert (mean, ahead, n) == (pytest.approx(0.0), 1, 2)
    assert se == pytest.approx(0.5)
    assert "tpe" not in table
    lines = paired_table(table, "tpe", {"tpe": "TPE"}).splitlines()
    assert lines[0] == "| sampler − TPE | @2 (seeds ahead) |"
    assert lines[2] == "| blend | +0.000 ± 0.500 (1/2) |"
    with pytest.raises(ValueError, match="'gp'"):
        paired(curves, "gp")


def test_run_differences_say_which_runs_make_the_mean() -> None:
    # Two tasks, two seeds; random search's mean best is 0.5 on both, the best seen 0.9 on a
    # and 1.0 on b.
    results = [
        run(t, "random", s, [0.5, 0.5]) for t in ("a", "b") for s in (0, 1)
    ] + [
        run("a", "tpe", 0, [0.9, 0.9]), run("a", "tpe", 1, [0.9, 0.9]),
        run("b", "tpe", 0, [0.9, 0.9]), run("b", "tpe", 1, [1.0, 1.0]),
        run("a", "blend", 0, [0.9, 0.9]), run("a", "blend", 1, [0.5, 0.5]),
        run("b", "blend", 0, [1.0, 1.0]), run("b", "blend", 1, [1.0, 1.0]),
    ]
    runs = run_differences(results, {}, "tpe")
    assert set(runs) == {"blend", "random"}
    # Regrets: tpe a 0 0, b 0.2 0; blend a 0 1.0, b 0 0 -> +1.0 on (a, 1), -0.2 on (b, 0).
    diffs = [(round(d, 6), round(share, 6), task, seed) for d, share, task, seed in runs["blend"]]
    assert diffs[:2] == [(1.0, 0.25, "a", 1), (-0.2, -0.05, "b", 0)]
    # The shares add up to the paired mean difference.
    mean = paired(regret_curves(results, {}), "tpe", budgets=(2,))["blend"][2][0]
    assert sum(r[1] for r in runs["blend"]) == pytest.approx(mean)
    row = runs_table(runs, "tpe", {"tpe": "TPE"}, top=1).splitlines()[2]
    assert row == "| blend | 25% / 50% / 25% | +0.000 | a seed 1 +1.00 (+0.250 of +0.200) |"


def test_reports_show_10_20_30_and_50_trials_where_the_runs_reach_them_and_their_last() -> None:
    assert checkpoints(50) == [10, 20, 30, 50]
    assert checkpoints(30) == [10, 20, 30]
    assert checkpoints(40) == [10, 20, 30, 40]
    assert checkpoints(5) == [5]
    # A synthetic run of 50 trials: every column, in the regret table and the paired one.
    results = [run("a", sampler, seed, [float(seed + i) for i in range(50)], "minimize")
               for sampler in ("random", "gp") for seed in (0, 1)]
    curves = regret_curves(results, {"a": -1.0})
    assert list(summary(curves)["gp"]) == [10, 20, 30, 50]
    assert list(paired(curves, "random")["gp"]) == [10, 20, 30, 50]
    assert markdown_table(summary(curves), {}).splitlines()[0] == (
        "| sampler | regret @10 | regret @20 | regret @30 | regret @50 |")
