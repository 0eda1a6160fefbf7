"""The LLM prior: a density over the search space built from the model's proposals.

Each parameter is mapped to [0, 1] (log-scaled ones in log space). Over ``m``
proposals ``p_1..p_m`` the prior is

    π(x) = (1 - ε) · (1/m) Σ_j Π_d K_d(x_d; p_jd) + ε · U(x)

with a Gaussian kernel of bandwidth ``h`` (truncated to [0, 1] and renormalised) for
numeric dimensions, and for a categorical dimension with ``k`` choices the smoothed
frequency kernel ``K(x; p) = 1 - η`` if ``x == p`` else ``η / (k - 1)``; U is the
uniform density (1 on the unit cube, 1/k for each categorical). The ε of
uniform mass means no configuration has zero prior probability, so a wrong prior
slows the search down but cannot exclude the optimum.

A proposal's value that had to be clamped into its range says nothing about where in
the range to look (small models often answer on another scale, e.g. a count where the
space wants a fraction), so that value is marked unknown: on that dimension the
proposal's kernel is the uniform density, K_d(x_d; p_jd) = 1 (1/k for a categorical),
instead of a spike on the bound.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from tunepilot.space import CategoricalParam, SearchSpace

_SQRT2 = math.sqrt(2.0)
_erf = np.vectorize(math.erf, otypes=[float])


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + _erf(z / _SQRT2)), dtype=float)


class Prior:
    """A kernel density over ``space`` centred on LLM proposals, with ε uniform mass.

    Args:
        space: the search space.
        proposals: configurations inside ``space``.
        epsilon: mass of the uniform component.
        bandwidth: kernel width in the unit cube, one for all or one per numeric
            dimension; ``None`` uses Scott's rule per dimension, within [0.03, 0.3].
        eta: probability mass a categorical kernel spreads over the other choices, one for
            all or one per categorical dimension.
        unknown: per proposal, the names of parameters whose value carries no
            information (it was clamped into range); their kernel is uniform.
        weights: per proposal, its share of the mixture (normalised); equal by default.

    Example:
        .. code-block:: python

            space = SearchSpace([FloatParam("x", 0.0, 1.0)])
            prior = Prior(space, [{"x": 0.2}, {"x": 0.25}])
            assert prior.log_pdf([{"x": 0.2}])[0] > prior.log_pdf([{"x": 0.9}])[0]
    """

    def __init__(
        self,
        space: SearchSpace,
        proposals: Sequence[Mapping[str, Any]],
        *,
        epsilon: float = 0.1,
        bandwidth: float | np.ndarray | None = None,
        eta: float | Sequence[float] = 0.2,
        unknown: Sequence[Collection[str]] | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        if not proposals:
            raise ValueError("a prior needs at least one proposal")
        if unknown is not None and len(unknown) != len(proposals):
            raise ValueError(f"unknown has {len(unknown)} entries for {len(proposals)} proposals")
        if weights is not None and (len(weights) != len(proposals) or min(weights) < 0
                                    or sum(weights) <= 0):
            raise ValueError("weights must be one non-negative number per proposal, not all 0")
        if not 0 < epsilon < 1:
            raise ValueError(f"epsilon must be in (0, 1), got {epsilon}")
        self.space = space
        self.epsilon = epsilon
        self._numeric = [p for p in space.values() if not isinstance(p, CategoricalParam)]
        self._categorical = [p for p in space.values() if isinstance(p, CategoricalParam)]
        #: Mass each categorical kernel spreads over the other choices, per dimension.
        self.eta = np.broadcast_to(np.asarray(eta, dtype=float), (len(self._categorical),)).copy()
        w = np.ones(len(proposals)) if weights is None else np.asarray(weights, dtype=float)
        #: Mixture weights of the proposals, summing to 1.
        self.weights = w / w.sum()
        self._proposals = [dict(p) for p in proposals]
        self.centres = self._to_unit(proposals)
        self.codes = self._to_codes(proposals)
        names: Sequence[Collection[str]] = unknown if unknown is not None else [()] * len(proposals)
        #: Which centre values are known (not clamped), per proposal and dimension.
        self.known = np.array(
            [[p.name not in u for p in self._numeric] for u in names], dtype=bool
        ).reshape(self.centres.shape)
        self.known_codes = np.array(
            [[p.name not in u for p in self._categorical] for u in names], dtype=bool
        ).reshape(self.codes.shape)
        self.bandwidth = bandwidth if bandwidth is not None else self._scott(self.centres, self.known)
        # The uniform density over the unit cube times every categorical's choices.
        self._log_uniform = math.log(epsilon) - sum(math.log(len(p.choices)) for p in self._categorical)

    @staticmethod
    def _scott(centres: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Per-dimension bandwidth by Scott's rule over the known values, within [0.03, 0.3]."""
        d = centres.shape[1]
        out = np.full(d, 0.1)
        for i in range(d):
            values = centres[known[:, i], i]
            if len(values) >= 2:
                out[i] = np.clip(values.std() * len(values) ** (-1 / (d + 4)), 0.03, 0.3)
        return out

    def __len__(self) -> int:
        return len(self.codes)

    def _to_unit(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.array(
            [[p.to_unit(c[p.name]) for p in self._numeric] for c in configs],
            dtype=float,
        ).reshape(len(configs), len(self._numeric))

    def _to_codes(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.array(
            [[p.index(c[p.name]) for p in self._categorical] for c in configs],
            dtype=int,
        ).reshape(len(configs), len(self._categorical))

    def log_pdf(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """log π(x) for each configuration (inside the space)."""
        units, codes = self._to_unit(configs), self._to_codes(configs)
        h = self.bandwidth
        # Kernel mass inside [0, 1], per centre and dimension, to renormalise the truncation.
        mass = _normal_cdf((1 - self.centres) / h) - _normal_cdf(-self.centres / h)
        z = (units[:, None, :] - self.centres[None, :, :]) / h
        log_k = -0.5 * z**2 - np.log(h * math.sqrt(2 * math.pi)) - np.log(mass)[None, :, :]
        # An unknown value's kernel is the uniform density on [0, 1]: log 1 = 0.
        log_kernel = np.where(self.known[None, :, :], log_k, 0.0).sum(axis=2)
        for i, param in enumerate(self._categorical):
            k = len(param.choices)
            if k == 1:
                continue
            same = codes[:, None, i] == self.codes[None, :, i]
            eta = float(self.eta[i])
            log_cat = np.where(same, math.log(1 - eta), math.log(eta / (k - 1)))
            log_kernel += np.where(self.known_codes[None, :, i], log_cat, -math.log(k))
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights)
        log_mix = np.logaddexp.reduce(log_kernel + log_w[None, :], axis=1)
        return np.asarray(
            np.logaddexp(math.log(1 - self.epsilon) + log_mix, self._log_uniform), dtype=float
        )

    def sample(
        self, rng: np.random.RandomState, size: int, *, uniform: bool = True
    ) -> list[dict[str, Any]]:
        """Draw ``size`` configurations from π; with ``uniform=False`` from its kernels only
        (the advice itself, without the ε of uniform mass)."""
        out = []
        weights_equal = bool(np.all(self.weights == self.weights[0]))
        for _ in range(size):
            if uniform and rng.random_sample() < self.epsilon:
                u = rng.random_sample(len(self._numeric))
                codes = [rng.randint(len(p.choices)) for p in self._categorical]
            else:
                j = (rng.randint(len(self)) if weights_equal
                     else int(rng.choice(len(self), p=self.weights)))
                u = self.centres[j] + self.bandwidth * rng.normal(0.0, 1.0, len(self._numeric))
                # Reflect at the borders (a truncated kernel, as in log_pdf).
                u = np.abs(u)
                u = np.where(u > 1, 2 - u, u).clip(0.0, 1.0)
                if not self.known[j].all():
                    u = np.where(self.known[j], u, rng.random_sample(len(self._numeric)))
                codes = []
                for i, param in enumerate(self._categorical):
                    k = len(param.choices)
                    code = int(self.codes[j, i])
                    if not self.known_codes[j, i]:
                        code = rng.randint(k)
                    elif k > 1 and rng.random_sample() < self.eta[i]:
                        code = (code + 1 + rng.randint(k - 1)) % k
                    codes.append(code)
            out.append(self._config(u, codes))
        return out

    def mode(self, rng: np.random.RandomState) -> dict[str, Any]:
        """The configuration the prior holds most likely: its heaviest proposal itself
        (the first of equals), with a uniform draw where that proposal says nothing."""
        j = int(np.argmax(self.weights))
        u = np.where(self.known[j], self.centres[j], rng.random_sample(len(self._numeric)))
        codes = [int(self.codes[j, i]) if self.known_codes[j, i] else rng.randint(len(p.choices))
                 for i, p in enumerate(self._categorical)]
        drawn = self._config(u, codes)
        # Known values exactly as proposed (the unit cube's round trip is not exact).
        known = {p.name for p, k in zip(self._numeric, self.known[j]) if k}
        known |= {p.name for p, k in zip(self._categorical, self.known_codes[j]) if k}
        return {n: self._proposals[j][n] if n in known else v for n, v in drawn.items()}

    def _config(self, u: np.ndarray, codes: Sequence[int]) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for value, numeric in zip(u, self._numeric):
            config[numeric.name] = numeric.from_unit(float(value))
        for code, categorical in zip(codes, self._categorical):
            config[categorical.name] = categorical.choices[code]
        return {n: config[n] for n in self.space}
