"""A benchmark task: a search space, an objective, a direction, a user-style description
and the configuration a user who tunes nothing would run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tunepilot.space import SearchSpace


@dataclass(frozen=True)
class Task:
    """One tuning problem of a suite.

    ``default`` is the library's default configuration clipped into ``space`` (the
    centre of the box where there is no library), one value per parameter: the
    ``-default`` samplers enqueue it as trial 0 and ``blend-defaults`` takes it as a
    user prior.
    """

    name: str
    suite: str
    space: SearchSpace
    objective: Callable[[dict[str, Any]], float]
    direction: str
    description: str
    default: Mapping[str, Any]
