"""A Hydra training app that the tunepilot sweeper tunes.

One run with the config as written::

    python examples/hydra_app/train.py

Ten trials chosen by TPE, each a Hydra job, with the median pruner stopping weak
ones early (the search space is under ``hydra.sweeper.params`` in conf/config.yaml;
``hydra/sweeper=tunepilot`` is already the default there)::

    python examples/hydra_app/train.py --multirun
    python examples/hydra_app/train.py --multirun hydra/sweeper=tunepilot \\
        hydra.sweeper.n_trials=20 'model.alpha=tag(log, interval(1e-5, 1e-2))'

The sweep folder (``multirun/DATE/TIME``) gets ``optimization_results.yaml`` with
the best configuration and ``tunepilot.db``, the Optuna study that
``tunepilot report`` and ``optuna-dashboard`` open.
"""

from __future__ import annotations

import hydra
import numpy as np
from omegaconf import DictConfig
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from tunepilot.runner import get_reporter


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Validation accuracy of a linear classifier on the digits data (higher is better)."""
    features, labels = load_digits(return_X_y=True)
    train_x, valid_x, train_y, valid_y = train_test_split(
        features, labels, test_size=0.3, random_state=0, stratify=labels
    )
    scaler = StandardScaler().fit(train_x)
    train_x, valid_x = scaler.transform(train_x), scaler.transform(valid_x)
    model = SGDClassifier(loss=cfg.model.loss, alpha=cfg.model.alpha,
                          learning_rate="constant", eta0=cfg.model.eta0, random_state=0)
    reporter = get_reporter()  # inactive in a plain run; the sweeper's trial in a sweep
    rng = np.random.default_rng(0)
    accuracy = 0.0
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(train_x))
        model.partial_fit(train_x[order], train_y[order], classes=np.unique(train_y))
        accuracy = float(model.score(valid_x, valid_y))
        reporter.report(epoch, accuracy)
        if reporter.should_prune():
            reporter.prune()
    return accuracy


if __name__ == "__main__":
    main()
