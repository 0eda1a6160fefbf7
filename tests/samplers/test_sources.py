"""Prior sources: earlier studies named by StudyRef, and their best configurations."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tunepilot.exceptions import SearchSpaceError
from tunepilot.samplers import StudyRef
from tunepilot.samplers._sources import Source, as_study_refs, best_configs, rank_weights
from tunepilot.space import CategoricalParam, FloatParam, IntParam, SearchSpace

SPACE = SearchSpace([FloatParam("x", 0.0, 1.0), CategoricalParam("k", ("a", "b"))])


def study(storage: str, name: str, trials: list[tuple[dict[str, object], float]],
          direction: str = "minimize") -> None:
    made = optuna.create_study(study_name=name, storage=storage, direction=direction)
    distributions = {"x": FloatParam("x", -1.0, 2.0).to_distribution(),
                     "k": CategoricalParam("k", ("a", "b", "c")).to_distribution(),
                     "n": IntParam("n", 1, 9).to_distribution()}
    for params, value in trials:
        made.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: distributions[k] for k in params}, value=value))


def test_as_study_refs_takes_names_refs_and_lists() -> None:
    assert as_study_refs(None) == []
    assert as_study_refs("a") == [StudyRef("a")]
    ref = StudyRef("b", storage="sqlite:///b.db", top_k=2)
    assert as_study_refs(["a", ref]) == [StudyRef("a"), ref]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"study_name": ""}, "prior_from: a study name is needed"),
    ({"study_name": "a", "top_k": 0}, "prior_from: top_k must be >= 1, got 0"),
])
def test_a_study_ref_is_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StudyRef(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_best_configs_are_the_best_trials_fitted_into_the_space(
    tmp_path: Path, direction: str
) -> None:
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    study(storage, "earlier", [
        ({"x": 0.2, "k": "a"}, 3.0),
        ({"x": 1.7, "k": "b"}, 1.0),        # x outside this study's range: clamped to 1
        ({"x": 0.5, "k": "c"}, 2.0),        # a choice this study lacks: k left out
        ({"n": 4}, 0.5),                    # no shared parameter: no configuration
    ], direction=direction)
    configs = best_configs(StudyRef("earlier", top_k=3), SPACE,
                           optuna.storages.RDBStorage(storage))
    if direction == "minimize":
        assert configs == [{"x": 1.0, "k": "b"}, {"x": 0.5}]
    else:
        assert configs == [{"x": 0.2, "k": "a"}, {"x": 0.5}, {"x": 1.0, "k": "b"}]


def test_best_configs_says_why_a_study_cannot_give_a_prior(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    opened = optuna.storages.RDBStorage(storage)
    with pytest.raises(SearchSpaceError, match="no study named 'missing' in that storage"):
        best_configs(StudyRef("missing"), SPACE, opened)
    optuna.create_study(study_name="empty", storage=storage)
    with pytest.raises(SearchSpaceError, match="'empty' has no completed trial yet"):
        best_configs(StudyRef("empty"), SPACE, opened)
    study(storage, "other", [({"n": 3}, 1.0)])
    with pytest.raises(SearchSpaceError, match="'other' shares no parameter with this study"):
        best_configs(StudyRef("other"), SPACE, opened)
    optuna.create_study(study_name="two", storage=storage, directions=["minimize", "minimize"])
    with pytest.raises(SearchSpaceError, match="'two' has several objectives"):
        best_configs(StudyRef("two"), SPACE, opened)


def test_a_ref_with_its_own_storage_is_read_there(tmp_path: Path) -> None:
    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"
    study(elsewhere, "earlier", [({"x": 0.3, "k": "a"}, 1.0)])
    here = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'here.db'}")
    assert best_configs(StudyRef("earlier", storage=elsewhere), SPACE, here) == [
        {"x": 0.3, "k": "a"}]


def test_rank_weights_fall_with_the_rank_and_average_one() -> None:
    assert rank_weights(4) == pytest.approx([1.6, 1.2, 0.8, 0.4])
    assert rank_weights(1) == [1.0]
    assert rank_weights(0) == []
    assert sum(rank_weights(7)) == pytest.approx(7)


def test_a_source_passes_each_configurations_weight_to_its_prior() -> None:
    space = SearchSpace([FloatParam("x", 0.0, 1.0), FloatParam("y", 0.0, 1.0)])
    source = Source("llm")
    source.add([{"x": 0.1, "y": 0.1}, {"x": 0.9, "y": 0.9}], weights=[3.0, 1.0])
    source.add([{"x": 0.5, "y": 0.5}])  # no weights: 1 each
    source.add([{"x": 5.0, "y": 0.5}, {"x": 5.0, "y": 5.0}], [{"x"}, {"x", "y"}], [2.0, 2.0])
    prior = source.prior(space, 0.1)
    assert prior is not None
    # The last configuration says nothing inside the space and is left out, weight and all.
    assert list(prior.weights) == pytest.approx([3 / 7, 1 / 7, 1 / 7, 2 / 7])
    with pytest.raises(ValueError, match="2 weights for 1 configurations"):
        source.add([{"x": 0.5, "y": 0.5}], weights=[1.0, 1.0])
