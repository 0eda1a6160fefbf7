"""Running a spec's study: objective calling, failures, storage, samplers, the result."""

from __future__ import annotations

import importlib.util
import math
import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tunepilot.exceptions import LLMConfigError, ObjectiveError, SpecError
from tunepilot.llm import Backend, Completion
from tunepilot.runner import StudySpec, build_sampler, load_spec, run_study
from tunepilot.samplers import LLMSampler
from tunepilot.testing import FakeLLM

PARAMETERS: dict[str, Any] = {
    "x": {"type": "float", "low": -5, "high": 5},
    "n": {"type": "int", "low": 1, "high": 9, "step": 2},
    "kind": {"type": "categorical", "choices": ["a", "b"]},
}

QUADRATIC = """\
def objective(config):
    return (config["x"] - 1) ** 2 + config["n"] + (config["kind"] == "b")
"""


def make_spec(tmp_path: Path, source: str = QUADRATIC, *, module: str = "objective",
              **fields: Any) -> StudySpec:
    """Write ``module.py`` and a spec next to it, and load the spec from disk."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    data: dict[str, Any] = {
        "name": "test",
        "objective": f"{module}:objective",
        "direction": "minimize",
        "n_trials": 6,
        "seed": 0,
        "sampler": "random",
        "storage": storage_url(tmp_path),
        "parameters": PARAMETERS,
    }
    data.update(fields)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_spec(path)


def storage_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def stored(spec: StudySpec, storage: str | None = None) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=spec.name, storage=storage or spec.storage).trials


def test_trials_are_stored_inside_the_space_and_summarized(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    result = run_study(spec, progress=False)

    trials = stored(spec)
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    assert all(spec.parameters.contains(t.params) for t in trials)
    for t in trials:
        p = t.params
        assert t.value == pytest.approx((p["x"] - 1) ** 2 + p["n"] + (p["kind"] == "b"))
    best = min(trials, key=lambda t: t.value or math.inf)
    assert (result.best_value, result.best_number, result.best_params) == (
        best.value, best.number, best.params)
    assert result.first_value == trials[0].value
    assert (result.n_trials, result.total_trials, result.states) == (6, 6, {"COMPLETE": 6})
    assert (result.study_name, result.storage, result.direction) == (
        "test", spec.storage, "minimize")
    assert result.sources == {} and result.llm_stats is None and not result.interrupted


@pytest.mark.parametrize("source", [
    "def objective(config):\n    return config['x']\n",
    "def objective(params):\n    return params['x']\n",
    "def objective(cfg):\n    return cfg['x']\n",
    "def objective(cfg, trial):\n"
    "    trial.set_user_attr('saw', trial.number)\n    return cfg['x']\n",
    "def objective(trial, config):\n"
    "    trial.set_user_attr('saw', trial.number)\n    return config['x']\n",
    "def objective(*, config, trial):\n    trial.set_user_attr('saw', trial.number)\n"
    "    return config['x']\n",
    "def objective(trial):\n    trial.set_user_attr('saw', trial.number)\n"
    "    return trial.params['x']\n",
    "def objective(config, scale=1.0):\n    return scale * config['x']\n",
])
def test_calling_conventions(tmp_path: Path, source: str) -> None:
    spec = make_spec(tmp_path, source, n_trials=3)
    run_study(spec, progress=False)
    trials = stored(spec)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert [t.value for t in trials] == [t.params["x"] for t in trials]
    wants_trial = "trial" in source.split(":")[0]
    assert [t.user_attrs.get("saw") for t in trials] == (
        [0, 1, 2] if wants_trial else [None] * 3)


@pytest.mark.parametrize(("source", "problem"), [
    ("def objective(a, b):\n    return 0\n", "missing a required argument: 'b'"),
    ("def objective():\n    return 0\n", "takes no parameters"),
])
def test_unusable_signature_fails_before_any_trial(
    tmp_path: Path, source: str, problem: str
) -> None:
    spec = make_spec(tmp_path, source)
    with pytest.raises(ObjectiveError, match=problem):
        run_study(spec, progress=False)
    assert optuna.get_all_study_names(storage=spec.storage) == []


def test_missing_module_names_the_spec_directory(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, objective="nowhere:objective")
    with pytest.raises(ObjectiveError, match=rf"no module 'nowhere' in {tmp_path}"):
        run_study(spec, progress=False)


def test_missing_function_lists_what_the_module_defines(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "def train(config):\n    return 0\n", objective="objective:fit")
    with pytest.raises(ObjectiveError, match=r"has no 'fit'; it defines: train"):
        run_study(spec, progress=False)


def test_error_while_importing_the_module_is_shown(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "import not_a_real_dependency_xyz\n")
    with pytest.raises(ObjectiveError, match="no module named 'not_a_real_dependency_xyz'"):
        run_study(spec, progress=False)
    spec = make_spec(tmp_path, "raise RuntimeError('no GPU here')\n")
    with pytest.raises(ObjectiveError, match="RuntimeError: no GPU here"):
        run_study(spec, progress=False)


def test_each_spec_imports_its_own_neighbour(tmp_path: Path) -> None:
    # Same module name in two directories: a long-lived process must not reuse the first.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_spec(tmp_path / "a", "def objective(config):\n    return 1.0\n", n_trials=1)
    second = make_spec(tmp_path / "b", "def objective(config):\n    return 2.0\n", n_trials=1)
    assert run_study(first, progress=False).best_value == 1.0
    assert run_study(second, progress=False).best_value == 2.0


def test_failing_trials_are_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, """\
        def objective(config):
            if config["kind"] == "b":
                raise ValueError("kind b diverged")
            return config["x"]
    """, n_trials=8)
    result = run_study(spec, progress=False)
    trials = stored(spec)
    assert len(trials) == 8
    failed = [t for t in trials if t.params["kind"] == "b"]
    assert failed and all(t.state == TrialState.FAIL for t in failed)
    assert all(t.user_attrs["fail_reason"] == "ValueError: kind b diverged" for t in failed)
    assert result.states == {"COMPLETE": 8 - len(failed), "FAIL": len(failed)}
    assert result.failures == [
        {"number": t.number, "reason": "ValueError: kind b diverged"} for t in failed]


@pytest.mark.parametrize(("returned", "reason"), [
    ("float('nan')", "the objective returned nan; it must return one finite number"),
    ("float('-inf')", "the objective returned -inf"),
    ("'0.5'", "the objective returned '0.5' (str)"),
    ("None", "the objective returned None (NoneType)"),
    ("{'loss': 1.0}", "the objective returned a dict with keys ['loss']"),
])
def test_a_non_finite_or_non_numeric_return_fails_with_a_reason(
    tmp_path: Path, returned: str, reason: str
) -> None:
    spec = make_spec(tmp_path, f"def objective(config):\n    return {returned}\n", n_trials=2)
    result = run_study(spec, progress=False)
    trials = stored(spec)
    assert [t.state for t in trials] == [TrialState.FAIL] * 2
    assert trials[0].user_attrs["fail_reason"].startswith(reason)
    assert result.best_value is None and result.first_value is None


def test_numpy_numbers_are_accepted(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "import numpy\ndef objective(config):\n"
                               "    return numpy.float32(config['n'])\n", n_trials=2)
    run_study(spec, progress=False)
    assert [t.value for t in stored(spec)] == [float(t.params["n"]) for t in stored(spec)]


def test_ctrl_c_stops_the_run_and_keeps_finished_trials(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, """\
        calls = 0
        def objective(config):
            global calls
            calls += 1
            if calls == 3:
                raise KeyboardInterrupt
            return config["x"]
    """, n_trials=10, module="interrupting")
    result = run_study(spec, progress=False)
    assert result.interrupted
    states = [t.state for t in stored(spec)]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]
    assert result.n_trials == 3 and result.best_value is not None


def test_running_again_resumes_the_study_up_to_its_budget(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, n_trials=3)
    run_study(spec, progress=False)
    again = run_study(spec, progress=False)
    assert (again.n_trials, again.total_trials, again.budget) == (0, 3, 3)
    result = run_study(spec, n_trials=5, progress=False)
    assert (result.n_trials, result.total_trials) == (2, 5)
    assert [t.number for t in stored(spec)] == [0, 1, 2, 3, 4]
    assert result.best_value == min(t.value for t in stored(spec) if t.value is not None)


def test_failed_trials_use_up_the_budget(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "def objective(config):\n    raise ValueError('no')\n",
                     n_trials=2)
    run_study(spec, progress=False)
    assert run_study(spec, progress=False).n_trials == 0


def test_resuming_with_the_other_direction_is_refused(tmp_path: Path) -> None:
    run_study(make_spec(tmp_path, n_trials=1), progress=False)
    spec = make_spec(tmp_path, direction="maximize")
    with pytest.raises(SpecError, match="was created to minimize, but the spec says maximize"):
        run_study(spec, progress=False)
    assert len(stored(spec)) == 1


def test_resuming_with_a_changed_parameter_kind_is_refused(tmp_path: Path) -> None:
    run_study(make_spec(tmp_path, n_trials=1), progress=False)
    changed = dict(PARAMETERS, kind={"type": "categorical", "choices": ["a", "b", "c"]})
    spec = make_spec(tmp_path, parameters=changed)
    with pytest.raises(SpecError, match=r"parameters\.kind: study 'test' .* already has trials"):
        run_study(spec, progress=False)


def test_overrides_change_storage_trials_and_seed(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = run_study(spec, storage=other, n_trials=2, seed=7, progress=False)
    assert result.storage == other and result.n_trials == 2
    assert optuna.get_all_study_names(storage=spec.storage) == []
    with pytest.raises(SpecError, match="n_trials: Input should be greater than 0"):
        run_study(spec, n_trials=0, progress=False)


def test_the_same_seed_gives_the_same_trials(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, sampler="tpe", n_trials=4)
    runs = [f"sqlite:///{tmp_path / name}.db" for name in ("a", "b", "c")]
    run_study(spec, storage=runs[0], progress=False)
    run_study(spec, storage=runs[1], progress=False)
    run_study(spec, storage=runs[2], seed=1, progress=False)
    a, b, c = ([t.params for t in stored(spec, url)] for url in runs)
    assert a == b and a != c


def test_unopenable_storage_is_a_spec_error(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, storage="not a url")
    with pytest.raises(SpecError, match=r"storage: cannot open 'not a url'"):
        run_study(spec, progress=False)
    spec = make_spec(tmp_path, storage=f"sqlite:///{tmp_path}/missing/dir/x.db")
    with pytest.raises(SpecError, match="unable to open database file"):
        run_study(spec, progress=False)


def test_classical_sampler_options_are_passed(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, sampler={"name": "qmc", "qmc_type": "halton", "scramble": True})
    sampler = build_sampler(spec)
    assert isinstance(sampler, optuna.samplers.QMCSampler)
    assert sampler._qmc_type == "halton" and sampler._scramble


@pytest.mark.parametrize(("sampler", "message"), [
    ({"name": "tpe", "n_startup": 3},
     "sampler.n_startup: unknown option for the tpe sampler; did you mean 'n_startup_trials'?"),
    ({"name": "random", "seed": 3}, "sampler.seed: set 'seed' at the top level"),
    ({"name": "qmc", "qmc_type": "bogus"}, "sampler: invalid option value: .*qmc_type='bogus'"),
    ({"name": "llm", "temprature": 0.5}, "sampler.temprature: unknown option for the llm sampler; "
     "did you mean 'temperature'\\?.* allowed: .*max_prompt_tokens"),
    ({"name": "llm", "fallback": "bayes"}, "sampler.fallback.name: Input should be 'llm'"),
    ({"name": "llm", "fallback": "llm"}, "sampler.fallback: the fallback must be a classical"),
])
def test_bad_sampler_options_are_spec_errors(
    tmp_path: Path, sampler: dict[str, Any], message: str
) -> None:
    spec = make_spec(tmp_path, sampler=sampler)
    with pytest.raises(SpecError, match=rf"^{tmp_path / 'spec.yaml'}: {message}"):
        build_sampler(spec)


@pytest.mark.parametrize(("name", "module"), [("cmaes", "cmaes"), ("gp", "torch")])
def test_sampler_needing_a_missing_package_says_what_to_install(
    tmp_path: Path, name: str, module: str
) -> None:
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed, so this error cannot happen")
    with pytest.raises(SpecError, match=f"needs the '{module}' package; install it with "
                                        f"'pip install {module}'"):
        build_sampler(make_spec(tmp_path, sampler=name))


def llm_spec(tmp_path: Path, backend: Backend, **options: Any) -> StudySpec:
    # A Backend object cannot be written in YAML, so this spec is built in code.
    path = make_spec(tmp_path).source
    assert path is not None
    data = yaml.safe_load(path.read_text())
    data["sampler"] = {"name": "llm", "model": backend, "description": "test", **options}
    return StudySpec.from_mapping(data, source=path)


def test_llm_sampler_gets_the_spec_space_and_seed(tmp_path: Path) -> None:
    spec = llm_spec(tmp_path, FakeLLM(seed=0), fallback="random", batch_size=2)
    sampler = build_sampler(spec)
    assert isinstance(sampler, LLMSampler)
    result = run_study(spec, progress=False)
    trials = stored(spec)
    assert len(trials) == 6 and all(spec.parameters.contains(t.params) for t in trials)
    assert sum(result.sources.values()) == 6 and result.sources.get("llm", 0) >= 1
    assert result.sources == {
        s: sum(t.user_attrs["llm.source"] == s for t in trials) for s in result.sources}
    assert result.llm_stats is not None and result.llm_stats["calls"] >= 1


def test_llm_repairs_are_counted(tmp_path: Path) -> None:
    # A careless model proposes values outside the bounds; they are clamped and counted.
    spec = llm_spec(tmp_path, FakeLLM(mode="random", seed=1))
    result = run_study(spec, n_trials=8, progress=False)
    trials = stored(spec)
    assert all(spec.parameters.contains(t.params) for t in trials)
    repaired = sum(1 for t in trials if t.user_attrs.get("llm.repairs"))
    assert result.repaired_trials == repaired > 0


class MisconfiguredLLM:
    """A backend whose every call fails the way a missing API key does."""

    name = "misconfigured"

    def complete(self, messages: list[dict[str, str]], *, schema: dict[str, Any],
                 temperature: float = 0.7, seed: int | None = None,
                 max_tokens: int = 512) -> Completion:
        raise LLMConfigError("OPENAI_API_KEY is not set; export it")


def test_a_misconfigured_model_stops_the_run_at_the_first_trial(tmp_path: Path) -> None:
    spec = llm_spec(tmp_path, MisconfiguredLLM())
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY is not set"):
        run_study(spec, progress=False)
    trials = stored(spec)
    assert [t.state for t in trials] == [TrialState.FAIL]
    assert trials[0].user_attrs["fail_reason"] == (
        "LLMConfigError: OPENAI_API_KEY is not set; export it")


@pytest.mark.parametrize("name", ["llm", "blend"])
def test_llm_and_blend_pick_the_llm_sampler_mode(tmp_path: Path, name: str) -> None:
    spec = llm_spec(tmp_path, FakeLLM(seed=0))
    spec = spec.replace(sampler={**dict(spec.sampler.options), "name": name})
    sampler = build_sampler(spec)
    assert isinstance(sampler, LLMSampler) and sampler.mode == name
    result = run_study(spec, n_trials=4, progress=False)
    assert result.states == {"COMPLETE": 4} and result.sampler == name


def test_grid_walks_every_combination_once(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, sampler="grid", n_trials=50, parameters={
        "n": "range(1, 4)", "kind": "choice(a, b)", "x": "range(0.0, 1.0, 0.5)"})
    result = run_study(spec, progress=False)
    combos = sorted((t.params["n"], t.params["kind"], t.params["x"]) for t in stored(spec))
    assert result.n_trials == 12 and len(set(combos)) == 12
    assert {c[2] for c in combos} == {0.0, 0.5}


def test_grid_needs_discrete_values(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="the grid sampler needs discrete values, but "
                                        "parameters.x is a continuous float"):
        build_sampler(make_spec(tmp_path, sampler="grid"))


def test_several_directions_store_every_value_and_the_pareto_front(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, """\
        def objective(config):
            return {"loss": (config["x"] - 1) ** 2, "size": config["n"]}
    """, direction=None, directions=["minimize", "minimize"], metric=["loss", "size"],
        sampler={"name": "nsga2", "population_size": 4}, n_trials=8)
    result = run_study(spec, progress=False)
    trials = stored(spec)
    assert all(t.values == [pytest.approx((t.params["x"] - 1) ** 2), t.params["n"]]
               for t in trials)
    study = optuna.load_study(study_name=spec.name, storage=spec.storage)
    assert [b["number"] for b in result.best_trials] == [t.number for t in study.best_trials]
    assert result.best_value is None and result.direction == "minimize, minimize"


def test_a_metric_picks_the_value_from_a_dict(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "def objective(config):\n    return {'acc': config['x']}\n",
                     metric="acc", n_trials=2)
    run_study(spec, progress=False)
    assert [t.value for t in stored(spec)] == [t.params["x"] for t in stored(spec)]


def test_parallel_jobs_and_a_timeout(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "import time\ndef objective(config):\n"
                               "    time.sleep(0.2)\n    return config['x']\n",
                     n_trials=None, timeout=1.0, n_jobs=2)
    result = run_study(spec, progress=False)
    assert 2 <= result.n_trials <= 14 and result.states == {"COMPLETE": result.n_trials}
    assert result.budget is None


def test_the_progress_bar_names_the_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    spec = make_spec(tmp_path, "def objective(config):\n    return config['x'], config['n']\n",
                     name="phase-two", direction=None, directions=["minimize", "maximize"],
                     n_trials=3)
    run_study(spec, progress=True)
    err = capsys.readouterr().err
    assert "phase-two" in err and "3/3" in err and "on the Pareto front" in err
