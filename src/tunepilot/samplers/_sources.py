"""Where a blend's prior comes from: a language model, the user's beliefs, earlier studies.

Each source gives configurations (or, for beliefs, one centre per parameter with a
width) that become one :class:`~tunepilot.samplers._prior.Prior`. The blend weighs
every source by its own trust, so a good source keeps its pull while a bad one fades.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from tunepilot.exceptions import SearchSpaceError
from tunepilot.space import SearchSpace

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
    try:
        study = optuna.load_study(
            study_name=ref.study_name, storage=ref.storage if ref.storage is not None else storage
        )
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

