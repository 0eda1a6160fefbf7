"""Each task's default configuration: inside its space, and what its comment says it is."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from benchmarks.hpo._bayesmark import (
    DATASETS,
    N_FEATURES,
    SPACES,
    _data,
    _objective,
    bayesmark_tasks,
    library_default,
)
from benchmarks.hpo._samplers import DEFAULT_FIRST, SAMPLERS, first_trial
from benchmarks.hpo._synthetic import synthetic_tasks
from benchmarks.hpo._tasks import Task

from tunepilot.space import FloatParam, IntParam, parse_beliefs

TASKS = bayesmark_tasks() + synthetic_tasks()


def _fold_rows(dataset: str) -> list[int]:
    """Training rows of each fold of the task's 5-fold CV (stratified for classifiers)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    x, y = _data(dataset)
    folds = KFold(5) if dataset == "diabetes" else StratifiedKFold(5)
    return [len(train) for train, _ in folds.split(x, y)]


def _quiet_cv(estimator: Any, dataset: str) -> float:
    """The task's score of an estimator built here, as the objective computes it."""
    from sklearn.model_selection import cross_val_score

    x, y = _data(dataset)
    scoring = "neg_mean_squared_error" if dataset == "diabetes" else "accuracy"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(np.mean(cross_val_score(estimator, x, y, cv=5, scoring=scoring)))
    return -value if dataset == "diabetes" else value


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_every_default_lies_inside_its_space_and_is_a_valid_user_prior(task: Task) -> None:
    assert task.space.contains(task.default)
    for name in task.space:
        if isinstance(task.space[name], IntParam):
            assert type(task.default[name]) is int, name
    assert set(parse_beliefs(task.space, task.default)) == set(task.space)


def test_only_the_default_samplers_enqueue_it() -> None:
    task = TASKS[0]
    assert set(DEFAULT_FIRST) <= set(SAMPLERS)
    for name in SAMPLERS:
        first = first_trial(name, task)
        assert first == (dict(task.default) if name in DEFAULT_FIRST else None), name


def test_feature_counts_are_the_datas() -> None:
    assert {d: _data(d)[0].shape[1] for d in DATASETS} == N_FEATURES


def test_defaults_kept_as_they_are_equal_the_installed_scikit_learns() -> None:
    from sklearn import ensemble, neural_network, svm, tree

    for dataset in DATASETS:
        regression = dataset == "diabetes"
        svm_params = (svm.SVR if regression else svm.SVC)().get_params()
        ada = (ensemble.AdaBoostRegressor if regression else ensemble.AdaBoostClassifier)().get_params()
        mlp = (neural_network.MLPRegressor if regression else neural_network.MLPClassifier)().get_params()
        dt = (tree.DecisionTreeRegressor if regression else tree.DecisionTreeClassifier)().get_params()
        assert {k: svm_params[k] for k in ("C", "tol")} == {
            k: library_default("SVM", dataset)[k] for k in ("C", "tol")}
        assert {k: ada[k] for k in SPACES["ADA"]} == library_default("ADA", dataset)
        ours = library_default("MLP", dataset)
        assert mlp["hidden_layer_sizes"] == (ours["hidden_layer_sizes"],)
        assert mlp["learning_rate"] == "constant"  # power_t is unused, as the comment says
        assert {k: mlp[k] for k in ("alpha", "learning_rate_init", "power_t", "momentum")} == {
            k: ours[k] for k in ("alpha", "learning_rate_init", "power_t", "momentum")}
        # The ones the space cannot hold as they are, clipped as the comments say.
        assert svm_params["gamma"] == "scale" and mlp["batch_size"] == "auto"
        assert dt["max_depth"] is None and library_default("DT", dataset)["max_depth"] == 15
        assert dt["min_impurity_decrease"] == library_default("DT", dataset)["min_impurity_decrease"]
        counts = ("min_samples_leaf", "min_samples_split", "min_weight_fraction_leaf")
        assert [dt[k] for k in counts] == [1, 2, 0.0]


def test_tree_fractions_count_the_rows_the_comments_say() -> None:
    leaf, split = {}, {}
    for dataset in DATASETS:
        ours = library_default("DT", dataset)
        assert library_default("RF", dataset)["min_samples_leaf"] == ours["min_samples_leaf"] == 0.01
        rows = _fold_rows(dataset)
        # scikit-learn's reading of a fraction: ceil(f * rows), and at least 2 for a split.
        leaf[dataset] = {math.ceil(ours["min_samples_leaf"] * n) for n in rows}
        split[dataset] = {max(2, math.ceil(ours["min_samples_split"] * n)) for n in rows}
    assert leaf["iris"] == {1} and split["iris"] == split["wine"] == {2}
    others = [r for d, rows in leaf.items() if d != "iris" for r in rows]
    assert min(others) == 2 and max(others) == 12
    assert max(r for rows in split.values() for r in rows) == 12


def test_a_tree_with_the_clipped_leaf_and_split_fractions_is_the_default_tree_on_iris() -> None:
    from sklearn.tree import DecisionTreeClassifier

    x, y = _data("iris")
    rows = _fold_rows("iris")[0]
    ours = library_default("DT", "iris")
    clipped = DecisionTreeClassifier(min_samples_leaf=ours["min_samples_leaf"],
                                     min_samples_split=ours["min_samples_split"], random_state=0)
    default = DecisionTreeClassifier(random_state=0)
    for model in (clipped, default):
        model.fit(x[:rows], y[:rows])
    assert clipped.tree_.node_count == default.tree_.node_count
    assert (clipped.predict(x) == default.predict(x)).all()


def test_max_features_keeps_the_forest_classifiers_sqrt_and_drops_one_feature_elsewhere() -> None:
    from sklearn import ensemble, tree

    assert ensemble.RandomForestClassifier().get_params()["max_features"] == "sqrt"
    assert ensemble.RandomForestRegressor().get_params()["max_features"] == 1.0
    assert tree.DecisionTreeClassifier().get_params()["max_features"] is None
    for dataset, n in N_FEATURES.items():
        # scikit-learn's reading of a fraction: max(1, int(f * n)) features.
        rf = max(1, int(library_default("RF", dataset)["max_features"] * n))
        dt = max(1, int(library_default("DT", dataset)["max_features"] * n))
        assert dt == n - 1
        assert rf == (n - 1 if dataset == "diabetes" else int(math.sqrt(n))), dataset


def test_gamma_scale_lies_above_the_space_on_every_dataset() -> None:
    gamma = SPACES["SVM"]["gamma"]
    assert isinstance(gamma, FloatParam) and gamma.log
    high = gamma.high
    scales = {}
    for dataset in DATASETS:
        x, _ = _data(dataset)
        scales[dataset] = 1 / (x.shape[1] * x.var())  # scikit-learn's gamma="scale"
        assert library_default("SVM", dataset)["gamma"] == high
    assert 0.016 <= min(scales.values()) and max(scales.values()) <= 0.25 + 1e-9
    assert min(scales.values()) > 10 * high


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["iris", "breast_cancer", "diabetes"])
def test_adaboost_and_mlp_defaults_score_what_scikit_learns_own_defaults_score(dataset: str) -> None:
    from sklearn import ensemble, neural_network

    regression = dataset == "diabetes"
    ada = (ensemble.AdaBoostRegressor if regression else ensemble.AdaBoostClassifier)(random_state=0)
    assert _objective("ADA", dataset)(library_default("ADA", dataset)) == _quiet_cv(ada, dataset)
    # batch_size="auto" left to scikit-learn: 200 is the same on folds above and below 200 rows.
    mlp = (neural_network.MLPRegressor if regression else neural_network.MLPClassifier)(
        solver="sgd", early_stopping=True, max_iter=40, random_state=0)
    assert _objective("MLP", dataset)(library_default("MLP", dataset)) == _quiet_cv(mlp, dataset)


def test_synthetic_defaults_are_the_centre_of_the_box() -> None:
    for task in synthetic_tasks():
        for name in task.space:
            param = task.space[name]
            assert isinstance(param, FloatParam) and not param.log
            assert task.default[name] == pytest.approx((param.low + param.high) / 2)
    by_name = {t.name: t for t in synthetic_tasks()}
    # The centre is plain Ackley's optimum, as the comment warns; shifted, it is not.
    assert by_name["ackley5"].objective(dict(by_name["ackley5"].default)) == pytest.approx(0, abs=1e-12)
    assert by_name["ackley5-shifted"].objective(dict(by_name["ackley5-shifted"].default)) > 5
