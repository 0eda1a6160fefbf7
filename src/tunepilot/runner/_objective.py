"""Find the user's objective function and wrap it as an Optuna objective.

The user's function receives the sampled configuration as a dict. Which argument
gets what is read from its signature:

* a parameter named ``config`` or ``params`` gets the dict;
* otherwise its one positional parameter gets the dict;
* a parameter named ``trial`` gets the :class:`optuna.Trial` (to report
  intermediate values for pruning, or to set user attributes).

It returns one finite number, the value to minimize or maximize; a sequence of
them for a study with several directions; or a dict from which the spec's
``metric`` picks the value(s).
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from tunepilot._redact import redact
from tunepilot.exceptions import LLMConfigError, ObjectiveError
from tunepilot.runner._reporter import reporting
from tunepilot.space import CategoricalParam, FloatParam, SearchSpace

_CONFIG_NAMES = ("config", "params")
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
#: Longest failure reason kept in a trial's ``fail_reason`` user attribute.
MAX_REASON_CHARS = 500

Caller = Callable[[dict[str, Any], optuna.Trial], Any]


def load_objective(target: str, *, base_dir: Path, where: str = "spec") -> Callable[..., Any]:
    """Import ``module:function``, looking in ``base_dir`` before ``sys.path``.

    Args:
        target: ``module:function``; the module may be dotted (``pkg.train:fit``).
        base_dir: the spec file's directory; it is put at the front of ``sys.path``
            (and left there, so the function can import its neighbours when called).
        where: how to name the spec in error messages.

    Raises:
        ObjectiveError: the module cannot be imported, or has no such function.
    """
    module_name, _, function_name = target.partition(":")
    base = str(base_dir.resolve())
    if sys.path[:1] != [base]:
        # First, even if already present further down: the spec's neighbour must win
        # over a module of the same name in the current directory.
        while base in sys.path:
            sys.path.remove(base)
        sys.path.insert(0, base)
    _forget_if_shadowed(module_name, base_dir)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        own = exc.name is None or exc.name == module_name or module_name.startswith(f"{exc.name}.")
        if not own:
            raise ObjectiveError(
                f"{where}: objective: importing {module_name!r} failed: no module named "
                f"{exc.name!r}; install it in this environment"
            ) from None
        raise ObjectiveError(
            f"{where}: objective: no module {module_name!r} in {base_dir} or on sys.path; "
            f"put {module_name.replace('.', '/')}.py next to the spec"
        ) from None
    except Exception as exc:
        raise ObjectiveError(
            f"{where}: objective: importing {module_name!r} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    function = getattr(module, function_name, None)
    if function is None:
        defined = sorted(
            n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
            and getattr(v, "__module__", None) == module.__name__
        )
        raise ObjectiveError(
            f"{where}: objective: module {module_name!r} has no {function_name!r}; "
            f"it defines: {', '.join(defined) or 'no functions'}"
        )
    if not callable(function):
        raise ObjectiveError(
            f"{where}: objective: {target} is a {type(function).__name__}, not a function"
        )
    return function  # type: ignore[no-any-return]


def _forget_if_shadowed(module_name: str, base_dir: Path) -> None:
    # A long-lived process (a notebook, a test run) may already hold another file's
    # module under this name; the spec's neighbour must win, as it would in a fresh process.
    loaded = sys.modules.get(module_name)
    candidate = base_dir.joinpath(*module_name.split("."))
    wanted = [candidate.with_suffix(".py"), candidate / "__init__.py"]
    if loaded is None or not any(path.is_file() for path in wanted):
        return
    current = getattr(loaded, "__file__", None)
    if current is None or all(Path(current).resolve() != p.resolve() for p in wanted):
        del sys.modules[module_name]
        importlib.invalidate_caches()


def make_caller(function: Callable[..., Any], *, where: str = "spec") -> Caller:
    """Decide, once, how to pass the configuration and the trial to ``function``.

    Raises:
        ObjectiveError: the signature leaves a required parameter unaccounted for.
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return lambda config, trial: function(config)
    params = signature.parameters
    config_name = next((n for n in _CONFIG_NAMES if n in params), None)
    config_positional = False
    if config_name is not None and params[config_name].kind is inspect.Parameter.POSITIONAL_ONLY:
        config_name, config_positional = None, True
    elif config_name is None:
        positional = [
            p for p in params.values()
            if p.name != "trial" and (p.kind in _POSITIONAL or p.kind is p.VAR_POSITIONAL)
        ]
        config_positional = bool(positional)
    wants_trial = "trial" in params and params["trial"].kind is not params["trial"].VAR_POSITIONAL

    def call(config: dict[str, Any], trial: optuna.Trial) -> Any:
        args: list[Any] = [config] if config_positional else []
        kwargs: dict[str, Any] = {config_name: config} if config_name else {}
        if wants_trial:
            kwargs["trial"] = trial
        return function(*args, **kwargs)

    try:
        signature.bind(*([{}] if config_positional else []),
                       **({config_name: {}} if config_name else {}),
                       **({"trial": None} if wants_trial else {}))
    except TypeError as exc:
        raise ObjectiveError(
            f"{where}: objective: cannot call {_name(function)}{signature}: {exc}; an "
            "objective takes the configuration dict (its one positional parameter, or one "
            "named config or params) and optionally a parameter named trial"
        ) from None
    if not config_positional and config_name is None and not wants_trial:
        raise ObjectiveError(
            f"{where}: objective: {_name(function)}{signature} takes no parameters; give it "
            "one, named config, to receive the sampled configuration"
        )
    return call


class Objective:
    """The Optuna objective that samples the space and calls the user's function.

    Each call samples every parameter of the space, calls the function (with
    :func:`~tunepilot.runner.get_reporter` reporting to the trial) and checks that it
    returned a finite number per direction. When it raises or returns anything else,
    the reason is kept in the trial's ``fail_reason`` user attribute and the trial fails.

    Example:
        .. code-block:: python

            objective = Objective(make_caller(train), space, metric="val_acc")
            study.optimize(objective, n_trials=20)

    Attributes:
        numbers: the numbers of the trials this objective was called for, in order.
        fatal: an error that no later trial can escape (a misconfigured model); when
            set, the study was asked to stop and the caller should raise it.
        interrupted: whether a call was stopped by Ctrl-C.
    """

    def __init__(
        self,
        call: Caller,
        space: SearchSpace,
        *,
        n_objectives: int = 1,
        metric: str | Sequence[str] | None = None,
    ) -> None:
        self._call = call
        self._space = space
        self._n_objectives = n_objectives
        self._metric = metric
        self.numbers: list[int] = []
        self.fatal: LLMConfigError | None = None
        self.interrupted = False

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        self.numbers.append(trial.number)
        try:
            with reporting(trial):
                value = self._call(suggest(trial, self._space), trial)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            self.interrupted = True
            trial.set_user_attr("fail_reason", "interrupted")
            raise
        except LLMConfigError as exc:
            # Every later trial would fail the same way: stop after this one.
            trial.set_user_attr("fail_reason", _reason(f"{type(exc).__name__}: {exc}"))
            self.fatal = exc
            trial.study.stop()
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", _reason(f"{type(exc).__name__}: {exc}"))
            raise
        try:
            return objective_values(value, n_objectives=self._n_objectives, metric=self._metric)
        except ObjectiveError as exc:
            trial.set_user_attr("fail_reason", _reason(str(exc)))
            raise


def make_objective(
    function: Callable[..., Any],
    space: SearchSpace,
    *,
    where: str = "spec",
    n_objectives: int = 1,
    metric: str | Sequence[str] | None = None,
) -> Objective:
    """Wrap ``function`` as an Optuna objective over ``space``.

    Args:
        function: the user's objective.
        space: the parameters to sample, in order.
        where: how to name the spec in error messages.
        n_objectives: how many values each call must give (one per direction).
        metric: the key, or one key per direction, to read from a returned dict.

    Raises:
        ObjectiveError: the signature leaves a required parameter unaccounted for.
    """
    return Objective(
        make_caller(function, where=where), space, n_objectives=n_objectives, metric=metric
    )


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Sample every parameter of ``space`` through ``trial``'s public ``suggest_*`` API."""
    config: dict[str, Any] = {}
    for name, param in space.items():
        if isinstance(param, FloatParam):
            config[name] = trial.suggest_float(
                name, param.low, param.high, step=param.step, log=param.log
            )
        elif isinstance(param, CategoricalParam):
            config[name] = trial.suggest_categorical(name, param.choices)
        else:
            config[name] = trial.suggest_int(
                name, param.low, param.high, step=param.step, log=param.log
            )
    return config


def objective_values(
    value: Any, *, n_objectives: int = 1, metric: str | Sequence[str] | None = None
) -> float | list[float]:
    """Check what an objective gave and turn it into Optuna's value(s).

    Args:
        value: a number; a sequence of numbers, one per direction; or a dict, with
            ``metric`` naming the key(s) to read (``value`` when no metric is given).
        n_objectives: how many directions the study has.
        metric: the key (or keys, one per direction) to read from a dict.

    Returns:
        One float for a single direction, else a list of floats.

    Raises:
        ObjectiveError: the value is missing, not finite, or of the wrong shape; the
            message says what was returned and what is expected.
    """
    if isinstance(value, Mapping):
        if metric is None and "value" in value:
            metric = "value"  # what the reporter's JSON lines carry
        if metric is None:
            keys = sorted(map(str, value))[:5]
            raise ObjectiveError(
                f"the objective returned a dict with keys {keys}; it must return one finite "
                "number, or set metric: in the spec to the key to optimize"
            )
        names = [metric] if isinstance(metric, str) else list(metric)
        missing = [n for n in names if n not in value]
        if missing:
            raise ObjectiveError(
                f"the objective's result has no {missing[0]!r}; it has "
                f"{sorted(map(str, value))[:8]}; fix metric: in the spec"
            )
        value = value[names[0]] if isinstance(metric, str) else [value[n] for n in names]
    if n_objectives > 1:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ObjectiveError(
                f"the objective returned {_short(value)}; the study has {n_objectives} "
                f"directions, so it must return {n_objectives} numbers"
            )
        if len(value) != n_objectives:
            raise ObjectiveError(
                f"the objective returned {len(value)} values for {n_objectives} directions"
            )
        return [_number(v) for v in value]
    return _number(value)


def _number(value: Any) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number):
            return number
        problem = f"returned {number}"
    else:
        problem = f"returned {_short(value)} ({type(value).__name__})"
    raise ObjectiveError(f"the objective {problem}; it must return one finite number")


def _reason(text: str) -> str:
    # Stored, shown in the dashboard and sent to the model in later prompts.
    text = redact(text)
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__qualname__", None) or repr(function)
