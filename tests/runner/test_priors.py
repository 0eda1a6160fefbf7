"""Priors in specs: beliefs written on parameters, ``prior_from`` earlier studies, their checks."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest

from tunepilot.exceptions import SpecError
from tunepilot.runner import PriorSource, StudySpec, load_studies, run_studies
from tunepilot.runner._priors import check_prior_from
from tunepilot.space import Belief, CategoricalParam, FloatParam

BASE: dict[str, Any] = {
    "name": "s",
    "objective": "train:objective",
    "direction": "minimize",
    "n_trials": 3,
    "sampler": {"name": "blend", "model": None},
}


def spec(**fields: Any) -> StudySpec:
    return StudySpec.from_mapping({**BASE, **fields})


def spec_error(**fields: Any) -> str:
    with pytest.raises(SpecError) as raised:
        spec(**fields)
    return str(raised.value).removeprefix("spec: ")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    (tmp_path / "train.py").write_text("def objective(config):\n    return config['x'] ** 2\n")
    return path


def file_error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(SpecError) as raised:
        load_studies(path, **kwargs)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message.removeprefix(f"{path}: ")


def test_a_prior_written_on_a_parameter_becomes_a_belief() -> None:
    study = spec(parameters={
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True, "prior": "3e-4",
               "confidence": "high"},
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"], "prior": "sgd"},
        "momentum": {"min": 0.0, "max": 0.99},
    })
    assert study.priors == {"lr": Belief(3e-4, "high"), "optimizer": Belief("sgd", "medium")}
    assert list(study.parameters.values())[:2] == [
        FloatParam("lr", 1e-5, 1e-1, log=True), CategoricalParam("optimizer", ("adam", "sgd"))]


def test_priors_may_be_given_beside_parameters_in_any_form() -> None:
    study = spec(parameters={"lr": "tag(log, interval(1e-5, 1e-1))"},
                 priors={"lr": {"value": 1e-3, "confidence": "low"}})
    assert study.priors == {"lr": Belief(1e-3, "low")}


def test_a_prior_written_twice_is_refused() -> None:
    message = spec_error(parameters={"x": {"type": "float", "low": 0, "high": 1, "prior": 0.5}},
                         priors={"x": 0.4})
    assert message == "priors.x: also written on parameters.x; keep one of the two"


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"prior": 2.0}, ("parameters.x.prior: 2.0 is outside the parameter's range "
                          "(float in [0, 1])")),
        ({"prior": "big"}, "parameters.x.prior: must be a number, got 'big'"),
        ({"prior": 0.5, "confidence": "certain"},
         "parameters.x.confidence: must be one of low, medium, high, got 'certain'"),
        ({"confidence": "high"},
         "parameters.x.confidence: a confidence without a prior; add prior: VALUE next to it"),
    ],
)
def test_a_bad_prior_names_its_field(definition: dict[str, Any], message: str) -> None:
    parameters = {"x": {"type": "float", "low": 0, "high": 1, **definition}}
    assert spec_error(parameters=parameters) == message


def test_a_bad_categorical_prior_lists_the_choices() -> None:
    message = spec_error(parameters={"k": {"values": ["rbf", "linear"], "prior": "poly"}})
    assert message == "parameters.k.prior: 'poly' is not one of the choices ['rbf', 'linear']"


@pytest.mark.parametrize("sampler", ["tpe", "gp", "random", "llm", {"name": "cmaes"}, None])
def test_a_prior_on_a_sampler_that_cannot_use_it_says_to_use_blend(sampler: Any) -> None:
    fields: dict[str, Any] = {
        "parameters": {"x": {"type": "float", "low": 0, "high": 1, "prior": 0.5}}}
    if sampler is not None:
        fields["sampler"] = sampler
    data = {**BASE, **fields}
    if sampler is None:
        del data["sampler"]  # the default, tpe
    with pytest.raises(SpecError) as raised:
        StudySpec.from_mapping(data)
    name = sampler["name"] if isinstance(sampler, dict) else sampler or "tpe"
    assert str(raised.value) == (
        f"spec: parameters.x.prior: the {name} sampler cannot use a prior; use sampler: blend "
        "(with model: null for no language model)")
    with pytest.raises(SpecError, match=rf"^spec: prior_from: the {name} sampler cannot start "
                                        "from earlier studies; use sampler: blend"):
        StudySpec.from_mapping({**data, "parameters": {"x": "interval(0, 1)"},
                                "prior_from": "foundation"})


def test_prior_from_takes_a_name_a_mapping_or_a_list() -> None:
    parameters = {"x": "interval(0, 1)"}
    assert spec(parameters=parameters, prior_from="a").prior_from == [PriorSource(study="a")]
    mapped = spec(parameters=parameters,
                  prior_from={"study": "a", "storage": "sqlite:///other.db", "top_k": 3})
    assert mapped.prior_from == [PriorSource(study="a", storage="sqlite:///other.db", top_k=3)]
    listed = spec(parameters=parameters, prior_from=["a", {"study": "b"}])
    assert [s.study for s in listed.prior_from] == ["a", "b"]
    assert spec(parameters=parameters, prior_from=None).prior_from == []


@pytest.mark.parametrize(
    ("prior_from", "fragment"),
    [
        ({"studdy": "a"}, "prior_from.0.studdy: unknown field; did you mean 'study'?"),
        ({"study": "a", "top_k": 0}, ("prior_from.0.top_k: Input should be greater than or "
                                      "equal to 1")),
        ("s", "prior_from: study 's' cannot start from itself; name an earlier study"),
    ],
)
def test_a_bad_prior_from_names_its_field(prior_from: Any, fragment: str) -> None:
    assert fragment in spec_error(parameters={"x": "interval(0, 1)"}, prior_from=prior_from)


def test_replace_keeps_the_priors_and_checks_them_against_new_ranges() -> None:
    study = spec(parameters={"x": {"type": "float", "low": 0, "high": 1, "prior": 0.5}})
    assert study.replace(n_trials=9).priors == {"x": Belief(0.5)}
    with pytest.raises(SpecError, match=r"priors.x: prior 0.5 is outside the parameter's range"):
        study.replace(parameters={"x": {"type": "float", "low": 0.6, "high": 1}})


def test_errors_in_a_file_give_the_line_of_the_prior(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        objective: train:objective
        direction: minimize
        n_trials: 3
        sampler: {name: blend, model: null}
        parameters:
          x:
            type: float
            low: 0
            high: 1
            prior: 3
        studies:
          - name: a
          - name: b
            parameters:
              x: {type: float, low: 0, high: 1, prior: 0.5, confidence: sure}
    """)
    assert file_error(path) == (
        "line 10: parameters.x.prior: 3 is outside the parameter's range (float in [0, 1]); "
        "line 15: studies[1].parameters.x.confidence: must be one of low, medium, high, "
        "got 'sure'")


def test_a_prior_may_come_from_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: s
        objective: train:objective
        direction: minimize
        n_trials: 3
        sampler: {name: blend, model: null}
        parameters:
          x: {type: float, low: 0, high: 1}
    """)
    [study] = load_studies(path, overrides=["parameters.x.prior=0.25"])
    assert study.priors == {"x": Belief(0.25)}
    assert file_error(path, overrides=["parameters.x.prior=7"]) == (
        "parameters.x.prior (from the command line): 7.0 is outside the parameter's range "
        "(float in [0, 1])")


# --- prior_from, checked before any trial -------------------------------------------------


def finished(storage: str, name: str, values: list[float]) -> None:
    study = optuna.create_study(study_name=name, storage=storage)
    for value in values:
        study.enqueue_trial({"x": value})
        study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=1)


def test_prior_from_a_missing_study_fails_with_the_storage_named(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    finished(storage, "other", [0.5])
    study = spec(parameters={"x": "interval(0, 1)"}, storage=storage, prior_from="foundation")
    with pytest.raises(SpecError) as raised:
        check_prior_from(study)
    assert str(raised.value) == (
        f"spec: prior_from: no study named 'foundation' in that storage; run it first, or name "
        f"one of the storage's studies (in {storage})")


def test_prior_from_a_missing_database_file_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    study = spec(parameters={"x": "interval(0, 1)"},
                 prior_from={"study": "a", "storage": f"sqlite:///{missing}"})
    with pytest.raises(SpecError, match="prior_from: .*no such database file"):
        check_prior_from(study)
    assert not missing.exists()


def test_prior_from_a_study_without_a_completed_trial_is_refused(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    optuna.create_study(study_name="empty", storage=storage)
    study = spec(parameters={"x": "interval(0, 1)"}, storage=storage, prior_from="empty")
    with pytest.raises(SpecError, match="prior_from: 'empty' has no completed trial yet"):
        check_prior_from(study)
    finished(storage, "done", [0.5])
    check_prior_from(spec(parameters={"x": "interval(0, 1)"}, storage=storage,
                          prior_from="done"))


def test_a_phase_may_start_from_one_that_runs_before_it(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    later = spec(name="finetune", parameters={"x": "interval(0, 1)"}, storage=storage,
                 prior_from="foundation")
    check_prior_from(later, coming=[("foundation", storage)])
    with pytest.raises(SpecError, match="no study named 'foundation'"):
        check_prior_from(later, coming=[("foundation", "sqlite:///elsewhere.db")])


def test_a_misnamed_phase_fails_before_the_first_study_runs(tmp_path: Path) -> None:
    path = write(tmp_path, f"""\
        objective: train:objective
        direction: minimize
        n_trials: 3
        storage: sqlite:///{tmp_path / 'phases.db'}
        sampler: {{name: blend, model: null}}
        parameters:
          x: interval(0, 1)
        studies:
          - name: foundation
            sampler: random
          - name: finetune
            prior_from: foundaton
    """)
    with pytest.raises(SpecError, match="prior_from: no study named 'foundaton' in sqlite:///"
                                        ".*, which does not exist yet"):
        run_studies(load_studies(path), progress=False)
    assert optuna.get_all_study_names(f"sqlite:///{tmp_path / 'phases.db'}") == []


# --- what reaches the sampler -------------------------------------------------------------


def test_the_blend_gets_the_spec_priors_and_earlier_studies() -> None:
    from tunepilot.runner import build_sampler
    from tunepilot.samplers import LLMSampler, StudyRef

    study = spec(parameters={"x": {"type": "float", "low": 0, "high": 1, "prior": 0.25,
                                   "confidence": "high"}},
                 prior_from=["a", {"study": "b", "storage": "sqlite:///b.db", "top_k": 2}])
    sampler = build_sampler(study)
    assert isinstance(sampler, LLMSampler) and sampler.model is None
    assert sampler.prior == {"x": Belief(0.25, "high")}
    assert sampler.prior_from == [StudyRef("a"), StudyRef("b", storage="sqlite:///b.db", top_k=2)]


def test_a_phase_starts_from_the_best_trials_of_the_one_before(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'phases.db'}"
    path = write(tmp_path, f"""\
        objective: train:objective
        direction: minimize
        seed: 0
        storage: {storage}
        sampler: {{name: blend, model: null}}
        parameters:
          x: {{type: float, low: -1, high: 1}}
        studies:
          - name: foundation
            n_trials: 8
          - name: finetune
            n_trials: 4
            prior_from: foundation
    """)
    foundation, finetune = run_studies(load_studies(path), progress=False)
    assert (foundation.n_trials, finetune.n_trials) == (8, 4)
    trials = optuna.load_study(study_name="finetune", storage=storage).trials
    assert any("study" in t.user_attrs.get("llm.prior_sources", []) for t in trials)
    first = optuna.load_study(study_name="foundation", storage=storage).trials
    assert not any(t.user_attrs.get("llm.prior_sources") for t in first)
