"""Blending LLM advice with TPE: a prior-weighted acquisition with trust calibration.

The LLM's proposals define a prior density π(x) (see :mod:`._prior`). With ``n``
completed trials, TPE splits them into good (density l) and bad (density g) and
scores candidates x, drawn from l and from π (TPE's usual 24, shared between them in
the proportion β / (β + β₀)), by

    a(x) = log l(x) - log g(x) + (β / n) · log π(x)

that is TPE's l(x)/g(x) times π(x)^(β/n), as in πBO: the prior's pull fades as
evidence accumulates. Before TPE has ``n_startup_trials`` trials (when plain TPE
samples at random) a trial is drawn from π with probability β / (β + β₀), else
uniformly.

β adapts to how well the advice has predicted this study's results (trust
calibration). Each trial is given, under the prior it was sampled under (built only
from proposals made before it ran), its prior rank r ∈ [0, 1]: the share of the
space that π favours less than the trial's configuration (see ``Prior.rank``). Over
the last ``TRUST_WINDOW`` completed trials — whichever part chose them: the prior,
TPE or random startup draws — every pair whose ranks differ is a prediction: the
higher-ranked trial should come out better. Let C be the share of k such pairs
where it did (a tie in value counts half), and m = 2k / (n − 1) the evidence in
trials (n when π told all n trials apart, 0 when it told none: far from every
proposal π is flat and predicts nothing). C is shrunk towards ½ while m is small,
C̃ = ½ + (C − ½) · m / (m + 6), and

    β = β₀ · clip(1 / (1 + m/2) + 6 (C̃ − ½), 0, 3)

The first term is the benefit of the doubt: full weight before any evidence, fading
as evidence comes in. Advice has to keep earning its weight: when the trials it
favours come out better, β rises up to 3β₀; when its ranking says nothing, β fades
to about β₀ / (1 + m/2); when it ranks results backwards — including trials it never
chose, such as the random startup draws — β drops to 0, which is plain TPE. Because
every trial can be evidence, advice that is wrong in one direction can be caught by
the startup draws before the prior has spent many trials of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler
from optuna.samplers._tpe.sampler import _split_trials, default_gamma
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tunepilot.samplers._prior import Prior
from tunepilot.space import SearchSpace

#: Parts of the blend that can choose a trial, recorded as ``llm.blend_part``.
PRIOR, TPE, RANDOM = "prior", "tpe", "random"


#: Completed trials (the most recent) that trust is measured on.
TRUST_WINDOW = 200


def trust(ranks: Sequence[float], values: Sequence[float], direction: StudyDirection) -> tuple[float, float]:
    """(t, m): t = C̃ − ½, how well prior ranks predicted the trials' values, on m trials' worth.

    Only pairs of trials whose prior ranks differ are evidence (where π is flat it
    made no prediction). Of those, C is the share where the trial with the higher rank
    came out better, a tie in value counting half. ``m = 2k / (n − 1)`` turns the k
    such pairs among n trials into a number of trials (n when every rank differs, 0
    when π told none of them apart), and C is shrunk towards ½ while it is small:
    C̃ = ½ + (C − ½) · m / (m + 6).
    """
    n = len(values)
    if n < 2:
        return 0.0, 0.0
    sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
    y = sign * np.asarray(values, dtype=float)
    r = np.asarray(ranks, dtype=float)
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    dr = np.sign(r[:, None] - r[None, :])[upper]
    dy = np.sign(y[:, None] - y[None, :])[upper]
    told = dr != 0
    k = int(told.sum())
    if k == 0:
        return 0.0, 0.0
    concordance = float((dr[told] * dy[told] + 1).mean() / 2)
    m = 2 * k / (n - 1)
    return (concordance - 0.5) * m / (m + 6), m


class BlendTPESampler(TPESampler):
    """TPE whose candidates and acquisition also come from an LLM prior.

    Used by :class:`~tunepilot.LLMSampler` in ``mode="blend"``; on its own it is
    plain TPE.
    """

    def sample_blended(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        prior: Prior,
        weight: float,
        prior_share: float,
    ) -> tuple[dict[str, Any], str]:
        """Choose parameters by the prior-weighted acquisition; return them and the winning pool."""
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

        # TPE's usual number of candidates, shared between l(x) and π(x) by prior share:
        # the acquisition costs what plain TPE's does.
        n_prior = min(self._n_ei_candidates - 1, max(1, round(self._n_ei_candidates * prior_share)))
        n_tpe = self._n_ei_candidates - n_prior
        from_tpe = mpe_below.sample(self._rng.rng, n_tpe)
        from_prior = prior.sample(self._rng.rng, n_prior)
        candidates = {
            name: np.concatenate(
                [from_tpe[name], [dist.to_internal_repr(c[name]) for c in from_prior]]
            )
            for name, dist in search_space.items()
        }
        external = [
            {name: dist.to_external_repr(candidates[name][i]) for name, dist in search_space.items()}
            for i in range(self._n_ei_candidates)
        ]
        scores = self._compute_acquisition_func(candidates, mpe_below, mpe_above)
        scores = scores + weight * prior.log_pdf(external)
        best = int(np.argmax(scores))
        return external[best], TPE if best < n_tpe else PRIOR


class Blender:
    """The state of one blend: proposals so far, the prior over them, β₀ and the TPE part."""

    def __init__(
        self,
        *,
        beta: float,
        epsilon: float,
        n_startup_trials: int,
        seed: int | None,
    ) -> None:
        self.beta0 = beta
        self.epsilon = epsilon
        self.n_startup_trials = n_startup_trials
        self.tpe = BlendTPESampler(seed=seed, n_startup_trials=n_startup_trials)
        #: Every proposal so far, with the names of its clamped values.
        self.proposals: list[tuple[dict[str, Any], frozenset[str]]] = []
        self.prior: Prior | None = None
        #: Every prior so far; a trial records the index of the one it was sampled under.
        self.priors: list[Prior] = []
        self.refreshed_at = -1
        self._ranks: dict[tuple[int, Any, int], float] = {}
        self._rng = np.random.RandomState(seed)
        self._lock = threading.Lock()

    def add(
        self,
        space: SearchSpace,
        proposals: Sequence[dict[str, Any]],
        n_complete: int,
        unknown: Sequence[Collection[str]] | None = None,
    ) -> None:
        """Add proposals to the prior; ``unknown`` names each one's clamped values."""
        with self._lock:
            self.proposals += [
                (dict(p), frozenset(u)) for p, u in zip(proposals, unknown or [()] * len(proposals))
            ]
            usable = [(p, u) for p, u in self.proposals if space.contains(p)]
            if usable:
                self.prior = Prior(
                    space, [p for p, _ in usable], epsilon=self.epsilon, unknown=[u for _, u in usable]
                )
                self.priors.append(self.prior)
            self.refreshed_at = n_complete

    def beta(self, study: Study) -> float:
        if self.prior is None:
            return 0.0
        complete = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)
        ranks, values = [], []
        for trial in complete[-TRUST_WINDOW:]:
            rank = self._rank(trial)
            if rank is not None and trial.value is not None:
                ranks.append(rank)
                values.append(trial.value)
        t, m = trust(ranks, values, study.direction)
        return self.beta0 * float(np.clip(1 / (1 + m / 2) + 6 * t, 0, 3))

    def _rank(self, trial: FrozenTrial) -> float | None:
        """The trial's rank under the prior it was sampled under; None if it had none here."""
        version = trial.user_attrs.get("llm.prior_version")
        if not isinstance(version, int) or not 0 <= version < len(self.priors):
            return None
        # Trial ids repeat between in-memory storages; the start time tells them apart.
        key = (trial._trial_id, trial.datetime_start, version)
        if key in self._ranks:
            return self._ranks[key]
        prior = self.priors[version]
        if any(name not in trial.params for name in prior.space):
            return None
        rank = float(prior.rank([trial.params])[0])
        self._ranks[key] = rank
        return rank

    def sample(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> tuple[dict[str, Any], str, float, int]:
        """Parameters for ``trial`` (empty: let the independent sampler draw), the part, β
        and the index of the prior in :attr:`priors` it was sampled under."""
        assert self.prior is not None
        version = len(self.priors) - 1
        prior = self.priors[version]
        beta = self.beta(study)
        n = len(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        if n < self.n_startup_trials:
            with self._lock:
                draw = self._rng.random_sample()
                if draw < beta / (beta + self.beta0):
                    return prior.sample(self._rng, 1)[0], PRIOR, beta, version
            return {}, RANDOM, beta, version
        if beta == 0:  # advice distrusted: plain TPE, at plain TPE's cost
            return self.tpe.sample_relative(study, trial, search_space), TPE, beta, version
        params, part = self.tpe.sample_blended(
            study, trial, search_space, prior, beta / n, beta / (beta + self.beta0)
        )
        return params, part, beta, version
