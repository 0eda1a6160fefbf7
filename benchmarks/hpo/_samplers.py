"""The samplers a benchmark run compares, built fresh for each (task, seed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import optuna

from benchmarks.hpo._hebo import HeboSampler, hebo_available, hebo_python
from benchmarks.hpo._tasks import Task
from tunepilot import LLMSampler
from tunepilot.llm import Backend, Completion, Message, Usage
from tunepilot.llm._base import BackendWrapper
from tunepilot.space import Belief
from tunepilot.testing import ControlledPrior

#: Controlled priors are not language models: their names say so in every table.
CONTROLLED = ("blend-informative", "blend-misleading")
#: Classical samplers whose trial 0 is the task's default configuration (``Task.default``):
#: a capable model's first advice is often close to it, so LLM results count against these.
DEFAULT_FIRST = ("tpe-default", "gp-default")
#: The blend on a fixed base, with the model of ``--model``; ``blend`` chooses its base.
FIXED_BASE = {"blend-gp": "gp", "blend-tpe": "tpe"}
SAMPLERS = (
    "random", "tpe", "tpe-mv", "gp", "cmaes", "hebo", *DEFAULT_FIRST,
    "llm", "blend", *FIXED_BASE, "blend-defaults", "blend-recorded", *CONTROLLED,
)
#: The embedded model's recorded first answer per task, which ``blend-recorded`` replays.
ADVICE = Path(__file__).resolve().parent / "advice.json"


class Recorder(BackendWrapper):
    """Passes calls on to the wrapped backend and keeps the text of every answer."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.texts: list[str] = []

    def complete(self, messages: list[Message], **options: Any) -> Completion:
        completion = self.inner.complete(messages, **options)
        self.texts.append(completion.text)
        return completion


class RecordedAdvice:
    """Answers every call with one recorded answer of a model: advice of a real model's
    quality at TPE's cost, for comparing blend rules. Not a language model: results
    obtained with it are labelled as replays."""

    def __init__(self, text: str, model: str) -> None:
        self.text = text
        self.name = f"replay of {model}"

    def complete(self, messages: list[Message], **options: Any) -> Completion:
        return Completion(text=self.text, usage=Usage(), model=self.name)


_NEEDS = {"gp": "torch", "gp-default": "torch", "blend-gp": "torch", "cmaes": "cmaes"}

#: Spread of the controlled priors in the unit cube.
PRIOR_SPREAD = 0.1


def available(name: str) -> bool:
    """Whether the packages the sampler needs are installed."""
    if name == "hebo":
        return hebo_available()
    module = _NEEDS.get(name)
    return module is None or importlib.util.find_spec(module) is not None


def missing(name: str) -> str:
    """What to install for an unavailable sampler ``name``."""
    if name == "hebo":
        return (f"no interpreter at {hebo_python()} imports hebo (it pins numpy<1.25 and needs a "
                "virtualenv of its own): python3 -m venv .venv-hebo && .venv-hebo/bin/pip install "
                "-r benchmarks/hpo/hebo-requirements.txt, or set TUNEPILOT_HEBO_PYTHON")
    return f"its package {_NEEDS[name]!r} is not installed"


def first_trial(name: str, task: Task) -> dict[str, Any] | None:
    """The configuration a run of sampler ``name`` enqueues as trial 0, if any."""
    return dict(task.default) if name in DEFAULT_FIRST else None


def make_sampler(
    name: str,
    task: Task,
    seed: int,
    *,
    centres: dict[str, Any],
    advice: dict[str, Any] | None = None,
    model: str | Backend = "local",
) -> optuna.samplers.BaseSampler:
    """A fresh sampler ``name`` for one run of ``task`` with ``seed``."""
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=False)
    if name in ("tpe-mv", "tpe-default"):
        return optuna.samplers.TPESampler(seed=seed)
    if name in ("gp", "gp-default"):
        return optuna.samplers.GPSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "hebo":
        return HeboSampler(task.space, seed)
    common: dict[str, Any] = {"search_space": task.space, "seed": seed, "description": task.description}
    if name == "llm":
        return LLMSampler(model, mode="llm", **common)
    if name == "blend":
        return LLMSampler(model, mode="blend", base="auto", **common)
    if name in FIXED_BASE:
        return LLMSampler(model, mode="blend", base=FIXED_BASE[name], **common)
    if name == "blend-defaults":
        # A user's prior, no language model: the task's default at medium confidence.
        prior = {param: Belief(value, "medium") for param, value in task.default.items()}
        return LLMSampler(None, mode="blend", base="auto", prior=prior, search_space=task.space,
                          seed=seed)
    if name == "blend-recorded":
        recorded = (advice or {}).get(task.suite, {}).get(task.name)
        if recorded is None:
            raise SystemExit(
                f"no recorded advice for {task.name}; run "
                f"'python -m benchmarks.hpo --suite {task.suite} --record-advice 10' first"
            )
        return LLMSampler(RecordedAdvice(recorded["text"], recorded["model"]), mode="blend", **common)
    if name in CONTROLLED:
        which = "best" if name == "blend-informative" else "worst"
        if task.name not in centres:
            raise SystemExit(
                f"no best/worst-known centre for {task.name}; run "
                f"'python -m benchmarks.hpo --suite {task.suite} --make-centres 200' first"
            )
        centre = centres[task.name][which]
        return LLMSampler(ControlledPrior(centre, PRIOR_SPREAD, seed=seed), mode="blend", **common)
    raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
