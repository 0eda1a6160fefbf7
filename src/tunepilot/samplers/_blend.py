"""Blending prior knowledge with a classical sampler: πBO with trust calibration.

Each source of prior knowledge — a language model's proposals, the user's beliefs,
the best trials of an earlier study (:mod:`._sources`) — defines a prior density
π_s(x) (see :mod:`._prior`). With ``n`` completed trials, the base sampler's
acquisition a₀(x) — TPE's log l(x)/g(x) (:mod:`._blend_tpe`) or the GP's log EI
(:mod:`._blend_gp`) — is weighted by every trusted prior:

    a(x) = a₀(x) + Σ_s (β_s / n) · log π_s(x)

that is the acquisition times Π π_s(x)^(β_s/n), as in πBO: a prior's pull fades as
evidence accumulates. Which base is used is decided per study (:mod:`._bases`).

Before the base has ``n_startup_trials`` trials (when it samples at random) each
source gets one trial on trust, the first ones: the user's beliefs and an earlier
study's best trial as they stand, a model's advice drawn from its kernels (the
advice itself, without the ε of uniform mass); the next trials are uniform until those
trials can be compared with them. After its first comparison a startup trial is drawn
from source s's kernels with probability β_s / (Σβ + β₀), else uniformly; with every
β_s = 0 the rest of the startup is uniform, as the base's. Startup draws spent on
advice that does not win cost the base the spread of its initial design, which it
does not make up within a small budget: one trial is what it takes to compare a
source at all.

β_s adapts to how useful the source has been on this study (trust calibration). Let
AUC be the probability that one of the n₁ completed trials the source chose beats one
of the n₂ chosen by no prior (by the base or at random), ties counting half, and z
its distance from chance in null standard errors (the Mann–Whitney variance without
tie correction):

    z = (AUC − ½) / sqrt((n₁ + n₂ + 1) / (12 n₁ n₂))

Before the first comparison (n₁ n₂ = 0) β_s = β₀, the benefit of the doubt. After it

    β_s = β₀ · clip((z − 1) / 2, 0, 3)

Advice has to keep earning its weight: it gets none until its trials beat the others
by more than one standard error of chance (z > 1), full weight β₀ at z = 3 and at
most 3β₀. Advice that only ties, or loses, gets β = 0; with every β_s = 0 the blend is
the plain base sampler, at its cost. A rule that kept some weight for tied advice
(β₀ / (1 + m)) cost about 0.06 normalized regret at 30 trials on the Bayesmark tasks
with the embedded model's advice, which mostly ties or loses there
(benchmarks/HISTORY.md).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tunepilot.samplers._bases import GP, TPE, BaseChooser
from tunepilot.samplers._blend_tpe import BlendTPESampler
from tunepilot.samplers._prior import Prior
from tunepilot.samplers._sources import LLM, STUDY, USER, Source, rank_weights
from tunepilot.space import SearchSpace

#: Parts of the blend that can choose a trial, recorded as ``llm.blend_part``: a prior,
#: one of the bases, or the uniform startup.
PRIOR, RANDOM = "prior", "random"
#: Sources whose first trial on trust is their configuration as it stands (the user's
#: beliefs, an earlier study's best trial), not a draw around it: the user means it.
EXACT_FIRST = frozenset({USER, STUDY})
#: Mixed into the seed of the blend's own random stream.
_STREAM = 0x626C656E


class Trust(NamedTuple):
    """How the completed trials a source chose rank against those no prior chose."""

    auc: float  #: P(a source's trial beats another); ties count half; ½ with no comparison
    n1: int  #: completed trials the source chose
    n2: int  #: completed trials no prior chose

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


class Choice(NamedTuple):
    """What the blend chose for one trial."""

    params: dict[str, Any]  #: empty: let the independent sampler draw (uniform startup)
    part: str  #: ``prior``, ``tpe``, ``gp`` or ``random``
    beta: float  #: Σ β_s over the sources
    betas: dict[str, float]  #: β_s per source
    source: str | None  #: the source whose draw was chosen, for ``part == "prior"``
    base: str  #: ``tpe`` or ``gp``


def source_of(trial: FrozenTrial) -> str | None:
    """The source that chose ``trial`` (``None``: no prior did)."""
    if trial.user_attrs.get("llm.blend_part") != PRIOR:
        return None
    # Trials of studies blended before priors had several sources came from the LLM.
    return str(trial.user_attrs.get("llm.prior_source", LLM))


def rank(
    trials: Sequence[FrozenTrial],
    direction: StudyDirection,
    group: Callable[[FrozenTrial], bool | None],
) -> Trust:
    """How the completed trials with ``group(t)`` true rank against those with it false
    (``None`` leaves a trial out)."""
    sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
    ours: list[float] = []
    others: list[float] = []
    for t in trials:
        side = group(t)
        if t.value is None or side is None:
            continue
        (ours if side else others).append(sign * t.value)
    if not ours or not others:
        return Trust(0.5, len(ours), len(others))
    a, b = np.array(ours)[:, None], np.array(others)[None, :]
    return Trust(float(((a > b) + 0.5 * (a == b)).mean()), len(ours), len(others))


def trust(trials: Sequence[FrozenTrial], direction: StudyDirection, source: str = LLM) -> Trust:
    """How trials drawn from ``source`` rank against those no prior chose (module docstring)."""

    def group(t: FrozenTrial) -> bool | None:
        chosen_by = source_of(t)
        return True if chosen_by == source else False if chosen_by is None else None

    return rank(trials, direction, group)


class Blender:
    """The state of one blend: its sources, β₀, and the bases it samples with."""

    def __init__(
        self,
        *,
        beta: float,
        epsilon: float,
        n_startup_trials: int,
        seed: int | None,
        base: str = "auto",
        sources: Sequence[Source] = (),
    ) -> None:
        self.beta0 = beta
        self.epsilon = epsilon
        self.n_startup_trials = n_startup_trials
        self.tpe = BlendTPESampler(seed=seed, n_startup_trials=n_startup_trials)
        self.bases = BaseChooser(base, seed=seed, n_startup_trials=n_startup_trials)
        #: The sources, in the order their first trials on trust are given.
        self.sources: dict[str, Source] = {s.name: s for s in sources}
        self.refreshed_at = -1
        # A stream of its own: seeded like the base's random startup, the prior's uniform
        # draws would repeat it, and the study evaluate the same configuration twice.
        self._rng = np.random.RandomState(
            None if seed is None else np.random.SeedSequence((seed % 2**32, _STREAM)).generate_state(1)[0]
        )
        self._lock = threading.Lock()
        #: (storage, study id, source) for which this process gave the source its first
        #: trial: a trial's attributes are stored only after it is sampled.
        self._tried: set[tuple[int, int, str]] = set()

    @property
    def has_prior(self) -> bool:
        """Whether any source has a configuration yet."""
        return any(s.configs for s in self.sources.values())

    def add(
        self,
        space: SearchSpace,
        proposals: Sequence[dict[str, Any]],
        n_complete: int,
        unknown: Sequence[Collection[str]] | None = None,
    ) -> None:
        """Add a language model's proposals, best first; ``unknown`` names each one's
        clamped values. The prior weighs them by rank (:func:`rank_weights`)."""
        kept = [(p, u) for p, u in zip(proposals, unknown or [()] * len(proposals))
                if space.contains(p)]
        with self._lock:
            self.sources.setdefault(LLM, Source(LLM)).add(
                [p for p, _ in kept], [u for _, u in kept], rank_weights(len(kept)))
            self.refreshed_at = n_complete

    def _priors(self, space: SearchSpace) -> dict[str, Prior]:
        with self._lock:
            priors = {name: s.prior(space, self.epsilon) for name, s in self.sources.items()}
        return {name: p for name, p in priors.items() if p is not None}

    def trusts(self, study: Study) -> dict[str, Trust]:
        """How each source's completed trials rank: see :func:`trust`."""
        complete = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)
        return {name: trust(complete, study.direction, name) for name in self.sources}

    def weight(self, trusted: Trust) -> float:
        """β for a source with this trust: β₀ before its first comparison, then by z."""
        if not trusted.compared:
            return self.beta0
        return self.beta0 * float(np.clip((trusted.z - 1) / 2, 0, 3))

    @staticmethod
    def _has_prior_trial(study: Study, trial: FrozenTrial, source: str) -> bool:
        """Whether any other trial of the study, in any state, was drawn from ``source``."""
        return any(
            source_of(t) == source
            for t in study._get_trials(deepcopy=False, use_cache=False)
            if t.number != trial.number
        )

    def sample(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> Choice:
        """Parameters for ``trial`` (empty: let the independent sampler draw) and why."""
        space = SearchSpace.from_optuna(search_space)
        priors = self._priors(space)
        trusts = self.trusts(study)
        betas = {name: self.weight(trusts[name]) for name in priors}
        total = sum(betas.values())
        n = len(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        if n < self.n_startup_trials:
            base = self.bases.current(study)
            return self._startup(study, trial, priors, trusts, betas, base)
        base = self.bases.choose(study, trial, search_space)
        # With no startup (n_startup_trials=0), parallel workers can sample before any
        # trial has finished: the first trials weigh the prior as n = 1 would.
        active = [(name, priors[name], b / max(n, 1)) for name, b in betas.items() if b > 0]
        if not active:  # advice distrusted: the plain base, at its cost
            sampler = self.tpe if base == TPE else self.bases.gp
            params = self.bases.timed(study, base, lambda: sampler.sample_relative(
                study, trial, search_space))
            return Choice(params, base, total, betas, None, base)
        if base == GP:
            params, source = self.bases.timed(study, base, lambda: self.bases.gp.sample_blended(
                study, trial, search_space, active))
        else:
            params, source = self.tpe.sample_blended(
                study, trial, search_space, active, total / (total + self.beta0))
        return Choice(params, PRIOR if source else base, total, betas, source, base)

    def _startup(
        self,
        study: Study,
        trial: FrozenTrial,
        priors: dict[str, Prior],
        trusts: dict[str, Trust],
        betas: dict[str, float],
        base: str,
    ) -> Choice:
        total = sum(betas.values())

        def draw(name: str, first: bool = False) -> Choice:
            # From the advice itself: a draw from π's uniform part would be a random
            # trial counted as the source's in the trust comparison. A belief, or an
            # earlier study's best trial, is tried as it stands first.
            if first and name in EXACT_FIRST:
                params = priors[name].mode(self._rng)
            else:
                params = priors[name].sample(self._rng, 1, uniform=False)[0]
            return Choice(params, PRIOR, total, betas, name, base)

        key = (id(study._storage), study._study_id)
        untried = [name for name in priors
                   if betas[name] > 0 and trusts[name].n1 == 0 and (*key, name) not in self._tried
                   and not self._has_prior_trial(study, trial, name)]
        with self._lock:
            for name in untried:
                if (*key, name) not in self._tried:
                    # The one trial a source gets before any evidence: enough to compare it.
                    self._tried.add((*key, name))
                    return draw(name, first=True)
            # After it, only advice that has beaten chance may take more.
            earned = {name: b for name, b in betas.items() if b > 0 and trusts[name].compared}
            if earned:
                mass = sum(earned.values())
                if self._rng.random_sample() < mass / (mass + self.beta0):
                    names = list(earned)
                    pick = names[0] if len(names) == 1 else names[
                        int(self._rng.choice(len(names), p=[earned[m] / mass for m in names]))]
                    return draw(pick)
        return Choice({}, RANDOM, total, betas, None, base)
