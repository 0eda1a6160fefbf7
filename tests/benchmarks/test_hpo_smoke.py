"""Smoke runs of the benchmark harnesses: 2 tasks, 2 seeds, budget 5 (real objectives)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks.hpo.__main__ import tasks_for

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, ok: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python *args`` in the repository; with ``ok`` (the default) it must succeed."""
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if ok:
        assert done.returncode == 0, done.stderr[-2000:]
    return done


def run_then_resume(
    out: Path, first: list[str], resume: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A synthetic run written to ``out``, carried on with ``--resume``: (runs before, file after)."""
    run("-m", "benchmarks.hpo", "--suite", "synthetic", *first, "--out", str(out))
    before = json.loads(out.read_text())["results"]
    run("-m", "benchmarks.hpo", "--resume", str(out), *resume)
    return before, json.loads(out.read_text())


#: The samplers both smoke runs cover; the GP ones need torch (the ``bench`` extra).
SMOKE = ("random", "tpe", "tpe-default", "gp-default", "blend-defaults", "blend-informative",
         "blend-misleading")
#: The blend on each fixed base with the embedded model: on the synthetic suite only, the
#: live model being most of the smoke run's time (the blend code is the same on both).
LIVE = ("blend-tpe", "blend-gp")
NEEDS_TORCH = ("gp-default", "blend-gp")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("suite", "tasks", "samplers"), [
        ("synthetic", "branin,ackley5-shifted", SMOKE + LIVE),
        ("bayesmark", "SVM-breast_cancer,DT-digits", SMOKE),
    ]
)
def test_hpo_harness_smoke_run_and_report(tmp_path, suite, tasks, samplers):
    out = tmp_path / "smoke.json"
    run("-m", "benchmarks.hpo", "--suite", suite, "--tasks", tasks, "--samplers", ",".join(samplers),
        "--seeds", "2", "--budget", "5", "--out", str(out), timeout=600)
    data = json.loads(out.read_text())
    assert data["suite"] == suite and data["seeds"] == [0, 1]
    assert {"machine", "versions", "command", "commit"} <= set(data)
    if Path("/proc/cpuinfo").exists():  # the CPU is named: llama.cpp's output depends on it
        assert data["machine"]["cpu"] and isinstance(data["machine"]["simd"], list)
    # Without torch the GP samplers are skipped, and the file says so.
    torch = importlib.util.find_spec("torch") is not None
    ran = [s for s in samplers if torch or s not in NEEDS_TORCH]
    assert data["samplers"] == ran and data["skipped"] == [s for s in samplers if s not in ran]
    assert len(data["results"]) == 2 * 2 * len(ran)
    assert all(len(r["values"]) == 5 for r in data["results"])
    # Blend runs say which part chose each trial, the weight it gave the prior and the base.
    for r in data["results"]:
        if r["sampler"].startswith("blend"):
            assert len(r["parts"]) == len(r["betas"]) == len(r["bases"]) == 5
            assert set(r["parts"]) <= {"prior", "tpe", "gp", "random"}
            assert all(isinstance(b, float) and b >= 0 for b in r["betas"])
            fixed = {"blend-tpe": {"tpe"}, "blend-gp": {"gp"}}.get(r["sampler"], {"gp", "tpe"})
            assert set(r["bases"]) <= fixed, r
        else:
            assert "parts" not in r and "betas" not in r and "bases" not in r
    # The -default samplers run the task's default configuration first, on every seed.
    tasks_by_name = {t.name: t for t in tasks_for(suite, tasks.split(","))}
    for r in data["results"]:
        task = tasks_by_name[r["task"]]
        if r["sampler"].endswith("-default"):
            assert r["enqueued"] == task.default
            assert r["values"][0] == task.objective(dict(task.default))
        else:
            assert "enqueued" not in r
    assert [p.name for p in tmp_path.iterdir()] == ["smoke.json"]  # no half-written copy left
    base = "gp-default" if torch else "tpe-default"
    report = run("-m", "benchmarks.hpo", "--report", str(out), "--paired", base).stdout
    assert "| sampler | regret @5 |" in report
    assert "controlled prior: informative (not an LLM)" in report
    assert "the default configuration as a user prior (no LLM)" in report
    # Differences from the base seed by seed: one row per other sampler, none for the base.
    label = data["labels"][base]
    assert f"| sampler − {label} | @5 (seeds ahead) |" in report
    paired_rows = [line for line in report.splitlines() if line.endswith("/2) |")]
    assert len(paired_rows) == len(ran) - 1 and not any(r.startswith(f"| {label} |") for r in paired_rows)
    # Run by run: how the runs split, and the runs that weigh most on the mean.
    runs_rows = [line for line in report.split("runs ahead / level / behind")[1].splitlines()
                 if line.startswith("| ") and " of " in line]
    assert len(runs_rows) == len(ran) - 1 and all("seed" in row for row in runs_rows)
    # Bayesmark's classification tasks share a scale: their raw accuracy is shown too.
    assert ("| sampler | accuracy @5 |" in report) == (suite == "bayesmark")
    # A subset is paired with a base it does not show: the base is scored, not shown.
    subset = run("-m", "benchmarks.hpo", "--report", str(out), "--samplers", "blend-defaults",
                 "--paired", base, "--plot", str(tmp_path / "subset.png")).stdout
    assert f"| sampler − {label} |" in subset and f"| {label} |" not in subset
    assert len([line for line in subset.splitlines() if line.endswith("/2) |")]) == 1


@pytest.mark.slow
def test_overhead_benchmark_smoke_run(tmp_path):
    out = tmp_path / "overhead.json"
    table = run("-m", "benchmarks.overhead", "--sizes", "20", "--gp-sizes", "12", "--trials", "2",
                "--gp-trials", "2", "--repeats", "1", "--out", str(out)).stdout
    data = json.loads(out.read_text())
    assert set(data["summary"]["tpe"]["20"]) >= {"tpe_ms", "blend-tpe_ms", "blend-tpe_over_tpe"}
    assert set(data["summary"]["gp"]["12"]) >= {"gp_ms", "blend-gp_ms", "blend-gp_over_gp"}
    assert "| 20 |" in table and "| 12 |" in table


@pytest.mark.slow
def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "partial.json"
    run("-m", "benchmarks.hpo", "--suite", "synthetic", "--tasks", "branin,hartmann6",
        "--samplers", "random,tpe", "--seeds", "3", "--budget", "4", "--jobs", "2", "--out", str(out))
    full = json.loads(out.read_text())
    assert len(full["results"]) == 2 * 2 * 3
    # Drop the last seed, as a run stopped after seed 1 would have left it.
    # and with one run of seed 1 missing too (a run cut off mid-seed).
    kept = [r for r in full["results"] if r["seed"] < 2]
    kept.remove(next(r for r in kept if r["seed"] == 1))
    partial = dict(full, results=kept)
    out.write_text(json.dumps(partial))
    # The report scores only the seeds every sampler finished on every task.
    scored = run("-m", "benchmarks.hpo", "--report", str(out))
    assert "partial run: scoring seeds [0] of [0, 1, 2]" in scored.stderr
    assert "| random | 1.000 (1 seed) |" in scored.stdout
    run("-m", "benchmarks.hpo", "--resume", str(out))
    resumed = json.loads(out.read_text())
    keys = sorted((r["task"], r["sampler"], r["seed"]) for r in resumed["results"])
    assert keys == sorted((r["task"], r["sampler"], r["seed"]) for r in full["results"])
    assert len(resumed["resumed"]) == 1
    # Seeded runs are reproducible, so the resumed runs repeat the originals exactly.
    again = {(r["task"], r["sampler"], r["seed"]): r["values"] for r in resumed["results"]}
    assert all(again[(r["task"], r["sampler"], r["seed"])] == r["values"] for r in full["results"])


@pytest.mark.slow
def test_a_sampler_added_to_a_finished_run_gets_the_same_tasks_seeds_and_budget(tmp_path):
    out = tmp_path / "run.json"
    before, data = run_then_resume(out, ["--tasks", "branin,hartmann6", "--samplers", "random",
                                         "--seeds", "2", "--budget", "4"], ["--samplers", "tpe"])
    assert data["samplers"] == ["random", "tpe"] and data["labels"]["tpe"] == "TPE (independent)"
    assert data["results"][: len(before)] == before  # nothing measured before is touched
    added = sorted((r["task"], r["seed"]) for r in data["results"] if r["sampler"] == "tpe")
    assert added == [("branin", 0), ("branin", 1), ("hartmann6", 0), ("hartmann6", 1)]
    assert all(len(r["values"]) == 4 for r in data["results"])
    # --report --samplers scores a subset; its plot goes where --plot says.
    png = tmp_path / "only-random.png"
    subset = run("-m", "benchmarks.hpo", "--report", str(out), "--samplers", "random", "--plot", str(png))
    assert "| random |" in subset.stdout and "TPE" not in subset.stdout and png.stat().st_size > 0
    # ... and says that the runs it leaves out do not count towards f_opt either.
    assert "the runs of tpe are left out, also of the best value ever seen" in subset.stderr


@pytest.mark.slow
def test_seeds_added_to_a_finished_run_go_to_every_sampler(tmp_path):
    out = tmp_path / "run.json"
    before, data = run_then_resume(out, ["--tasks", "branin", "--samplers", "random,tpe",
                                         "--seeds", "1", "--budget", "3"], ["--seeds", "3"])
    assert data["seeds"] == [0, 1, 2]
    assert data["results"][: len(before)] == before
    assert sorted((r["sampler"], r["seed"]) for r in data["results"]) == [
        ("random", 0), ("random", 1), ("random", 2), ("tpe", 0), ("tpe", 1), ("tpe", 2)]
    assert "--seeds 3" in data["resumed"][0]["command"]
    # Seeds are only ever added: asking for fewer is refused and the file is left alone.
    refused = run("-m", "benchmarks.hpo", "--resume", str(out), "--seeds", "2", ok=False)
    assert refused.returncode != 0 and "--seeds can only add seeds" in refused.stderr
    assert json.loads(out.read_text()) == data
    # The per-task view of the report names each task with random search's distance to the optimum.
    report = run("-m", "benchmarks.hpo", "--report", str(out), "--by-task",
                 "--plot", str(tmp_path / "p.png")).stdout
    assert "| task (@3) | f_random − f_opt | tpe |" in report
    assert report.count("| branin |") == 1
    # --report --seeds N scores the first N seeds, as the table was before seeds were added.
    first = run("-m", "benchmarks.hpo", "--report", str(out), "--seeds", "1", "--samplers", "random",
                "--plot", str(tmp_path / "p1.png"))
    assert "| random | 1.000 (1 seed) |" in first.stdout and "partial run" not in first.stderr
    # --seeds A-B names a range: scoring seed 2 alone.
    last = run("-m", "benchmarks.hpo", "--report", str(out), "--seeds", "2-2", "--samplers", "random",
               "--plot", str(tmp_path / "p2.png"))
    assert "| random | 1.000 (1 seed) |" in last.stdout and "partial run" not in last.stderr


@pytest.mark.slow
def test_a_run_can_start_at_any_seed(tmp_path):
    out = tmp_path / "run.json"
    run("-m", "benchmarks.hpo", "--suite", "synthetic", "--tasks", "branin", "--samplers", "random",
        "--seeds", "10-11", "--budget", "3", "--out", str(out))
    data = json.loads(out.read_text())
    assert data["seeds"] == [10, 11] and sorted(r["seed"] for r in data["results"]) == [10, 11]
    bad = run("-m", "benchmarks.hpo", "--seeds", "3-1", ok=False)
    assert bad.returncode == 2 and "'3-1' names no seed" in bad.stderr


@pytest.mark.slow
def test_blend_recorded_replays_the_embedded_models_recorded_answer(tmp_path):
    out = tmp_path / "run.json"
    run("-m", "benchmarks.hpo", "--suite", "bayesmark", "--tasks", "SVM-wine",
        "--samplers", "blend-recorded", "--seeds", "1", "--budget", "12", "--out", str(out))
    data = json.loads(out.read_text())
    assert data["labels"]["blend-recorded"].endswith("replayed (not a live LLM)")
    [entry] = data["results"]
    assert len(entry["values"]) == 12
    # Asked at the first trial and again after 10 completed trials; every trial blended.
    assert entry["llm_stats"]["calls"] == 2 and entry["llm_stats"]["blend_trials"] == 12


@pytest.mark.slow
def test_merge_keeps_shared_runs_once_and_names_each_rule(tmp_path):
    first = tmp_path / "first.json"
    run("-m", "benchmarks.hpo", "--suite", "synthetic", "--tasks", "branin",
        "--samplers", "random,blend-informative", "--seeds", "2", "--budget", "5", "--out", str(first))
    data = json.loads(first.read_text())
    merged = tmp_path / "merged.json"
    # The same file twice, the second as another version of the blend: the classical
    # sampler's runs are shared and kept once, the blend's are kept under each rule.
    run("-m", "benchmarks.hpo", "--merge", f"{first}=old", f"{first}=new", "--out", str(merged))
    out = json.loads(merged.read_text())
    assert out["samplers"] == ["random", "blend-informative:old", "blend-informative:new"]
    assert len(out["results"]) == 2 * 3 and out["seeds"] == [0, 1]
    assert [m["rule"] for m in out["merged"]] == ["old", "new"]
    assert {m["commit"] for m in out["merged"]} == {data["commit"]}
    report = run("-m", "benchmarks.hpo", "--report", str(merged), "--paired", "random",
                 "--plot", str(tmp_path / "plot.png")).stdout
    assert "(not an LLM) [old] |" in report and "(not an LLM) [new] |" in report, report
    # A subset without random search is still normalized by its runs, which are not shown.
    subset = run("-m", "benchmarks.hpo", "--report", str(merged), "--samplers", "blend-informative:new",
                 "--plot", str(tmp_path / "plot.png")).stdout
    rows = [line for line in subset.splitlines() if line.startswith(("| blend", "| random"))]
    assert len(rows) == 1 and "[new]" in rows[0], subset

    # Runs that differ under one name are not silently dropped.
    changed = dict(data, results=[dict(r, values=[v + 1 for v in r["values"]]) for r in data["results"]])
    second = tmp_path / "second.json"
    second.write_text(json.dumps(changed))
    done = run("-m", "benchmarks.hpo", "--merge", str(first), f"{second}=new",
               "--out", str(tmp_path / "clash.json"), ok=False)
    assert done.returncode != 0 and "differs between" in done.stderr, done.stderr[-500:]
    assert not (tmp_path / "clash.json").exists()
