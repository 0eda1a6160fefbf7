"""HEBO in the benchmark: run from its own virtualenv (.ci/run builds .venv-hebo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from benchmarks.hpo._bayesmark import bayesmark_tasks
from benchmarks.hpo._hebo import HeboSampler, hebo_available, hebo_python, hebo_space
from benchmarks.hpo._samplers import missing
from benchmarks.hpo._synthetic import synthetic_tasks
from tunepilot.space import CategoricalParam, FloatParam, IntParam, SearchSpace

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hebo_env() -> None:
    """HEBO's virtualenv: required in CI (.ci/run builds it), skipped without it elsewhere."""
    if not hebo_available():
        if os.environ.get("CI"):
            pytest.fail(f"{hebo_python()} does not import hebo in CI; .ci/run builds .venv-hebo")
        pytest.skip(f"no HEBO virtualenv at {hebo_python()}; see benchmarks/hpo/hebo-requirements.txt")


def test_hebo_space_keeps_types_bounds_and_log_scales():
    space = SearchSpace([
        FloatParam("C", 1.0, 1000.0, log=True),
        FloatParam("power_t", 0.1, 0.9),
        IntParam("max_depth", 1, 15),
        IntParam("width", 8, 512, log=True),
        CategoricalParam("kernel", ("rbf", "linear")),
    ])
    assert hebo_space(space) == [
        {"name": "C", "type": "pow", "lb": 1.0, "ub": 1000.0},
        {"name": "power_t", "type": "num", "lb": 0.1, "ub": 0.9},
        {"name": "max_depth", "type": "int", "lb": 1, "ub": 15},
        {"name": "width", "type": "pow_int", "lb": 8, "ub": 512},
        {"name": "kernel", "type": "cat", "categories": ["rbf", "linear"]},
    ]


def test_every_benchmark_task_maps_to_a_hebo_space():
    for task in [*synthetic_tasks(), *bayesmark_tasks()]:
        assert len(hebo_space(task.space)) == len(task.space)


def test_a_missing_hebo_environment_says_how_to_make_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNEPILOT_HEBO_PYTHON", str(tmp_path / "no-such-python"))
    hebo_available.cache_clear()
    try:
        assert not hebo_available()
        assert "python3 -m venv .venv-hebo" in missing("hebo")
        assert str(tmp_path / "no-such-python") in missing("hebo")
    finally:
        hebo_available.cache_clear()


@pytest.mark.slow
def test_hebo_from_its_virtualenv_searches_a_real_task(hebo_env):
    task = next(t for t in synthetic_tasks() if t.name == "branin")
    sampler = HeboSampler(task.space, seed=0)
    try:
        study = optuna.create_study(direction=task.direction, sampler=sampler)
        distributions = task.space.to_optuna()
        study.optimize(
            lambda trial: task.objective({n: trial._suggest(n, d) for n, d in distributions.items()}),
            n_trials=6,
        )
    finally:
        sampler.close()
    assert len(study.trials) == 6
    assert sampler.versions["numpy"].startswith("1.")
    for trial in study.trials:
        for name, param in task.space.items():
            assert param.low <= trial.params[name] <= param.high
    # HEBO's opening is 1 + dims random points (3 for Branin); the rest are model-based
    # and must be told every finished trial: distinct suggestions show it is not stuck.
    assert len({tuple(t.params.values()) for t in study.trials}) == 6


@pytest.mark.slow
def test_the_harness_runs_hebo_and_records_its_environment(hebo_env, tmp_path):
    out = tmp_path / "hebo.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.hpo", "--suite", "synthetic", "--tasks", "branin",
         "--samplers", "random,hebo", "--seeds", "2", "--budget", "5", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["samplers"] == ["random", "hebo"] and data["skipped"] == []
    hebo = [r for r in data["results"] if r["sampler"] == "hebo"]
    assert [r["seed"] for r in hebo] == [0, 1]
    assert all(len(r["values"]) == 5 and r["versions"]["HEBO"] == "0.3.6" for r in hebo)


def test_without_its_virtualenv_hebo_is_skipped_and_the_reason_recorded(tmp_path):
    out = tmp_path / "no-hebo.json"
    env = dict(os.environ, TUNEPILOT_HEBO_PYTHON=str(tmp_path / "no-such-python"))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.hpo", "--suite", "synthetic", "--tasks", "branin",
         "--samplers", "random,hebo", "--seeds", "1", "--budget", "3", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipping hebo: no interpreter at" in done.stderr
    data = json.loads(out.read_text())
    assert data["samplers"] == ["random"] and data["skipped"] == ["hebo"]
    # Carrying on with HEBO asked for explicitly says what to install, and loses nothing.
    again = subprocess.run(
        [sys.executable, "-m", "benchmarks.hpo", "--resume", str(out), "--samplers", "hebo"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env=env,
    )
    assert again.returncode != 0
    assert "cannot run: hebo: no interpreter at" in again.stderr
    assert json.loads(out.read_text()) == data
