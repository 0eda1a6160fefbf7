"""Build the sampler a spec names: tunepilot's LLMSampler or one of Optuna's."""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import optuna
from pydantic import ValidationError

from tunepilot.exceptions import SpecError, TunepilotError
from tunepilot.runner._spec import SamplerSpec, StudySpec, format_errors

_OPTUNA_SAMPLERS: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "gp": optuna.samplers.GPSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "qmc": optuna.samplers.QMCSampler,
}

# Optuna imports these lazily, so a missing one would otherwise fail every trial
# one by one instead of once, before the study starts.
_NEEDS = {"gp": "torch", "cmaes": "cmaes", "qmc": "scipy"}

# Set from the spec itself, or Python objects that YAML cannot express.
_NOT_OPTIONS = frozenset(
    {"self", "seed", "search_space", "independent_sampler", "constraints_func", "gamma",
     "weights", "source_trials"}
)


def build_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    """Construct the sampler ``spec.sampler`` names, seeded with ``spec.seed``.

    ``llm`` builds :class:`tunepilot.samplers.LLMSampler` over the spec's search
    space; its ``fallback`` option may name another sampler (``fallback: tpe``).

    Raises:
        SpecError: an option is unknown or invalid, or the sampler needs a package
            that is not installed.
        LLMConfigError: the LLM sampler's model cannot be used as configured.
    """
    if spec.sampler.name == "llm":
        return _llm_sampler(spec)
    return _optuna_sampler(spec.sampler, seed=spec.seed, where=spec.where, field="sampler")


def _llm_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    # Imported here so the runner loads (and classic samplers work) without it.
    from tunepilot.samplers import LLMSampler

    options = dict(spec.sampler.options)
    _check_options("llm", LLMSampler, options, where=spec.where, field="sampler")
    fallback = options.get("fallback")
    if isinstance(fallback, (str, Mapping)):
        try:
            fallback_spec = SamplerSpec.model_validate(fallback)
        except ValidationError as exc:
            message = format_errors(exc, SamplerSpec, prefix="sampler.fallback")
            raise SpecError(f"{spec.where}: {message}") from None
        if fallback_spec.name == "llm":
            raise SpecError(
                f"{spec.where}: sampler.fallback: the fallback must be a classical "
                f"sampler ({', '.join(_OPTUNA_SAMPLERS)}), not llm"
            )
        options["fallback"] = _optuna_sampler(
            fallback_spec, seed=spec.seed, where=spec.where, field="sampler.fallback"
        )
    sampler = _construct(
        LLMSampler, dict(options, search_space=spec.parameters, seed=spec.seed),
        where=spec.where, field="sampler",
    )
    # The backend is built lazily, at the first trial; building it now turns a missing
    # API key or extra into an error before the study exists rather than a failed trial.
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
