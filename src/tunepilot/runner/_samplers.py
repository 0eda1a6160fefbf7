"""Build the sampler a spec names: tunepilot's LLMSampler or one of Optuna's."""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from pydantic import ValidationError

from tunepilot.exceptions import SpecError, TunepilotError
from tunepilot.runner._priors import PRIOR_SAMPLERS, study_refs
from tunepilot.runner._spec import SamplerSpec, StudySpec, format_errors
from tunepilot.space import Belief, CategoricalParam, FloatParam, SearchSpace

if TYPE_CHECKING:
    from tunepilot.samplers import StudyRef

#: Most values a grid may hold, in all; past it a grid is not worth walking.
MAX_GRID_POINTS = 100_000

_OPTUNA_SAMPLERS: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "gp": optuna.samplers.GPSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "qmc": optuna.samplers.QMCSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
}

# Optuna imports these lazily, so a missing one would otherwise fail every trial
# one by one instead of once, before the study starts.
_NEEDS = {"gp": "torch", "cmaes": "cmaes", "qmc": "scipy"}

# Set from the spec itself, or Python objects that YAML cannot express.
_NOT_OPTIONS = frozenset(
    {"self", "seed", "search_space", "mode", "independent_sampler", "constraints_func", "gamma",
     "weights", "source_trials", "prior", "prior_from"}
)
#: Where a spec writes what these sampler arguments take instead.
_WRITTEN_ELSEWHERE = {
    "prior": "write a parameter's prior on the parameter: parameters.NAME.prior",
    "prior_from": "write prior_from at the top level of the study",
}


def build_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    """Construct the sampler ``spec.sampler`` names, seeded with ``spec.seed``.

    ``llm`` and ``blend`` build :class:`tunepilot.samplers.LLMSampler` over the spec's
    search space, in its ``llm`` or ``blend`` mode, the blend with the spec's priors
    (``prior:`` on parameters, ``prior_from:`` earlier studies, in the spec's storage
    unless one is named); the ``fallback`` option may name another sampler (``fallback: tpe``).
    ``grid`` walks every combination of the space's discrete values.

    Raises:
        SpecError: an option is unknown or invalid, or the sampler needs a package
            that is not installed.
        LLMConfigError: the LLM sampler's model cannot be used as configured.
    """
    return make_sampler(spec.sampler, space=spec.parameters, seed=spec.seed, where=spec.where,
                        prior=spec.priors, prior_from=study_refs(spec) if spec.prior_from else ())


def make_sampler(
    sampler: SamplerSpec,
    *,
    space: SearchSpace,
    seed: int | None,
    where: str = "spec",
    prior: Mapping[str, Belief] | None = None,
    prior_from: Sequence[StudyRef] = (),
) -> optuna.samplers.BaseSampler:
    """Construct a sampler from its spec, for ``space``, outside a study spec.

    Args:
        sampler: the name and options.
        space: the parameters the study samples.
        seed: the sampler's seed.
        where: how to name the spec in error messages.
        prior: the user's beliefs, by parameter (``blend`` only).
        prior_from: earlier studies whose best trials become a prior (likewise).

    Raises:
        SpecError: as for :func:`build_sampler`.
        LLMConfigError: the LLM sampler's model cannot be used as configured.

    Example:
        .. code-block:: python

            from tunepilot.runner import SamplerSpec, make_sampler
            from tunepilot.space import space_from_overrides

            space = space_from_overrides(["opt=choice(adam, sgd)", "layers=range(1,4)"])
            grid = make_sampler(SamplerSpec(name="grid"), space=space, seed=0)
    """
    if (prior or prior_from) and sampler.name not in PRIOR_SAMPLERS:
        raise SpecError(f"{where}: sampler: the {sampler.name} sampler cannot use a prior; use "
                        "sampler: blend (with model: null for no language model)")
    if sampler.name in ("llm", "blend"):
        priors: dict[str, Any] = {}
        if prior:
            priors["prior"] = dict(prior)
        if prior_from:
            priors["prior_from"] = list(prior_from)
        return _llm_sampler(sampler, space=space, seed=seed, where=where, priors=priors)
    if sampler.name == "grid":
        return _grid_sampler(sampler, space=space, seed=seed, where=where)
    return _optuna_sampler(sampler, seed=seed, where=where, field="sampler")


def _grid_sampler(
    sampler: SamplerSpec, *, space: SearchSpace, seed: int | None, where: str
) -> optuna.samplers.BaseSampler:
    grid: dict[str, list[Any]] = {}
    points = 1
    for name, param in space.items():
        if isinstance(param, CategoricalParam):
            grid[name] = list(param.choices)
        elif isinstance(param, FloatParam):
            if param.step is None:
                raise SpecError(
                    f"{where}: sampler: the grid sampler needs discrete values, but "
                    f"parameters.{name} is a continuous float; give it a step, or use "
                    "choice() or a categorical"
                )
            count = round((param.high - param.low) / param.step) + 1
            grid[name] = [min(param.low + i * param.step, param.high) for i in range(count)]
        else:
            grid[name] = list(range(param.low, param.high + 1, param.step))
        points *= len(grid[name])
        if points > MAX_GRID_POINTS:
            raise SpecError(
                f"{where}: sampler: the grid has more than {MAX_GRID_POINTS} points; "
                "narrow the parameters or choose another sampler"
            )
    _check_options("grid", optuna.samplers.GridSampler, sampler.options, where=where,
                   field="sampler")
    return _construct(optuna.samplers.GridSampler, dict(sampler.options, search_space=grid,
                                                        seed=seed),
                      where=where, field="sampler")


def _llm_sampler(
    spec: SamplerSpec, *, space: SearchSpace, seed: int | None, where: str,
    priors: dict[str, Any],
) -> optuna.samplers.BaseSampler:
    # Imported here so the runner loads (and classic samplers work) without it.
    from tunepilot.samplers import LLMSampler

    options = dict(spec.options)
    _check_options(spec.name, LLMSampler, options, where=where, field="sampler")
    fallback = options.get("fallback")
    if isinstance(fallback, (str, Mapping)):
        try:
            fallback_spec = SamplerSpec.model_validate(fallback)
        except ValidationError as exc:
            message = format_errors(exc, SamplerSpec, prefix="sampler.fallback")
            raise SpecError(f"{where}: {message}") from None
        if fallback_spec.name not in _OPTUNA_SAMPLERS:
            raise SpecError(
                f"{where}: sampler.fallback: the fallback must be a classical "
                f"sampler ({', '.join(_OPTUNA_SAMPLERS)}), not {fallback_spec.name}"
            )
        options["fallback"] = _optuna_sampler(
            fallback_spec, seed=seed, where=where, field="sampler.fallback"
        )
    sampler = _construct(
        LLMSampler, dict(options, search_space=space, seed=seed, mode=spec.name, **priors),
        where=where, field="sampler",
    )
    # The backend is built lazily, at the first trial; building it now turns a missing
    # API key or extra into an error before the study exists rather than a failed trial.
    # Without a model (model: null) the blend has priors only, and no backend.
    if getattr(sampler, "model", None) is not None:
        getattr(sampler, "backend", None)
    return sampler


def _optuna_sampler(
    sampler: SamplerSpec, *, seed: int | None, where: str, field: str
) -> optuna.samplers.BaseSampler:
    module = _NEEDS.get(sampler.name)
    if module is not None and importlib.util.find_spec(module) is None:
        raise SpecError(
            f"{where}: {field}: the {sampler.name} sampler needs the {module!r} package; "
            f"install it with 'pip install {module}' or choose another sampler"
        )
    factory = _OPTUNA_SAMPLERS[sampler.name]
    _check_options(sampler.name, factory, sampler.options, where=where, field=field)
    return _construct(factory, dict(sampler.options, seed=seed), where=where, field=field)


def _check_options(
    name: str, factory: Callable[..., Any], options: Mapping[str, Any], *, where: str, field: str
) -> None:
    allowed = sorted(
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in _NOT_OPTIONS
    )
    for key in options:
        if key == "seed":
            raise SpecError(f"{where}: {field}.seed: set 'seed' at the top level of the spec")
        if key in _WRITTEN_ELSEWHERE and name in ("llm", "blend"):
            raise SpecError(f"{where}: {field}.{key}: not a sampler option; "
                            f"{_WRITTEN_ELSEWHERE[key]}")
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            advice = f"did you mean {close[0]!r}? " if close else ""
            shown = ", ".join(allowed) if allowed else "none"
            raise SpecError(
                f"{where}: {field}.{key}: unknown option for the {name} sampler; "
                f"{advice}allowed: {shown}"
            )


def _construct(
    factory: Callable[..., optuna.samplers.BaseSampler],
    kwargs: dict[str, Any],
    *,
    where: str,
    field: str,
) -> optuna.samplers.BaseSampler:
    try:
        return factory(**kwargs)
    except TunepilotError:
        raise
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: {field}: invalid option value: {exc}") from None
