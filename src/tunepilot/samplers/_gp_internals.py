"""What the GP blend takes from Optuna's private ``optuna._gp`` package, in one place.

Optuna's ``GPSampler`` has no public hook for a prior: πBO weights the acquisition
function itself, inside the optimizer that maximises it. So this module uses
``optuna._gp``: the acquisition base class, the search space's normalisation, and
the mixed local search (continuous by L-BFGS-B, discrete by line search). Optuna
promises nothing about these names between releases (``GPSampler._optimize_acqf``
says so itself); ``tests/samplers/test_gp_internals.py`` checks every one of them, so
an Optuna upgrade that moves them fails there, by name, rather than inside a study.

Nothing else in tunepilot imports ``optuna._gp``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from optuna._gp.acqf import BaseAcquisitionFunc
    from optuna._gp.search_space import SearchSpace as GPSpace
    from optuna.distributions import BaseDistribution

    from tunepilot.samplers._prior import Prior

#: The names this module uses, checked by its test: (module, attribute).
USED = (
    ("optuna._gp.acqf", "BaseAcquisitionFunc"),
    ("optuna._gp.search_space", "SearchSpace"),
    ("optuna._gp.optim_mixed", "local_search_mixed_batched"),
    ("optuna.samplers._gp.sampler", "GPSampler._optimize_acqf"),
)


def normalize(space: GPSpace, configs: Sequence[dict[str, Any]]) -> np.ndarray:
    """Configurations in the GP's normalised coordinates (categoricals as indices)."""
    return np.asarray(space.get_normalized_params([None] * len(configs), list(configs)))  # type: ignore[list-item]


class TorchPrior:
    """log π(x) of a :class:`~tunepilot.samplers._prior.Prior`, in torch, on the GP's
    normalised coordinates, differentiable in the continuous ones.

    The prior is defined on its own unit cube (``[low, high]`` mapped to ``[0, 1]``); the
    GP pads integer and stepped ranges by half a step, an affine map per dimension
    ``u_gp = a·u + b``, which is undone before the prior's own formula is applied, so
    that the value is exactly :meth:`Prior.log_pdf` of the same configuration.
    """

    def __init__(self, prior: Prior, space: GPSpace, search_space: dict[str, BaseDistribution]) -> None:
        import torch

        names = list(search_space)
        numeric = [names.index(p.name) for p in prior._numeric]
        categorical = [names.index(p.name) for p in prior._categorical]
        fixed = {p.name: p.choices[0] for p in prior._categorical}
        ends = normalize(space, [
            {**fixed, **{p.name: p.low for p in prior._numeric}},
            {**fixed, **{p.name: p.high for p in prior._numeric}},
        ])
        b = ends[0, numeric]
        a = ends[1, numeric] - b
        self._a = torch.from_numpy(np.where(a > 0, a, 1.0))
        self._b = torch.from_numpy(b)
        self._numeric = torch.tensor(numeric, dtype=torch.long)
        self._categorical = torch.tensor(categorical, dtype=torch.long)
        centres = prior.centres
        h = np.asarray(prior.bandwidth, dtype=float) * np.ones(len(numeric))
        self._centres = torch.from_numpy(centres)  # (m, d)
        self._h = torch.from_numpy(h)
        # Kernel mass inside [0, 1], to renormalise the truncation (as Prior.log_pdf).
        mass = (torch.special.ndtr((1 - self._centres) / self._h)
                - torch.special.ndtr(-self._centres / self._h))
        self._log_norm = -torch.log(self._h * math.sqrt(2 * math.pi)) - torch.log(mass)
        self._known = torch.from_numpy(prior.known)
        self._codes = torch.from_numpy(prior.codes.astype(float))
        self._known_codes = torch.from_numpy(prior.known_codes)
        k = np.array([len(p.choices) for p in prior._categorical], dtype=float)
        eta = prior.eta
        self._log_same = torch.from_numpy(np.log(1 - eta))
        self._log_other = torch.from_numpy(np.log(np.where(k > 1, eta / np.maximum(k - 1, 1), 1.0)))
        self._log_k = torch.from_numpy(np.log(k))
        self._multi = torch.from_numpy(k > 1)
        with np.errstate(divide="ignore"):
            self._log_w = torch.from_numpy(np.log(prior.weights))
        self._log_keep = math.log(1 - prior.epsilon)
        self._log_uniform = prior._log_uniform

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        u = (x[..., self._numeric] - self._b) / self._a  # (..., d) in the prior's unit cube
        z = (u.unsqueeze(-2) - self._centres) / self._h  # (..., m, d)
        log_k = torch.where(self._known, -0.5 * z**2 + self._log_norm, torch.zeros_like(z))
        log_kernel = log_k.sum(dim=-1)  # (..., m)
        if len(self._categorical):
            xc = x[..., self._categorical].detach().round().unsqueeze(-2)  # (..., 1, c)
            same = xc == self._codes
            log_cat = torch.where(same, self._log_same, self._log_other)
            log_cat = torch.where(self._known_codes, log_cat, -self._log_k)
            log_cat = torch.where(self._multi, log_cat, torch.zeros_like(log_cat))
            log_kernel = log_kernel + log_cat.sum(dim=-1)
        log_mix = torch.logsumexp(log_kernel + self._log_w, dim=-1)
        return torch.logaddexp(log_mix + self._log_keep,
                               torch.full_like(log_mix, self._log_uniform))


def weighted_acqf(
    inner: BaseAcquisitionFunc, terms: Sequence[tuple[float, TorchPrior]]
) -> BaseAcquisitionFunc:
    """``inner`` plus Σ wᵢ·log πᵢ(x): the acquisition times Π πᵢ(x)^wᵢ, in log space."""
    from optuna._gp.acqf import BaseAcquisitionFunc

    class _Weighted(BaseAcquisitionFunc):
        def __init__(self) -> None:
            super().__init__(inner.length_scales, inner.search_space)

        def eval_acqf(self, x: torch.Tensor) -> torch.Tensor:
            value = inner.eval_acqf(x)
            for weight, log_prior in terms:
                value = value + weight * log_prior(x)
            return value

    return _Weighted()


def optimize(
    acqf: BaseAcquisitionFunc,
    *,
    warmstart: np.ndarray | None,
    prior_starts: np.ndarray,
    n_preliminary_samples: int,
    n_local_search: int,
    tol: float,
    rng: np.random.RandomState,
) -> tuple[np.ndarray, int]:
    """Maximise ``acqf`` as ``optimize_acqf_mixed`` does, also starting from ``prior_starts``.

    Local searches start from the best of ``n_preliminary_samples`` quasi-random
    points, the ``warmstart`` points (the best trial), points drawn from the priors,
    and a roulette over the rest. Returns the best point and the index of the prior
    start it came from (-1 when it came from elsewhere).
    """
    from optuna._gp.optim_mixed import local_search_mixed_batched

    dim = acqf.search_space.dim
    warm = warmstart if warmstart is not None else np.empty((0, dim))
    starts = np.asarray(prior_starts, dtype=float).reshape(-1, dim)
    sampled = acqf.search_space.sample_normalized_params(n_preliminary_samples, rng=rng)
    f = acqf.eval_acqf_no_grad(sampled)
    best = int(np.argmax(f))
    n_roulette = max(0, n_local_search - 1 - len(warm) - len(starts))
    probs = np.exp(f - f[best])
    probs[best] = 0.0
    chosen = [best]
    if n_roulette and probs.sum() > 0:
        probs /= probs.sum()
        n_roulette = min(n_roulette, int(np.count_nonzero(probs)))
        chosen += list(rng.choice(len(sampled), size=n_roulette, replace=False, p=probs))
    xs0 = np.vstack([sampled[chosen], warm, starts])
    xs, fvals = local_search_mixed_batched(acqf, xs0, tol=tol)
    i = int(np.argmax(fvals))
    first_prior = len(chosen) + len(warm)
    return xs[i], (i - first_prior if i >= first_prior else -1)
