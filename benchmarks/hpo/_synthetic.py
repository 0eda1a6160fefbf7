"""Suite ``synthetic``: Branin, Hartmann6, Rosenbrock (5-D), Ackley (5-D), plain and shifted.

The shifted variants move the optimum inside the box (``x' = x - s``, wrapping is
avoided by choosing ``s`` so the optimum stays inside), so that a model that has
memorised the textbook optima gains nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.hpo._tasks import Task
from tunepilot.space import FloatParam, SearchSpace

_HARTMANN_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                        [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_HARTMANN_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                               [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def branin(x: np.ndarray) -> float:
    x1, x2 = x
    return float((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
                 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def hartmann6(x: np.ndarray) -> float:
    inner = (_HARTMANN_A * (x[None, :] - _HARTMANN_P) ** 2).sum(axis=1)
    return float(-(_HARTMANN_ALPHA * np.exp(-inner)).sum())


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def ackley(x: np.ndarray) -> float:
    d = len(x)
    return float(-20 * np.exp(-0.2 * np.sqrt((x**2).sum() / d))
                 - np.exp(np.cos(2 * math.pi * x).sum() / d) + 20 + math.e)


def _task(name: str, fn: Callable[[np.ndarray], float], bounds: Sequence[tuple[float, float]],
          shift: Sequence[float] | None, what: str) -> Task:
    names = [f"x{i}" for i in range(len(bounds))]
    params = [FloatParam(n, lo, hi) for n, (lo, hi) in zip(names, bounds)]
    space = SearchSpace(tuple(params))
    offset = np.zeros(len(bounds)) if shift is None else np.asarray(shift, dtype=float)

    def objective(config: dict[str, Any]) -> float:
        return fn(np.array([config[n] for n in names], dtype=float) - offset)

    # No library has a default here: the centre of the box stands in for one (each
    # parameter's midpoint in its own scale). It is plain Ackley's optimum (0) and 1 from
    # plain Rosenbrock's in each coordinate; the shifted variants move both away from it.
    centre = {p.name: p.from_unit(0.5) for p in params}
    description = (
        f"Minimise a black-box function of {len(bounds)} real inputs ({what}). "
        "Each evaluation is cheap but the budget is small, so choose points that are informative."
    )
    return Task(name, "synthetic", space, objective, "minimize", description, centre)


def synthetic_tasks() -> list[Task]:
    """The 8 tasks of the synthetic suite."""
    specs: list[tuple[str, Callable[[np.ndarray], float], list[tuple[float, float]], list[float], str]] = [
        ("branin", branin, [(-5.0, 10.0), (0.0, 15.0)], [1.7, -2.3], "a smooth valley with several minima"),
        ("hartmann6", hartmann6, [(0.0, 1.0)] * 6, [0.11, -0.07, 0.09, -0.12, 0.05, 0.08],
         "six inputs in [0, 1], several local minima"),
        ("rosenbrock5", rosenbrock, [(-2.0, 2.0)] * 5, [-0.6, 0.4, -0.3, 0.5, -0.2],
         "a long curved valley"),
        ("ackley5", ackley, [(-5.0, 5.0)] * 5, [1.3, -2.1, 0.7, 2.4, -1.6],
         "a bumpy surface with one deep basin"),
    ]
    tasks = []
    for name, fn, bounds, shift, what in specs:
        tasks.append(_task(name, fn, bounds, None, what))
        tasks.append(_task(f"{name}-shifted", fn, bounds, shift, what))
    return tasks
