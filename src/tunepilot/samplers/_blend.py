"""Blending LLM advice with TPE: a prior-weighted acquisition with trust calibration.

The LLM's proposals define a prior density π(x) (see :mod:`._prior`). With ``n``
completed trials, TPE splits them into good (density l) and bad (density g) and
scores candidates x, drawn from l and from π (TPE's usual 24, shared between them in
the proportion β / (β + β₀)), by

    a(x) = log l(x) - log g(x) + (β / n) · log π(x)

that is TPE's l(x)/g(x) times π(x)^(β/n), as in πBO: the prior's pull fades as
evidence accumulates. Before TPE has ``n_startup_trials`` trials (when plain TPE
samples at random) the advice gets one trial on trust, the first, drawn from π's
kernels (the advice, without its ε of uniform mass); the next trials are uniform until
that trial can be compared with one of them. After the first comparison a startup
trial is drawn from π's kernels with probability β / (β + β₀), else uniformly; with
β = 0 the rest of the startup is uniform, as plain TPE's. Startup draws spent on
advice that does not win cost TPE the spread of its initial design, which it does not
make up within a small budget: one trial is what it takes to compare the advice at all.

β adapts to how useful the advice has been on this study (trust calibration). Let
AUC be the probability that one of the n₁ completed trials the prior chose beats one
of the n₂ chosen otherwise (by TPE or at random), ties counting half, and z its
distance from chance in null standard errors (the Mann–Whitney variance without tie
correction):

    z = (AUC − ½) / sqrt((n₁ + n₂ + 1) / (12 n₁ n₂))

Before the first comparison (n₁ n₂ = 0) β = β₀, the benefit of the doubt. After it

    β = β₀ · clip((z − 1) / 2, 0, 3)

Advice has to keep earning its weight: it gets none until its trials beat the others
by more than one standard error of chance (z > 1), full weight β₀ at z = 3 and at
most 3β₀. Advice that only ties, or loses, gets β = 0, which is plain TPE. A rule
that kept some weight for tied advice (β₀ / (1 + m)) cost about 0.06 normalized
regret at 30 trials on the Bayesmark tasks with the embedded model's advice, which
mostly ties or loses there (benchmarks/README.md).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

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
#: Mixed into the seed of the blend's own random stream.
_STREAM = 0x626C656E


class Trust(NamedTuple):
    """How the completed trials the prior chose rank against the others."""

    auc: float  #: P(a prior trial beats another); ties count half; ½ with no comparison
    n1: int  #: completed trials the prior chose
    n2: int  #: completed trials chosen otherwise

    @property
    def compared(self) -> bool:
        """Whether both groups have a completed trial, so that the AUC says something."""
        return self.n1 > 0 and self.n2 > 0

    @property
    def z(self) -> float:
        """AUC − ½ in null standard errors; 0 before any comparison."""
        if not self.compared:
            return 0.0
        return (self.auc - 0.5) / math.sqrt((self.n1 + self.n2 + 1) / (12 * self.n1 * self.n2))


def trust(trials: Sequence[FrozenTrial], direction: StudyDirection) -> Trust:
    """How trials drawn from the prior rank against the others (see the module docstring)."""
    sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
    ours: list[float] = []
    others: list[float] = []
    for t in trials:
        if t.value is None:
            continue
        (ours if t.user_attrs.get("llm.blend_part") == PRIOR else others).append(sign * t.value)
    if not ours or not others:
        return Trust(0.5, len(ours), len(others))
    a, b = np.array(ours)[:, None], np.array(others)[None, :]
    return Trust(float(((a > b) + 0.5 * (a == b)).mean()), len(ours), len(others))


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
        self.refreshed_at = -1
        # A stream of its own: seeded like TPE's random startup, the prior's uniform draws
        # would repeat TPE's, and the study evaluate the same configuration twice.
        self._rng = np.random.RandomState(
            None if seed is None else np.random.SeedSequence((seed % 2**32, _STREAM)).generate_state(1)[0]
        )
        self._lock = threading.Lock()
        #: The studies (storage, study id) in which this process gave the advice its first
        #: trial: its attributes are stored only after the trial is sampled.
        self._tried: set[tuple[int, int]] = set()

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
            self.prior = (
                Prior(space, [p for p, _ in usable], epsilon=self.epsilon, unknown=[u for _, u in usable])
                if usable else None
            )
            self.refreshed_at = n_complete

    @staticmethod
    def _has_prior_trial(study: Study, trial: FrozenTrial) -> bool:
        """Whether any other trial of the study, in any state, was drawn from the prior."""
        return any(
            t.user_attrs.get("llm.blend_part") == PRIOR
            for t in study._get_trials(deepcopy=False, use_cache=False)
            if t.number != trial.number
        )

    def trust(self, study: Study) -> Trust:
        """How the study's completed prior trials rank: see :func:`trust`."""
        complete = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)
        return trust(complete, study.direction)

    def beta(self, study: Study) -> float:
        """β for the next trial: β₀ before the first comparison, then by z (module docstring)."""
        return 0.0 if self.prior is None else self._weight(self.trust(study))

    def _weight(self, trusted: Trust) -> float:
        if not trusted.compared:
            return self.beta0
        return self.beta0 * float(np.clip((trusted.z - 1) / 2, 0, 3))

    def sample(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> tuple[dict[str, Any], str, float]:
        """Parameters for ``trial`` (empty: let the independent sampler draw), the part, β."""
        assert self.prior is not None
        trusted = self.trust(study)
        beta = self._weight(trusted)
        n = len(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        if n < self.n_startup_trials:
            # From the advice itself: a draw from π's uniform part would be a random
            # trial counted as the prior's in the trust comparison.
            key = (id(study._storage), study._study_id)
            untried = (beta > 0 and trusted.n1 == 0 and key not in self._tried
                       and not self._has_prior_trial(study, trial))
            with self._lock:
                if untried and key not in self._tried:
                    # The one trial the advice gets before any evidence: enough to compare it.
                    self._tried.add(key)
                    return self.prior.sample(self._rng, 1, uniform=False)[0], PRIOR, beta
                # After it, only advice that has beaten chance may take more.
                if trusted.compared and beta > 0 and self._rng.random_sample() < beta / (beta + self.beta0):
                    return self.prior.sample(self._rng, 1, uniform=False)[0], PRIOR, beta
            return {}, RANDOM, beta
        if beta == 0:  # advice distrusted: plain TPE, at plain TPE's cost
            return self.tpe.sample_relative(study, trial, search_space), TPE, beta
        params, part = self.tpe.sample_blended(
            study, trial, search_space, self.prior, beta / n, beta / (beta + self.beta0)
        )
        return params, part, beta
