"""Where a blend's prior comes from: a language model, the user's beliefs, earlier studies.

Each source gives configurations (or, for beliefs, one centre per parameter with a
width) that become one :class:`~tunepilot.samplers._prior.Prior`. The blend weighs
every source by its own trust, so a good source keeps its pull while a bad one fades.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from tunepilot.exceptions import SearchSpaceError
from tunepilot.samplers._prior import Prior
from tunepilot.space import Belief, CategoricalParam, Param, SearchSpace
from tunepilot.space._beliefs import BANDWIDTH, OTHERS
from tunepilot.space._params import CLAMPED

#: Names of the prior sources, as recorded in ``llm.prior_sources``.
LLM, USER, STUDY = "llm", "user", "study"


@dataclass(frozen=True)
class StudyRef:
    """An earlier study whose best trials become a prior (``prior_from``).

    Args:
        study_name: the study's name.
        storage: its storage URL; ``None`` for the storage of the study being sampled.
        top_k: how many of its best trials to centre the prior on.

    Example:
        .. code-block:: python

            from tunepilot.samplers import StudyRef

            ref = StudyRef("foundation", storage="sqlite:///phases.db")
    """

    study_name: str
    storage: str | None = None
    top_k: int = 5

    def __post_init__(self) -> None:
        if not self.study_name:
            raise ValueError("prior_from: a study name is needed")
        if self.top_k < 1:
            raise ValueError(f"prior_from: top_k must be >= 1, got {self.top_k}")


def as_study_refs(value: str | StudyRef | Sequence[str | StudyRef] | None) -> list[StudyRef]:
    """``prior_from`` as a list of :class:`StudyRef` (a bare string names a study)."""
    if value is None:
        return []
    items = [value] if isinstance(value, (str, StudyRef)) else list(value)
    return [StudyRef(v) if isinstance(v, str) else v for v in items]


def best_configs(
    ref: StudyRef, space: SearchSpace, storage: optuna.storages.BaseStorage | None
) -> list[dict[str, Any]]:
    """The best completed configurations of ``ref``, restricted to ``space``.

    Values outside ``space`` are clamped into it; a parameter the earlier study did not
    have is left out of that configuration (the prior is uniform on it).

    Raises:
        SearchSpaceError: the study does not exist, has no completed trial, or shares no
            parameter with ``space``.
    """
    where = ref.storage if ref.storage is not None else storage
    if where is None:
        raise SearchSpaceError(f"prior_from: {ref.study_name!r} names no storage; give its URL")
    try:
        study = optuna.load_study(study_name=ref.study_name, storage=where)
    except KeyError:
        raise SearchSpaceError(
            f"prior_from: no study named {ref.study_name!r} in that storage; run it first, "
            "or name one of the storage's studies"
        ) from None
    if len(study.directions) != 1:
        raise SearchSpaceError(f"prior_from: {ref.study_name!r} has several objectives; "
                               "a prior needs a single-objective study")
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None]
    if not complete:
        raise SearchSpaceError(f"prior_from: {ref.study_name!r} has no completed trial yet")
    sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
    complete.sort(key=lambda t: sign * float(t.value))  # type: ignore[arg-type]
    configs: list[dict[str, Any]] = []
    for t in complete[: ref.top_k]:
        config: dict[str, Any] = {}
        for name, param in space.items():
            if name in t.params:
                try:
                    config[name] = param.repair(t.params[name])[0]
                except ValueError:
                    continue
        if config:
            configs.append(config)
    if not configs:
        raise SearchSpaceError(f"prior_from: {ref.study_name!r} shares no parameter with this "
                               f"study ({', '.join(space)})")
    return configs



class Source:
    """One source of prior knowledge: its configurations, and its prior over a given space.

    Configurations may be partial (a belief about some parameters only; an earlier study
    without a parameter this one has): what a configuration does not say about a
    parameter is uniform there. The prior is rebuilt for each space the blend samples in,
    since a define-by-run study's space can grow.

    Args:
        name: ``llm``, ``user`` or ``study``, as recorded on trials.
        bandwidth: fixed kernel widths per numeric parameter (beliefs); ``None`` for
            Scott's rule over the configurations.
        eta: mass a categorical kernel leaves to the other choices, per parameter.
    """

    def __init__(
        self,
        name: str,
        *,
        bandwidth: Mapping[str, float] | None = None,
        eta: Mapping[str, float] | None = None,
    ) -> None:
        self.name = name
        self.bandwidth = dict(bandwidth) if bandwidth is not None else None
        self.eta = dict(eta) if eta is not None else {}
        self.configs: list[dict[str, Any]] = []
        self.unknown: list[frozenset[str]] = []
        self.weights: list[float] = []
        self._priors: dict[SearchSpace, Prior | None] = {}

    def add(self, configs: Sequence[Mapping[str, Any]],
            unknown: Sequence[Collection[str]] | None = None,
            weights: Sequence[float] | None = None) -> None:
        """Add configurations; ``unknown`` names each one's values that carry no advice,
        ``weights`` each one's share of the prior (1 each by default)."""
        if weights is not None and len(weights) != len(configs):
            raise ValueError(f"{len(weights)} weights for {len(configs)} configurations")
        self.configs += [dict(c) for c in configs]
        self.unknown += [frozenset(u) for u in (unknown or [()] * len(configs))]
        self.weights += [float(w) for w in weights] if weights is not None else [1.0] * len(configs)
        self._priors.clear()

    def prior(self, space: SearchSpace, epsilon: float) -> Prior | None:
        """The prior over ``space``, or ``None`` when no configuration says anything there."""
        if space not in self._priors:
            self._priors[space] = self._build(space, epsilon)
        return self._priors[space]

    def _build(self, space: SearchSpace, epsilon: float) -> Prior | None:
        filled: list[dict[str, Any]] = []
        unknown: list[set[str]] = []
        weights: list[float] = []
        for config, told, weight in zip(self.configs, self.unknown, self.weights):
            values: dict[str, Any] = {}
            blind: set[str] = set()
            for name, param in space.items():
                if name in config and name not in told:
                    try:
                        value, repairs = param.repair(config[name])
                    except ValueError:
                        value, repairs = None, [CLAMPED]
                    if CLAMPED not in repairs:
                        values[name] = value
                        continue
                blind.add(name)
                values[name] = _placeholder(param)
            if len(blind) < len(space):
                filled.append(values)
                unknown.append(blind)
                weights.append(weight)
        if not filled:
            return None
        bandwidth = None
        if self.bandwidth is not None:
            bandwidth = np.array([self.bandwidth.get(p.name, 0.1) for p in space.values()
                                  if not isinstance(p, CategoricalParam)], dtype=float)
        eta = [self.eta.get(p.name, 0.2) for p in space.values() if isinstance(p, CategoricalParam)]
        return Prior(space, filled, epsilon=epsilon, bandwidth=bandwidth, eta=eta or 0.2,
                     unknown=unknown, weights=weights)


def rank_weights(count: int) -> list[float]:
    """Weights of ``count`` configurations listed best first: falling linearly with the
    rank, 1 on average (4 of them: 1.6, 1.2, 0.8, 0.4), so the first is tried most
    while the last keeps a share, since a small model's order is a weak signal."""
    return [2 * (count - i) / (count + 1) for i in range(count)]


def _placeholder(param: Param) -> Any:
    """Any value inside ``param``: the kernel ignores it on a dimension marked unknown."""
    return param.choices[0] if isinstance(param, CategoricalParam) else param.from_unit(0.5)


def belief_source(beliefs: Mapping[str, Belief]) -> Source:
    """A source of one configuration: the user's beliefs, with widths from their confidence."""
    source = Source(
        USER,
        bandwidth={n: BANDWIDTH[b.confidence] for n, b in beliefs.items()},
        eta={n: OTHERS[b.confidence] for n, b in beliefs.items()},
    )
    source.add([{n: b.value for n, b in beliefs.items()}])
    return source
