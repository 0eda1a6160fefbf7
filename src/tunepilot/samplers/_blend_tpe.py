"""The blend over Optuna's TPE: l(x)/g(x) times Π π_s(x)^(β_s/n).

TPE's usual 24 candidates are shared between its good-trial density l(x) and the
priors' kernels, in the proportion Σβ_s / (Σβ_s + β₀), each prior's share by its β_s;
the winner maximises log l(x) − log g(x) + Σ (β_s/n) · log π_s(x). The acquisition costs
what plain TPE's does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler
from optuna.samplers._tpe.sampler import _split_trials, default_gamma
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from tunepilot.samplers._prior import Prior


class BlendTPESampler(TPESampler):
    """TPE whose candidates and acquisition also come from priors.

    Used by :class:`~tunepilot.LLMSampler` in ``mode="blend"`` with the TPE base; on
    its own it is plain TPE.
    """

    def sample_blended(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        priors: Sequence[tuple[str, Prior, float]],
        prior_share: float,
    ) -> tuple[dict[str, Any], str | None]:
        """Parameters by the prior-weighted acquisition, and the name of the prior whose
        candidate won (``None``: one of TPE's own).

        ``priors`` holds (name, prior over ``search_space``, weight β/n) with weight > 0;
        ``prior_share`` is the share of candidates drawn from them.
        """
        states = [TrialState.COMPLETE, TrialState.PRUNED]
        if self._constant_liar:
            states.append(TrialState.RUNNING)
        trials = [
            t for t in study._get_trials(deepcopy=False, states=tuple(states), use_cache=False)
            if t.number != trial.number
        ]
        gamma = self._gamma or default_gamma
        n = sum(t.state != TrialState.RUNNING for t in trials)
        below, above = _split_trials(study, trials, gamma(n))
        mpe_below = self._build_parzen_estimator(study, search_space, below, handle_below=True)
        mpe_above = self._build_parzen_estimator(study, search_space, above, handle_below=False)

        n_prior = min(self._n_ei_candidates - 1, max(1, round(self._n_ei_candidates * prior_share)))
        n_tpe = self._n_ei_candidates - n_prior
        total = sum(w for _, _, w in priors)
        if len(priors) == 1:
            counts = [n_prior]
        else:
            counts = list(self._rng.rng.multinomial(n_prior, [w / total for _, _, w in priors]))
        from_tpe = mpe_below.sample(self._rng.rng, n_tpe)
        from_priors: list[dict[str, Any]] = []
        owners: list[str] = []
        for (name, prior, _), count in zip(priors, counts):
            drawn = prior.sample(self._rng.rng, int(count))
            from_priors += drawn
            owners += [name] * len(drawn)
        candidates = {
            name: np.concatenate(
                [from_tpe[name], [dist.to_internal_repr(c[name]) for c in from_priors]]
            )
            for name, dist in search_space.items()
        }
        size = n_tpe + len(from_priors)
        external = [
            {name: dist.to_external_repr(candidates[name][i]) for name, dist in search_space.items()}
            for i in range(size)
        ]
        scores = self._compute_acquisition_func(candidates, mpe_below, mpe_above)
        for _, prior, weight in priors:
            scores = scores + weight * prior.log_pdf(external)
        best = int(np.argmax(scores))
        return external[best], (None if best < n_tpe else owners[best - n_tpe])
