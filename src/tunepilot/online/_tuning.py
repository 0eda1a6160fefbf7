"""Adaptive tuning of a variant's numeric fields (temperature, max_tokens) by an Optuna study.

The study proposes a new variant derived from the leader (same model and prompt, new
temperature and/or max_tokens); it joins the candidates like any declared variant,
and once it has ``min_samples`` quality points its trial is told a score: mean
quality minus a cost penalty relative to the leader. Strategies decide, as for any
variant, whether it is explored further, dropped or rolled out.
"""

from __future__ import annotations

from typing import Any

import optuna

from tunepilot.online._config import AppConfig, Variant
from tunepilot.online._windows import Stats

__all__ = ["Tuner"]

#: Quality points a variant must gain to pay for costing as much again as the leader.
COST_WEIGHT = 0.1
#: Tuning trials explored at the same time.
OPEN_TRIALS = 2


class Tuner:
    """An Optuna study over the numeric fields named in ``policy.tune``.

    Example:
        >>> from tunepilot.online._config import Policy
        >>> app = AppConfig(name="a", baseline="x", variants=[Variant(id="x", model="m")],
        ...                 policy=Policy(tune={"temperature": (0.0, 1.0)}))
        >>> tuner = Tuner(app, seed=0)
        >>> tuner.ask(app.variant("x")).id.startswith("x~tune")
        True
    """

    def __init__(self, app: AppConfig, *, seed: int | None) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.app = app
        self.study = optuna.create_study(direction="maximize",
                                         sampler=optuna.samplers.TPESampler(seed=seed))
        self._open: dict[str, optuna.trial.Trial] = {}
        self._params: dict[str, dict[str, Any]] = {}
        self._numbers: dict[str, int] = {}
        self.created = 0

    def ask(self, leader: Variant) -> Variant | None:
        """A new variant to try, or None while enough are open or the budget is spent."""
        if len(self._open) >= OPEN_TRIALS or self.created >= self.app.policy.max_tuned_variants:
            return None
        trial = self.study.ask()
        params: dict[str, Any] = {}
        for name, (low, high) in self.app.policy.tune.items():
            if name == "max_tokens":
                params[name] = trial.suggest_int(name, int(low), int(high), log=True)
            else:
                params[name] = round(trial.suggest_float(name, low, high), 3)
        self.created += 1
        variant_id = f"{leader.id}~tune{trial.number}"
        variant = leader.model_copy(update={"id": variant_id, **params})
        self._open[variant_id] = trial
        self._params[variant_id] = params
        self._numbers[variant_id] = trial.number
        return variant

    def tell_ready(self, stats: dict[str, Stats], leader: str) -> list[tuple[str, float]]:
        """Tell the study the score of every open trial with enough quality points."""
        told: list[tuple[str, float]] = []
        reference = stats.get(leader)
        leader_cost = reference.cost_mean if reference is not None else None
        for variant_id, trial in list(self._open.items()):
            s = stats.get(variant_id)
            if s is None or s.quality_n < self.app.policy.min_samples or s.quality_mean is None:
                continue
            penalty = 0.0
            if leader_cost and s.cost_mean is not None:
                penalty = COST_WEIGHT * s.cost_mean / leader_cost
            value = s.quality_mean - penalty
            self.study.tell(trial, value)
            del self._open[variant_id]
            told.append((variant_id, value))
        return told

    def params(self, variant_id: str) -> dict[str, Any]:
        """The parameters the study chose for a tuned variant."""
        return dict(self._params.get(variant_id, {}))

    def trial_number(self, variant_id: str) -> int | None:
        """The Optuna trial number behind a tuned variant."""
        return self._numbers.get(variant_id)
