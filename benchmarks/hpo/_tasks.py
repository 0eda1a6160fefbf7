"""A benchmark task: a search space, an objective, a direction and a user-style description."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tunepilot.space import SearchSpace


@dataclass(frozen=True)
class Task:
    """One tuning problem of a suite."""

    name: str
    suite: str
    space: SearchSpace
    objective: Callable[[dict[str, Any]], float]
    direction: str
    description: str
