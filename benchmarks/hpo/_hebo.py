"""HEBO as an Optuna sampler, run in its own virtualenv (BENCHMARKS.md: HEBO pins numpy<1.25).

Set up once, beside the project's own environment::

    python3 -m venv .venv-hebo
    .venv-hebo/bin/pip install -r benchmarks/hpo/hebo-requirements.txt

``TUNEPILOT_HEBO_PYTHON`` names another interpreter. Objectives still run in the
benchmark's process with its own scikit-learn; only HEBO's suggestions come from the
other process (``_hebo_worker.py``), which sees every completed trial before each
suggestion. HEBO minimizes: values of maximized tasks are negated on the way in.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import weakref
from functools import cache
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from tunepilot.space import CategoricalParam, FloatParam, IntParam, SearchSpace

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "_hebo_worker.py"


def hebo_python() -> Path:
    """The interpreter of HEBO's virtualenv."""
    return Path(os.environ.get("TUNEPILOT_HEBO_PYTHON", ROOT / ".venv-hebo" / "bin" / "python"))


@cache
def hebo_available() -> bool:
    """Whether that interpreter exists and imports hebo."""
    python = hebo_python()
    if not python.exists():
        return False
    done = subprocess.run([str(python), "-c", "import hebo"], capture_output=True, check=False)
    return done.returncode == 0


def hebo_space(space: SearchSpace) -> list[dict[str, Any]]:
    """HEBO's design-space description of ``space``."""
    params: list[dict[str, Any]] = []
    for name, param in space.items():
        if isinstance(param, FloatParam):
            if param.step is not None:
                raise ValueError(f"{name}: HEBO has no stepped float; the benchmark tasks have none")
            kind = "pow" if param.log else "num"
            params.append({"name": name, "type": kind, "lb": param.low, "ub": param.high})
        elif isinstance(param, IntParam):
            if param.step != 1:
                raise ValueError(f"{name}: HEBO has no stepped int; the benchmark tasks have none")
            kind = "pow_int" if param.log else "int"
            params.append({"name": name, "type": kind, "lb": param.low, "ub": param.high})
        elif isinstance(param, CategoricalParam):
            labels = [str(c) for c in param.choices]
            params.append({"name": name, "type": "cat", "categories": labels})
        else:  # pragma: no cover - the space has no other kinds
            raise TypeError(f"{name}: unsupported parameter {param!r}")
    return params


def _from_hebo(param: Any, value: Any) -> Any:
    """A HEBO value as the space's own type, inside its bounds."""
    if isinstance(param, CategoricalParam):
        return param.choices[[str(c) for c in param.choices].index(str(value))]
    if isinstance(param, IntParam):
        return min(max(int(round(float(value))), param.low), param.high)
    return min(max(float(value), param.low), param.high)


def _to_hebo(param: Any, value: Any) -> Any:
    return str(value) if isinstance(param, CategoricalParam) else value


def _stop(process: subprocess.Popen[str]) -> None:
    """End the worker (it exits at the end of its input) and close both pipes."""
    if process.stdin is not None and not process.stdin.closed:
        process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


class HeboSampler(optuna.samplers.BaseSampler):
    """Each trial's parameters from HEBO, told every completed trial first."""

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self._space = space
        self._distributions = space.to_optuna()
        self._told: set[int] = set()
        self._process = subprocess.Popen(
            [str(hebo_python()), str(WORKER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        weakref.finalize(self, _stop, self._process)
        self.versions: dict[str, str] = self._ask({"space": hebo_space(space), "seed": seed})["versions"]

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the HEBO worker exited (status {self._process.wait()}); see stderr")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the HEBO worker failed:\n{answer['error']}")
        return answer

    def close(self) -> None:
        _stop(self._process)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._distributions)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        for done in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if done.number in self._told or done.value is None or not math.isfinite(done.value):
                continue
            params = {n: _to_hebo(self._space[n], done.params[n]) for n in self._space}
            self._ask({"op": "observe", "params": params, "value": sign * done.value})
            self._told.add(done.number)
        suggested = self._ask({"op": "suggest"})["params"]
        return {n: _from_hebo(self._space[n], suggested[n]) for n in self._space}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        raise RuntimeError(f"HeboSampler samples the whole space at once; {param_name!r} is not in it")
