"""``mode="llm"``'s safeguard: the share of trials the model keeps, by how its trials rank.

The model's configurations are run as they are, so a weak model would search worse
than random (the embedded 135M model did on both suites). As the study goes, the
model's completed trials are ranked against the base sampler's (TPE: random search
for its first trials) with the blend's statistic (:func:`~._blend.rank`: the AUC and
its distance from chance z in null standard errors), and the model keeps a share

    share = clip(FLOOR + (1 − FLOOR) · z / 2, FLOOR, 1)

of the trials: the first trial on trust, the next to the base so that the two can be
compared, then the model's share — all of them once its trials beat the base's by two
standard errors of chance, :data:`FLOOR` while they only tie or lose (enough to notice
if its advice improves as the history grows). Trials are handed out by quota, not by
coin: the model takes a trial when it has had fewer than ``share × (trials + 1)``.
Each trial records the share it was decided with as ``llm.model_share``, and the base's
trials ``llm.source == "base"``; fallback trials (the model failed) count as the
base's. ``LLMSampler(safeguard=False)`` gives every trial to the model.
"""

from __future__ import annotations

import numpy as np
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from tunepilot.samplers._blend import Trust, rank

#: The smallest share of trials the model keeps.
FLOOR = 0.1
MODEL, BASE, FALLBACK = "llm", "base", "fallback"


def _side(trial: FrozenTrial) -> bool | None:
    source = trial.user_attrs.get("llm.source")
    # A fallback trial (the model failed) is the base sampler's too.
    return True if source == MODEL else False if source in (BASE, FALLBACK) else None


def model_share(study: Study) -> tuple[float, Trust]:
    """The share of trials the model keeps now (1 before any comparison), and the ranking
    it comes from."""
    complete = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)
    trusted = rank(complete, study.direction, _side)
    if not trusted.compared:
        return 1.0, trusted
    return float(np.clip(FLOOR + (1 - FLOOR) * trusted.z / 2, FLOOR, 1.0)), trusted


def model_turn(study: Study, trial: FrozenTrial, share: float, trusted: Trust) -> bool:
    """Whether ``trial`` goes to the model (see the module docstring)."""
    sides = [_side(t) for t in study._get_trials(deepcopy=False, use_cache=False)
             if t.number != trial.number]
    ours = sum(s is True for s in sides)
    if not trusted.compared:
        # The first trial on trust; then the base's, until the two can be compared.
        return ours == 0
    return share >= 1.0 or ours < share * (sum(s is not None for s in sides) + 1)
