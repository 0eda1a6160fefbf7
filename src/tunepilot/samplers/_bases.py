"""Which classical sampler the blend builds on: Optuna's GP or its TPE, chosen per study.

``base="auto"`` (the default) takes the GP where it pays and TPE where it does not:

- TPE when the GP cannot run: ``torch`` is not installed;
- TPE when the space changes (a define-by-run objective whose trials do not all have
  the same parameters, such as a conditional parameter): the GP models one fixed space
  and would leave the rest to random sampling;
- TPE when there are many categorical combinations (more than
  :data:`MAX_CATEGORICAL_COMBINATIONS`): the GP's acquisition search enumerates them;
- else the GP, until its own time per trial passes :data:`MAX_GP_SHARE` of the
  objective's median time *and* :data:`MIN_GP_SECONDS`; from then on TPE, whose time
  per trial stays in milliseconds. The GP's grows with the cube of the trials: about
  0.45 s at 100 trials, 1.3 s at 500 and 5–7 s at 1,000 on two cores. The floor keeps
  a cheap objective on the GP while a step costs less than a user notices, and keeps
  the choice from hanging on the machine's load: on a busy machine a GP step at 50
  trials takes a few times its idle 0.1–0.3 s, still far below the floor.

A switch is for good: the study continues on TPE, which reads the same trials. The
base of each trial is recorded as ``llm.base``, and each decision is logged once.
"""

from __future__ import annotations

import importlib.util
import logging
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tunepilot.samplers._blend_gp import BlendGPSampler

_logger = logging.getLogger("tunepilot.samplers")

TPE, GP, AUTO = "tpe", "gp", "auto"
BASES = (AUTO, GP, TPE)
#: Above this many combinations of categorical values, auto takes TPE.
MAX_CATEGORICAL_COMBINATIONS = 32
#: Auto leaves the GP once its time per trial passes this share of the objective's ...
MAX_GP_SHARE = 0.25
#: ... and this many seconds.
MIN_GP_SECONDS = 2.0
_RECENT = 10
T = TypeVar("T")


def _now() -> float:
    """The clock the GP's steps are timed with."""
    return time.perf_counter()


def torch_available() -> bool:
    """Whether the GP base can run (Optuna's GPSampler needs torch)."""
    return importlib.util.find_spec("torch") is not None


@dataclass
class _StudyBase:
    base: str
    reason: str
    final: bool = False  #: decided for good (a switch, or a reason that cannot change)
    gp_seconds: list[float] = field(default_factory=list)


class BaseChooser:
    """Chooses and remembers the base per study; times the GP's steps.

    Args:
        base: ``"auto"``, ``"gp"`` or ``"tpe"``.
        seed: seed of the GP base.
        n_startup_trials: the GP's random startup, as the blend's.

    Raises:
        ValueError: ``base`` is unknown, or ``"gp"`` without torch installed.
    """

    def __init__(self, base: str, *, seed: int | None, n_startup_trials: int) -> None:
        if base not in BASES:
            raise ValueError(f"base must be one of {', '.join(BASES)}, got {base!r}")
        if base == GP and not torch_available():
            raise ValueError("base='gp' needs Optuna's GPSampler, which needs torch: "
                             "pip install torch (or use base='auto' or 'tpe')")
        self.base = base
        self._seed = seed
        self._n_startup_trials = n_startup_trials
        self._gp: BlendGPSampler | None = None
        self._studies: dict[tuple[int, int], _StudyBase] = {}
        self._lock = threading.Lock()

    @property
    def gp(self) -> BlendGPSampler:
        """The GP base, built on first use (it imports torch)."""
        with self._lock:
            if self._gp is None:
                from tunepilot.samplers._blend_gp import BlendGPSampler

                self._gp = BlendGPSampler(seed=self._seed, n_startup_trials=self._n_startup_trials)
            return self._gp

    def _state(self, study: Study) -> _StudyBase:
        key = (id(study._storage), study._study_id)
        with self._lock:
            state = self._studies.get(key)
            if state is None:
                state = self._first(study)
                self._studies[key] = state
                _logger.info("blend base: %s (%s)", state.base, state.reason)
            return state

    def _first(self, study: Study) -> _StudyBase:
        if self.base != AUTO:
            return _StudyBase(self.base, "chosen with base=", final=True)
        if not torch_available():
            return _StudyBase(TPE, "torch is not installed, which the GP needs", final=True)
        return _StudyBase(GP, "a fixed numeric space so far")

    def current(self, study: Study) -> str:
        """The base decided so far for ``study``."""
        return self._state(study).base

    def choose(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> str:
        """The base for ``trial``: the decision so far, reviewed by the rules above."""
        state = self._state(study)
        if state.final:
            return state.base
        reason = self._reason_for_tpe(study, trial, search_space, state)
        if reason is not None:
            with self._lock:
                state.base, state.reason, state.final = TPE, reason, True
            _logger.info("blend base: tpe from trial %d on (%s)", trial.number, reason)
        return state.base

    def _reason_for_tpe(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        state: _StudyBase,
    ) -> str | None:
        trials = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED),
                                   use_cache=True)
        if len({frozenset(t.params) for t in trials}) > 1:
            return "the space changes from trial to trial (conditional or define-by-run)"
        combinations = 1
        for dist in search_space.values():
            if isinstance(dist, CategoricalDistribution):
                combinations *= len(dist.choices)
        if combinations > MAX_CATEGORICAL_COMBINATIONS:
            return (f"{combinations} combinations of categorical values, more than "
                    f"{MAX_CATEGORICAL_COMBINATIONS}")
        if len(state.gp_seconds) >= 3:
            gp_time = statistics.median(state.gp_seconds[-5:])
            durations = [
                (t.datetime_complete - t.datetime_start).total_seconds()
                for t in trials[-_RECENT:]
                if t.datetime_complete is not None and t.datetime_start is not None
            ]
            objective = statistics.median(durations) if durations else 0.0
            if gp_time > MIN_GP_SECONDS and gp_time > MAX_GP_SHARE * objective:
                return (f"the GP took {gp_time:.2f} s a trial, more than {MAX_GP_SHARE:.0%} of "
                        f"the objective's {objective:.2f} s")
        return None

    def timed(self, study: Study, base: str, step: Callable[[], T]) -> T:
        """Run one sampling step, keeping the GP's times for the cost rule."""
        if base != GP:
            return step()
        start = _now()
        result = step()
        state = self._state(study)
        with self._lock:
            state.gp_seconds.append(_now() - start)
            del state.gp_seconds[:-_RECENT]
        return result
