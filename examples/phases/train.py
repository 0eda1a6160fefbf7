"""One model trained in three phases, each on a bigger share of the data.

A small neural network (scikit-learn's ``MLPClassifier``, one hidden layer) learns
the 8x8 digits data set for a fixed number of epochs, and each trial reports the
validation log-loss (lower is better). ``foundation`` trains on 15% of the training
set, ``reward`` on 40%, ``finetune`` on all of it: the cheap phases find where good
configurations lie, and each phase's ``prior_from`` hands that to the next.

The functions run outside a study too: ``python train.py`` scores one configuration
in each phase.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

EPOCHS = 20


@cache
def _data() -> tuple[Any, Any, Any, Any]:
    features, labels = load_digits(return_X_y=True)
    train_x, valid_x, train_y, valid_y = train_test_split(
        features, labels, test_size=0.3, random_state=0, stratify=labels
    )
    scaler = StandardScaler().fit(train_x)
    return scaler.transform(train_x), scaler.transform(valid_x), train_y, valid_y


def _validation_loss(config: dict[str, Any], share: float) -> float:
    train_x, valid_x, train_y, valid_y = _data()
    n = int(len(train_x) * share)  # the split is stratified and shuffled: any prefix is fair
    model = MLPClassifier(
        hidden_layer_sizes=(config["hidden_units"],),
        learning_rate_init=config["learning_rate_init"],
        alpha=config["alpha"],
        batch_size=config["batch_size"],
        max_iter=EPOCHS,
        random_state=0,
    )
    with warnings.catch_warnings():
        # A fixed budget of epochs is the point; sklearn warns that it did not converge.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train_x[:n], train_y[:n])
    return float(log_loss(valid_y, model.predict_proba(valid_x), labels=model.classes_))


def foundation(config: dict[str, Any]) -> float:
    """Validation log-loss after training on 15% of the training set."""
    return _validation_loss(config, 0.15)


def reward(config: dict[str, Any]) -> float:
    """Validation log-loss after training on 40% of the training set."""
    return _validation_loss(config, 0.4)


def finetune(config: dict[str, Any]) -> float:
    """Validation log-loss after training on the whole training set."""
    return _validation_loss(config, 1.0)


if __name__ == "__main__":
    defaults = {"hidden_units": 64, "learning_rate_init": 1e-3, "alpha": 1e-4, "batch_size": 64}
    for phase in (foundation, reward, finetune):
        print(f"{phase.__name__}: {phase(defaults):.4f}")
