"""Suite ``bayesmark``: 5 scikit-learn models × 5 bundled datasets, in Bayesmark's shape.

Classification datasets (breast_cancer, digits, wine, iris) are scored by accuracy
(maximised); diabetes by mean squared error on standardised y (minimised). Each task
splits its data 80/20 with a fixed seed and scores the mean 5-fold CV on the 80%.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from benchmarks.hpo._tasks import Task
from tunepilot.space import FloatParam, IntParam, SearchSpace

DATASETS = ("breast_cancer", "digits", "wine", "iris", "diabetes")
MODELS = ("DT", "RF", "SVM", "ADA", "MLP")

_TREE = SearchSpace([
    IntParam("max_depth", 1, 15),
    FloatParam("max_features", 0.01, 0.99),
    FloatParam("min_impurity_decrease", 0.0, 0.5),
    FloatParam("min_samples_leaf", 0.01, 0.49),
    FloatParam("min_samples_split", 0.01, 0.99),
    FloatParam("min_weight_fraction_leaf", 0.01, 0.49),
])
SPACES = {
    "DT": _TREE,
    "RF": _TREE,
    "SVM": SearchSpace([
        FloatParam("C", 1.0, 1e3, log=True),
        FloatParam("gamma", 1e-4, 1e-3, log=True),
        FloatParam("tol", 1e-5, 1e-1, log=True),
    ]),
    "ADA": SearchSpace([
        IntParam("n_estimators", 10, 100),
        FloatParam("learning_rate", 1e-4, 10.0, log=True),
    ]),
    "MLP": SearchSpace([
        IntParam("hidden_layer_sizes", 50, 200),
        FloatParam("alpha", 1e-5, 10.0, log=True),
        IntParam("batch_size", 10, 250),
        FloatParam("learning_rate_init", 1e-5, 1e-1, log=True),
        FloatParam("power_t", 0.1, 0.9),
        FloatParam("momentum", 0.001, 0.999),
    ]),
}
#: Columns of each dataset (a test checks them against the data).
N_FEATURES = {"breast_cancer": 30, "digits": 64, "wine": 13, "iris": 4, "diabetes": 10}


def library_default(model: str, dataset: str) -> dict[str, Any]:
    """scikit-learn's default configuration of ``model`` on ``dataset``, clipped into its space.

    The configuration a user who tunes nothing gets, from the estimators' documented
    defaults (scikit-learn 1.x; ``tests/benchmarks/test_hpo_defaults.py`` reads them
    back from the installed version). Where a default lies outside the space, or is not
    a number of the space's kind, the comment says what it became. Sizes in rows are
    those of the 5-fold CV's training folds: iris 96, wine 113-114, diabetes 282-283,
    breast cancer 364, digits 1149-1150.
    """
    regression = dataset == "diabetes"
    if model in ("DT", "RF"):
        if model == "RF" and not regression:
            # RandomForestClassifier: max_features="sqrt", int(sqrt(n)) features; the
            # fraction 1/sqrt(n) gives the same count (int(f * n) features).
            max_features = 1 / math.sqrt(N_FEATURES[dataset])
        else:
            # DecisionTree*: None, RandomForestRegressor: 1.0, both every feature. The
            # space stops at 0.99, which is one feature fewer on every dataset here.
            max_features = 0.99
        return {
            # None (grow until the leaves are pure): the space's deepest, 15.
            "max_depth": 15,
            "max_features": max_features,
            "min_impurity_decrease": 0.0,
            # 1 row, a count; the space is a fraction f of the rows (ceil(f * rows)). Its
            # smallest, 0.01, is 1 row on iris and 2-12 rows on the others.
            "min_samples_leaf": 0.01,
            # 2 rows, a count; a fraction f is max(2, ceil(f * rows)). The space's smallest,
            # 0.01, is 2 rows on iris and wine, 3-12 rows on the others.
            "min_samples_split": 0.01,
            # 0.0, below the space: its smallest, 0.01 (a leaf holds 1% of the rows' weight,
            # about what min_samples_leaf=0.01 already asks).
            "min_weight_fraction_leaf": 0.01,
        }
    if model == "SVM":
        return {
            # C=1.0 is the space's smallest; tol=1e-3 lies inside it.
            "C": 1.0,
            # gamma="scale" is 1 / (n_features * Var(X)): with standardised features
            # 0.016-0.25 on these datasets, above the space's [1e-4, 1e-3] everywhere, so
            # its largest, 1e-3.
            "gamma": 1e-3,
            "tol": 1e-3,
        }
    if model == "ADA":
        # AdaBoostClassifier and AdaBoostRegressor: both inside the space.
        return {"n_estimators": 50, "learning_rate": 1.0}
    return {
        # (100,): one hidden layer of 100, inside the space.
        "hidden_layer_sizes": 100,
        "alpha": 1e-4,
        # "auto" is min(200, rows), and a number above the rows is cut to the rows (with a
        # warning), so 200 is "auto" exactly on every dataset.
        "batch_size": 200,
        "learning_rate_init": 1e-3,
        # Unused with the default learning_rate="constant", but a parameter of the space.
        "power_t": 0.5,
        "momentum": 0.9,
    }


_MODEL_WORDS = {
    "DT": "a decision tree",
    "RF": "a random forest of 10 trees",
    "SVM": "an RBF support-vector machine",
    "ADA": "AdaBoost",
    "MLP": "a one-hidden-layer MLP trained by SGD with early stopping (40 epochs at most)",
}
_DATA_WORDS = {
    "breast_cancer": "the breast cancer data set (455 training rows, 30 numeric features, 2 classes)",
    "digits": "the 8x8 handwritten digits (1437 training rows, 64 pixel features, 10 classes)",
    "wine": "the wine data set (142 training rows, 13 chemical features, 3 classes)",
    "iris": "the iris data set (120 training rows, 4 features, 3 classes)",
    "diabetes": "the diabetes data set (353 training rows, 10 features, a disease progression score)",
}


@cache
def _data(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    x_train, _, y_train, _ = train_test_split(x, y, test_size=0.2, random_state=0)
    x_train = StandardScaler().fit_transform(x_train)
    if dataset == "diabetes":
        y_train = (y_train - y_train.mean()) / y_train.std()
    return x_train, y_train


def _estimator(model: str, regression: bool, config: dict[str, Any]) -> Any:
    from sklearn import ensemble, neural_network, svm, tree

    if model in ("DT", "RF"):
        kwargs = dict(config)
        kind = "Regressor" if regression else "Classifier"
        if model == "DT":
            return getattr(tree, f"DecisionTree{kind}")(random_state=0, **kwargs)
        return getattr(ensemble, f"RandomForest{kind}")(n_estimators=10, random_state=0, **kwargs)
    if model == "SVM":
        return (svm.SVR if regression else svm.SVC)(kernel="rbf", **config)
    if model == "ADA":
        cls = ensemble.AdaBoostRegressor if regression else ensemble.AdaBoostClassifier
        return cls(random_state=0, **config)
    cls = neural_network.MLPRegressor if regression else neural_network.MLPClassifier
    return cls(
        solver="sgd", early_stopping=True, max_iter=40, random_state=0,
        hidden_layer_sizes=(config["hidden_layer_sizes"],),
        **{k: v for k, v in config.items() if k != "hidden_layer_sizes"},
    )


def _objective(model: str, dataset: str) -> Callable[[dict[str, Any]], float]:
    regression = dataset == "diabetes"

    def objective(config: dict[str, Any]) -> float:
        from sklearn.model_selection import cross_val_score

        x, y = _data(dataset)
        scoring = "neg_mean_squared_error" if regression else "accuracy"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings are part of the landscape
            scores = cross_val_score(_estimator(model, regression, config), x, y, cv=5, scoring=scoring)
        value = float(np.mean(scores))
        return -value if regression else value

    return objective


def bayesmark_tasks() -> list[Task]:
    """The 25 tasks of the bayesmark suite."""
    tasks = []
    for dataset in DATASETS:
        regression = dataset == "diabetes"
        metric = (
            "mean squared error of the standardised target (lower is better)" if regression
            else "classification accuracy (higher is better)"
        )
        for model in MODELS:
            description = (
                f"I am tuning {_MODEL_WORDS[model]} on {_DATA_WORDS[dataset]}. "
                f"Features are standardised. The score is the {metric}, averaged over "
                "5-fold cross-validation."
            )
            tasks.append(Task(
                f"{model}-{dataset}", "bayesmark", SPACES[model], _objective(model, dataset),
                "minimize" if regression else "maximize", description,
                library_default(model, dataset),
            ))
    return tasks
