"""The blend over Optuna's GP: log EI (qLogEI with running trials) plus (β/n)·log π(x).

πBO was published on a GP's expected improvement: the acquisition is multiplied by
π(x)^(β/n), which in log space adds (β/n)·log π(x) to log EI. The weighting goes
inside the GP's acquisition optimizer (quasi-random preliminary points, then L-BFGS-B
and discrete line searches), which also starts local searches from draws of the
priors, so that a narrow prior's region is found even when no preliminary point lands
in it. Everything else — the kernel fit, the constant liar for running trials (qLogEI
over their positions), the warm start from the best trial — is Optuna's own.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import GPSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from tunepilot.samplers import _gp_internals as internals
from tunepilot.samplers._prior import Prior

#: Local searches started from the priors' draws, per trial.
PRIOR_STARTS = 3


class BlendGPSampler(GPSampler):
    """Optuna's GPSampler whose acquisition is weighted by priors.

    Used by :class:`~tunepilot.LLMSampler` in ``mode="blend"`` with the GP base; on
    its own it is plain GPSampler.
    """

    def __init__(self, *, seed: int | None, n_startup_trials: int) -> None:
        super().__init__(seed=seed, n_startup_trials=n_startup_trials,
                         warn_independent_sampling=False)
        self._local = threading.local()

    def sample_blended(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        priors: Sequence[tuple[str, Prior, float]],
    ) -> tuple[dict[str, Any], str | None]:
        """Parameters by the prior-weighted acquisition, and the name of the prior whose
        draw started the winning local search (``None``: a GP start won).

        ``priors`` holds (name, prior over ``search_space``, weight β/n) with weight > 0.
        """
        self._local.job = (search_space, list(priors))
        self._local.winner = None
        try:
            params = self.sample_relative(study, trial, search_space)
        finally:
            self._local.job = None
        return params, self._local.winner

    def _optimize_acqf(self, acqf: Any, best_params: np.ndarray | None) -> np.ndarray:
        job = getattr(self._local, "job", None)
        if job is None:
            return super()._optimize_acqf(acqf, best_params)
        search_space, priors = job
        gp_space = acqf.search_space
        terms = [(w, internals.TorchPrior(p, gp_space, search_space)) for _, p, w in priors]
        total = sum(w for _, _, w in priors)
        # Starts drawn from each prior in proportion to its weight.
        counts = self._rng.rng.multinomial(PRIOR_STARTS, [w / total for _, _, w in priors])
        names: list[str] = []
        draws: list[dict[str, Any]] = []
        for (name, prior, _), count in zip(priors, counts):
            got = prior.sample(self._rng.rng, int(count), uniform=False)
            draws += got
            names += [name] * len(got)
        starts = internals.normalize(gp_space, draws) if draws else np.empty((0, gp_space.dim))
        x, winner = internals.optimize(
            internals.weighted_acqf(acqf, terms),
            warmstart=best_params,
            prior_starts=starts,
            n_preliminary_samples=self._n_preliminary_samples,
            n_local_search=self._n_local_search,
            tol=self._tol,
            rng=self._rng.rng,
        )
        self._local.winner = names[winner] if winner >= 0 else None
        return x
