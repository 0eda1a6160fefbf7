"""A real training loop with early stopping by the study's pruner.

A linear classifier (scikit-learn's ``SGDClassifier``) learns the 8x8 digits data
set one epoch at a time with ``partial_fit``. After each epoch the loop reports the
validation accuracy; when the study's pruner says this trial cannot catch up with
the others, the loop stops and the remaining epochs are never trained.

The same function runs outside a study (``python train.py``): then reports go
nowhere and nothing is pruned.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from tunepilot.runner import get_reporter

EPOCHS = 20


@cache
def _data() -> tuple[Any, Any, Any, Any]:
    features, labels = load_digits(return_X_y=True)
    train_x, valid_x, train_y, valid_y = train_test_split(
        features, labels, test_size=0.3, random_state=0, stratify=labels
    )
    scaler = StandardScaler().fit(train_x)
    return scaler.transform(train_x), scaler.transform(valid_x), train_y, valid_y


def objective(config: dict[str, Any]) -> float:
    """Validation accuracy after up to ``EPOCHS`` epochs (higher is better)."""
    train_x, valid_x, train_y, valid_y = _data()
    model = SGDClassifier(
        loss=config["loss"],
        alpha=config["alpha"],
        learning_rate="constant",
        eta0=config["eta0"],
        random_state=0,
    )
    classes = np.unique(train_y)
    order = np.random.default_rng(0)
    reporter = get_reporter()
    accuracy = 0.0
    for epoch in range(EPOCHS):
        shuffled = order.permutation(len(train_x))
        model.partial_fit(train_x[shuffled], train_y[shuffled], classes=classes)
        accuracy = float(model.score(valid_x, valid_y))
        reporter.report(epoch, accuracy)
        if reporter.should_prune():
            reporter.prune()
    return accuracy


if __name__ == "__main__":
    print(objective({"loss": "hinge", "alpha": 1e-4, "eta0": 0.01}))
