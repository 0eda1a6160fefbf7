"""The Optuna sampler behind each sweep method, with its options checked up front."""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import optuna

from tunepilot.exceptions import LLMConfigError, SpecError, TunepilotError
from tunepilot.server._settings import Settings
from tunepilot.space import SweepConfig

_OPTUNA: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "gp": optuna.samplers.GPSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "qmc": optuna.samplers.QMCSampler,
}
#: Packages an Optuna sampler imports only when it first samples (GP after its startup
#: trials): checked when the sweep is made, so that its 11th suggest does not fail.
_NEEDS: dict[str, tuple[str, ...]] = {"gp": ("torch", "scipy"), "cmaes": ("cmaes",),
                                      "qmc": ("scipy",)}
#: Arguments set by the server itself, or Python objects JSON cannot express.
_NOT_OPTIONS = frozenset({"self", "seed", "search_space", "independent_sampler",
                          "constraints_func", "gamma", "weights", "source_trials", "fallback",
                          "prior", "prior_from"})
#: What a sweep may set of an llm or blend sampler: how it searches, nothing that
#: reaches past the server (a model other than the operator's, an endpoint, a folder,
#: retries), each with the most it may ask for, where more would cost the operator.
CLIENT_LLM_OPTIONS: dict[str, float | None] = {
    "mode": None, "model": None, "description": None, "temperature": None, "base": None,
    "beta": None, "prior_epsilon": None, "refresh_every": None, "n_startup_trials": None,
    "safeguard": None, "batch_size": 16, "context_trials": 20, "max_prompt_tokens": 4000,
}
#: Why a sweep may not set the others, named in the refusal.
_OPERATOR_ONLY = {
    "api_base": "the server's operator sets the endpoint (TUNEPILOT_LLM_API_BASE)",
    "cache_dir": "the server decides where it writes",
    "timeout": "the server's operator sets it (TUNEPILOT_LLM_TIMEOUT)",
    "max_retries": "the server's operator sets it",
}
#: Where a config writes what these sampler arguments take instead.
_WRITTEN_ELSEWHERE = {
    "prior": "write a parameter's prior on the parameter: parameters.NAME.prior",
    "prior_from": "write prior_from at the top level of the config, with earlier sweeps' ids",
}


def build_sweep_sampler(
    config: SweepConfig, *, prior_studies: Sequence[str] = (), settings: Settings | None = None
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for a sweep's method and its ``sampler`` options.

    ``random`` is Optuna's RandomSampler; ``bayes`` is TPE unless the options name
    another Optuna sampler (``sampler: {name: gp}``); ``llm`` is
    :class:`tunepilot.LLMSampler` over the sweep's internal space and ``blend`` the
    same in blend mode, with the parameters' priors. ``seed`` may be given among the
    options.

    Args:
        config: the sweep config.
        prior_studies: the Optuna studies of the sweeps ``config.prior_from`` names, in
            the server's storage; their best trials become a prior.
        settings: the server's settings: which models an llm or blend sweep may name
            (``llm_model``, ``llm_models``), and the endpoint and timeout it gets. A sweep
            sets only :data:`CLIENT_LLM_OPTIONS`: the operator, not the client, decides
            models, endpoints, keys and paths.

    Raises:
        SpecError: an option is unknown or invalid, or the sampler cannot run here (a
            package is missing; an llm or blend sweep's model has no key or extra); the
            message names it and what to install or set.
    """
    options: dict[str, Any] = dict(config.sampler)
    seed = options.pop("seed", None)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SpecError(f"sampler.seed must be an integer, got {seed!r}")
    if config.method in ("llm", "blend"):
        from tunepilot.samplers import LLMSampler

        options.setdefault("mode", config.method)  # LLMSampler's modes are llm and blend
        _check("llm", LLMSampler, options)
        options.update(_operator_options(options, settings or Settings()))
        beliefs = config.beliefs
        if beliefs:
            options["prior"] = beliefs
        if prior_studies:
            from tunepilot.samplers import StudyRef

            # No storage: the sweep's own, where every sweep of this server keeps its study.
            options["prior_from"] = [StudyRef(name) for name in prior_studies]
        sampler = _construct(LLMSampler, dict(
            options, search_space=config.space.search_space(), seed=seed
        ))
        assert isinstance(sampler, LLMSampler)
        if sampler.model is not None:
            try:
                sampler.backend  # noqa: B018 - made now, so a missing key or extra is said now
            except LLMConfigError as exc:
                raise SpecError(f"sampler.model: {exc}") from None
        return sampler
    name = options.pop("name", "tpe") if config.method == "bayes" else "random"
    if name not in _OPTUNA:
        raise SpecError(f"sampler.name must be one of {', '.join(_OPTUNA)}, got {name!r}")
    missing = [p for p in _NEEDS.get(name, ()) if importlib.util.find_spec(p) is None]
    if missing:
        raise SpecError(
            f"sampler.name: the {name} sampler needs {' and '.join(missing)}, not installed "
            f"on the server: pip install {' '.join(missing)} (or use another sampler)")
    _check(name, _OPTUNA[name], options)
    return _construct(_OPTUNA[name], dict(options, seed=seed))


def _operator_options(options: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Refuse what a sweep may not set of an LLM sampler; what the operator sets instead."""
    for key, value in options.items():
        if key in _OPERATOR_ONLY:
            raise SpecError(f"sampler.{key}: a sweep cannot set it; {_OPERATOR_ONLY[key]}")
        if key not in CLIENT_LLM_OPTIONS:
            continue
        most = CLIENT_LLM_OPTIONS[key]
        if most is not None and isinstance(value, (int, float)) and value > most:
            raise SpecError(f"sampler.{key}: at most {most:g} on this server, got {value!r}")
    model = options.get("model", settings.llm_model)
    allowed = settings.allowed_llm_models
    if model is not None and model not in allowed:  # None: a blend of priors, no model
        raise SpecError(
            f"sampler.model: {model!r} is not one of this server's models "
            f"({', '.join(map(repr, allowed))}); its operator lists them in TUNEPILOT_LLM_MODELS"
        )
    return {"model": model, "api_base": settings.llm_api_base, "timeout": settings.llm_timeout}


def _check(name: str, factory: Callable[..., Any], options: dict[str, Any]) -> None:
    allowed = sorted(
        p.name for p in inspect.signature(factory).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in _NOT_OPTIONS
    )
    for key in options:
        if key in _WRITTEN_ELSEWHERE:
            raise SpecError(f"sampler.{key}: not a sampler option here; {_WRITTEN_ELSEWHERE[key]}")
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SpecError(
                f"sampler.{key}: unknown option for the {name} sampler; {hint}"
                f"allowed: {', '.join(allowed) or 'none'}"
            )


def _construct(
    factory: Callable[..., optuna.samplers.BaseSampler], kwargs: dict[str, Any]
) -> optuna.samplers.BaseSampler:
    try:
        return factory(**kwargs)
    except TunepilotError:
        raise
    except (TypeError, ValueError) as exc:
        raise SpecError(f"sampler: invalid option value: {exc}") from None
