"""Quickstart objective: a support-vector regressor on scikit-learn's diabetes data set.

``tunepilot run examples/quickstart.yaml`` calls :func:`objective` once per trial
with the sampled configuration and maximizes the 3-fold cross-validated R².
SVR's ``C`` and ``epsilon`` are in units of the target (a score from 25 to 346),
so the textbook defaults (``C=1``, ``epsilon=0.1``) score an R² near zero, while
the best settings reach about 0.5.

Running this file does the same study with plain Optuna and ``LLMSampler``::

    python examples/quickstart.py
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sklearn.datasets import load_diabetes
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVR


@cache
def _data() -> tuple[Any, Any]:
    return load_diabetes(return_X_y=True)


def objective(config: dict[str, Any]) -> float:
    """Mean R² of an SVR over 3 cross-validation folds (higher is better)."""
    features, target = _data()
    model = SVR(
        kernel=config["kernel"],
        C=config["C"],
        epsilon=config["epsilon"],
        gamma=config["gamma"],
    )
    return float(cross_val_score(model, features, target, cv=3, scoring="r2").mean())


if __name__ == "__main__":
    import optuna

    from tunepilot import LLMSampler

    sampler = LLMSampler(
        model="local",
        description="An SVR on scikit-learn's diabetes data; maximize 3-fold CV R².",
        seed=0,
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(
        lambda trial: objective({
            "kernel": trial.suggest_categorical("kernel", ["rbf", "linear"]),
            "C": trial.suggest_float("C", 1e-2, 1e5, log=True),
            "epsilon": trial.suggest_float("epsilon", 1e-2, 1e2, log=True),
            "gamma": trial.suggest_float("gamma", 1e-3, 1e3, log=True),
        }),
        n_trials=20,
    )
    print(f"best R² {study.best_value:.3f} with {study.best_params}")
