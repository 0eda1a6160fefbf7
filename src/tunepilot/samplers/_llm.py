"""LLMSampler: an Optuna sampler that asks a language model for complete configurations."""

from __future__ import annotations

import logging
import math
import os
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from tunepilot.exceptions import (
    LLMConfigError,
    LLMError,
    LLMRateLimitError,
    LLMRequestError,
    LLMTimeoutError,
)
from tunepilot.llm import Backend, Completion, Usage, prompt_hash
from tunepilot.llm._factory import make_backend
from tunepilot.samplers._blend import Blender
from tunepilot.samplers._context import ContextOptions, build_messages
from tunepilot.samplers._response import Proposal, parse_answer, response_schema
from tunepilot.samplers._stats import LLMStats
from tunepilot.space import CategoricalParam, SearchSpace
from tunepilot.space._params import CLAMPED

_logger = logging.getLogger("tunepilot.samplers")

DEDUPLICATED = "deduplicated"
_REPAIR_PROMPT = (
    "Your answer could not be used: {errors}. Answer again with JSON only, exactly in the "
    "requested shape, with every parameter set to a value inside its range."
)
_FAILURES_BEFORE_BACKOFF = 3
_MAX_SKIPPED_TRIALS = 32


def _reason_key(exc: LLMError) -> str:
    if isinstance(exc, LLMTimeoutError):
        return "timeout"
    if isinstance(exc, LLMRateLimitError):
        return "rate_limited"
    if isinstance(exc, LLMRequestError):
        return "request_rejected"
    return "llm_error"


def _config_key(values: Mapping[str, Any], names: list[str]) -> tuple[Any, ...]:
    return tuple(
        float(f"{values[n]:.5g}") if isinstance(values.get(n), float) else values.get(n)
        for n in names
    )


@dataclass(frozen=True)
class _Call:
    """One LLM request with its repair round trip, and what came of it."""

    proposals: list[Proposal]
    rationale: str
    errors: list[str]
    usage: Usage
    latency_s: float
    prompt_hash: str
    cached: bool


class LLMSampler(BaseSampler):
    """An Optuna sampler guided by a language model's proposals.

    ``mode="blend"`` (the default) turns the model's proposals into a prior π(x) that
    weights TPE's acquisition by π(x)^(β/n), with β calibrated by how well trials near
    the prior have done (the math is in :mod:`tunepilot.samplers._blend`): good advice
    speeds the search up, bad advice fades out. ``mode="llm"`` runs the model's
    proposals themselves, as described below.

    Before each call the sampler rebuilds a context from the study (the description,
    the parameters with type, bounds, scale and step, the direction, the best and the
    most recent trials, failed and pruned trials with their reasons, configurations
    still running) within a flat token budget. The model answers JSON constrained by
    a schema built from the search space; the answer is untrusted data, never
    executed. Its shape is validated; invalid output gets one repair round trip;
    remaining out-of-range values are clamped and off-step values snapped, and every
    repair is recorded. A configuration that repeats a trial is moved to a nearby
    untried point (recorded as ``deduplicated``). When the model fails, times out, or
    gives nothing usable, the ``fallback`` sampler chooses instead; every fallback is
    counted in :attr:`stats`, logged as a warning and recorded on the trial.

    With ``batch_size=k`` one call proposes ``k`` configurations: the calling trial
    takes the first, the rest are enqueued in the study, so parallel workers (threads
    with ``n_jobs`` or processes sharing a storage) each take a distinct one.

    In blend mode the model is asked for ``batch_size`` proposals at the first trial
    and again every ``refresh_every`` completed trials (seeing the history); each
    trial records ``llm.source == "blend"``, ``llm.blend_part`` (``prior``, ``tpe``
    or ``random``: which part chose it) and ``llm.beta``.

    Every trial it drives gets the user attributes ``llm.source`` (``"llm"``,
    ``"blend"`` or ``"fallback"``), ``llm.rationale``, ``llm.prompt_tokens``,
    ``llm.completion_tokens``, ``llm.cost_usd`` (a call's usage split over its
    configurations), ``llm.latency_s``, ``llm.repairs`` (names of repaired
    parameters), ``llm.repair_details``, ``llm.prompt_hash``, ``llm.model``,
    ``llm.call_trial`` (the trial whose call proposed it), and on fallbacks
    ``llm.fallback_reason``.

    Args:
        model: ``"local"`` (the embedded SmolLM2 model, no key or network needed),
            ``"local:/path/to/model.gguf"``, a LiteLLM model string such as
            ``"openai/gpt-4.1-mini"``, or a :class:`~tunepilot.llm.Backend`.
        description: what is being tuned, in the user's words; the model sees it.
        search_space: the space to propose in. Without it the space is inferred from
            the study's trials, and the first trial of a define-by-run objective is
            chosen by the fallback sampler.
        mode: ``"blend"`` or ``"llm"``.
        batch_size: configurations per call; 1 in llm mode, 4 in blend mode by default.
        fallback: sampler used when the LLM fails (llm mode); ``TPESampler(seed=seed)`` by
            default. Blend mode blends with its own TPE, which is also its fallback.
        seed: makes the call seeds, the deduplication moves and the default fallback
            reproducible; with ``cache_dir``, a run can be replayed exactly.
        temperature: sampling temperature of the model.
        timeout: seconds one answer may take.
        max_retries: retries after a timeout, HTTP 429 or 5xx (model strings only).
        cache_dir: folder of an on-disk response cache keyed by prompt hash.
        api_base: base URL of an OpenAI-compatible server.
        context_trials: how many best and how many recent trials the prompt shows.
        max_prompt_tokens: budget of the prompt (estimated at 4 characters a token).
        beta: β₀, the prior's base weight in blend mode.
        prior_epsilon: mass of the uniform component of the prior.
        refresh_every: completed trials between calls in blend mode.
        n_startup_trials: trials before TPE's model takes over in blend mode.

    Raises:
        ValueError: an argument is out of range.

    Example:
        .. code-block:: python

            import optuna
            from tunepilot import LLMSampler

            def objective(trial):
                x = trial.suggest_float("x", -10, 10)
                return (x - 2) ** 2

            sampler = LLMSampler(
                "local",
                description="Find x that minimises a parabola.",
                search_space={"x": optuna.distributions.FloatDistribution(-10, 10)},
                seed=0,
            )
            study = optuna.create_study(sampler=sampler)
            study.optimize(objective, n_trials=10)
            print(study.best_params, sampler.stats.fallback_trials)
    """

    def __init__(
        self,
        model: str | Backend = "local",
        *,
        description: str | None = None,
        search_space: SearchSpace | Mapping[str, BaseDistribution] | None = None,
        mode: str = "blend",
        batch_size: int | None = None,
        fallback: BaseSampler | None = None,
        seed: int | None = None,
        temperature: float = 0.8,
        timeout: float = 60.0,
        max_retries: int = 2,
        cache_dir: str | os.PathLike[str] | None = None,
        api_base: str | None = None,
        context_trials: int = 5,
        max_prompt_tokens: int = 1500,
        beta: float = 10.0,
        prior_epsilon: float = 0.1,
        refresh_every: int = 10,
        n_startup_trials: int = 10,
    ) -> None:
        if mode not in ("blend", "llm"):
            raise ValueError(f"mode must be 'blend' or 'llm', got {mode!r}")
        if batch_size is None:
            batch_size = 4 if mode == "blend" else 1
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= temperature <= 2:
            raise ValueError(f"temperature must be in [0, 2], got {temperature}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if context_trials < 0:
            raise ValueError(f"context_trials must be >= 0, got {context_trials}")
        if max_prompt_tokens < 200:
            raise ValueError(f"max_prompt_tokens must be >= 200, got {max_prompt_tokens}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if refresh_every < 1:
            raise ValueError(f"refresh_every must be >= 1, got {refresh_every}")
        if mode == "blend" and fallback is not None:
            raise ValueError(
                "blend mode blends with its own TPE, which is also its fallback; "
                "use mode='llm' to choose a fallback sampler"
            )
        if mode == "llm" and model == "local":
            _logger.warning(
                "mode='llm' runs the embedded 135M model's configurations as they are; on "
                "tunepilot's synthetic benchmark that searched worse than random search "
                "(benchmarks/README.md). Use mode='blend' (the default) with this model, "
                "or mode='llm' with a capable one."
            )
        self.model = model
        self.description = description
        self.search_space = (
            search_space if search_space is None or isinstance(search_space, SearchSpace)
            else SearchSpace.from_optuna(search_space)
        )
        self.mode = mode
        self.batch_size = batch_size
        self.beta = beta
        self.prior_epsilon = prior_epsilon
        self.refresh_every = refresh_every
        self.n_startup_trials = n_startup_trials
        self._blender = (
            Blender(beta=beta, epsilon=prior_epsilon, n_startup_trials=n_startup_trials, seed=seed)
            if mode == "blend" else None
        )
        self.fallback: BaseSampler = (
            self._blender.tpe if self._blender is not None
            else fallback if fallback is not None else TPESampler(seed=seed)
        )
        self.seed = seed
        self.temperature = temperature
        self.timeout = timeout
        self.max_retries = max_retries
        self.cache_dir = cache_dir
        self.api_base = api_base
        self.context_trials = context_trials
        self.max_prompt_tokens = max_prompt_tokens
        self.stats = LLMStats()
        self._rng = random.Random(seed)
        self._backend: Backend | None = None
        self._lock = threading.Lock()
        self._consecutive_failures = 0
        self._trials_to_skip = 0

    @property
    def backend(self) -> Backend:
        """The backend, built on first use (loading a local model is not free)."""
        with self._lock:
            if self._backend is None:
                self._backend = make_backend(
                    self.model, timeout=self.timeout, max_retries=self.max_retries,
                    cache_dir=self.cache_dir, api_base=self.api_base, seed=self.seed,
                )
            return self._backend

    def reseed_rng(self) -> None:
        self._rng.seed()
        self.fallback.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        # An enqueued trial never reaches sample_relative: its parameters are fixed.
        if "fixed_params" in trial.system_attrs and trial.user_attrs.get("llm.source") == "llm":
            self.stats.count("llm_trials")
        self.fallback.before_trial(study, trial)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self.fallback.after_trial(study, trial, state, values)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if self.search_space is not None:
            return self.search_space.to_optuna()
        # Every parameter any trial has used, with its latest distribution: a failed or
        # running trial tells the space as well as a complete one.
        space: dict[str, BaseDistribution] = {}
        for past in study.get_trials(deepcopy=False):
            space.update(past.distributions)
        return space

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if "fixed_params" in trial.system_attrs:
            # Enqueued by an earlier call of ours (a batch) or by the user.
            return {}
        if not search_space:
            return self._use_fallback(
                study, trial, search_space, "space_unknown",
                "the search space is not known before the first trial has run; pass "
                "search_space= to let the LLM choose the first trial too",
            )
        with self._lock:
            skipping = self._trials_to_skip > 0
            if skipping:
                self._trials_to_skip -= 1
        if skipping:
            return self._use_fallback(
                study, trial, search_space, "backing_off",
                f"the LLM failed {self._consecutive_failures} times in a row; trying it again later",
            )
        if self._blender is not None:
            # Like TPE, leave single-valued parameters to Optuna, which sets them itself.
            varying = {n: d for n, d in search_space.items() if not d.single()}
            if not varying:
                return {}
            return self._sample_blend(
                study, trial, varying, SearchSpace.from_optuna(varying), self._blender
            )
        space = SearchSpace.from_optuna(search_space)
        try:
            call = self._call(study, trial, space)
        except LLMConfigError:
            raise
        except LLMError as exc:
            self._record_failure()
            return self._use_fallback(study, trial, search_space, _reason_key(exc), str(exc))
        if not call.proposals:
            return self._use_fallback(
                study, trial, search_space, "invalid_output",
                "no usable configuration: " + "; ".join(call.errors[:3]), call,
            )
        with self._lock:
            self._consecutive_failures = 0
        share = len(call.proposals)
        for proposal in call.proposals[1:]:
            study.enqueue_trial(proposal.values, user_attrs=self._attrs(trial, call, proposal, share))
        first = call.proposals[0]
        self._set_attrs(study, trial, self._attrs(trial, call, first, share))
        self.stats.count("llm_trials")
        return dict(first.values)

    def _sample_blend(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        space: SearchSpace,
        blender: Blender,
    ) -> dict[str, Any]:
        n_complete = len(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        call: _Call | None = None
        error: LLMError | None = None
        with self._lock:
            due = blender.prior is None or n_complete >= blender.refreshed_at + self.refresh_every
            if due:  # one refresh per step, however many threads are sampling
                blender.refreshed_at = n_complete
        if due:
            try:
                call = self._call(study, trial, space)
            except LLMConfigError:
                raise
            except LLMError as exc:
                self._record_failure()
                error = exc
            else:
                if call.proposals:
                    # A clamped value is no advice about where in its range to look.
                    unknown = [{n for n, kinds in p.repairs.items() if CLAMPED in kinds} for p in call.proposals]
                    blender.add(space, [p.values for p in call.proposals], n_complete, unknown)
        if blender.prior is None:
            if error is not None:
                return self._use_fallback(study, trial, search_space, _reason_key(error), str(error))
            errors = "; ".join(call.errors[:3]) if call is not None else "no proposals yet"
            return self._use_fallback(
                study, trial, search_space, "invalid_output", f"no usable configuration: {errors}",
                call,
            )
        if error is not None:
            _logger.warning(
                "trial %d: refreshing the LLM prior failed (%s); blending with the previous one",
                trial.number, error,
            )
        params, part, beta = blender.sample(study, trial, search_space)
        attrs: dict[str, Any] = {
            "llm.source": "blend", "llm.blend_part": part, "llm.beta": round(beta, 4),
        }
        if call is not None:
            attrs.update(self._usage_attrs(call))
            attrs.update({"llm.rationale": call.rationale, "llm.proposals": len(call.proposals)})
        self._set_attrs(study, trial, attrs)
        self.stats.count("blend_trials")
        return params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        # Parameters outside the relative space: the first define-by-run trial, or a
        # conditional parameter the space does not hold.
        return self.fallback.sample_independent(study, trial, param_name, param_distribution)

    def _call(self, study: Study, trial: FrozenTrial, space: SearchSpace) -> _Call:
        others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number]
        options = ContextOptions(
            self.description, self.batch_size, self.context_trials, self.max_prompt_tokens
        )
        messages = build_messages(study, others, space, options, lambda text: len(text) // 4)
        schema = response_schema(space, self.batch_size)
        seed = (
            (self.seed * 1_000_003 + trial.number) % 2**31
            if self.seed is not None else self._rng.randrange(2**31)
        )
        max_tokens = 128 + self.batch_size * len(space) * 24
        backend = self.backend
        digest = prompt_hash(messages, schema)[:16]

        def ask(chat: list[dict[str, str]]) -> Completion:
            self.stats.count("calls")
            completion = backend.complete(
                chat, schema=schema, temperature=self.temperature, seed=seed, max_tokens=max_tokens
            )
            self.stats.add_usage(completion.usage)
            return completion

        completion = ask(messages)
        usage, latency, cached = completion.usage, completion.latency_s, completion.cached
        answer = parse_answer(completion, space)
        proposals, errors, rationale = list(answer.proposals), list(answer.errors), answer.rationale
        if errors:
            self.stats.count("invalid_responses")
        if errors and len(proposals) < self.batch_size:
            self.stats.count("repair_round_trips")
            followup = messages + [
                {"role": "assistant", "content": completion.text[:2000]},
                {"role": "user", "content": _REPAIR_PROMPT.format(errors="; ".join(errors[:5]))},
            ]
            try:
                second = ask(followup)
            except LLMConfigError:
                raise
            except LLMError as exc:
                if not proposals:
                    raise
                errors.append(f"repair request failed: {exc}")
            else:
                usage, latency = usage + second.usage, latency + second.latency_s
                repaired = parse_answer(second, space)
                if repaired.errors:
                    self.stats.count("invalid_responses")
                proposals += repaired.proposals
                rationale = rationale or repaired.rationale
                errors = repaired.errors if repaired.proposals else errors + repaired.errors
        proposals = self._deduplicate(proposals, others, space)[: self.batch_size]
        self.stats.count("proposals", len(proposals))
        self.stats.count("repaired_params", sum(len(p.repairs) for p in proposals))
        return _Call(proposals, rationale, errors, usage, latency, digest, cached)

    def _deduplicate(
        self, proposals: list[Proposal], trials: list[FrozenTrial], space: SearchSpace
    ) -> list[Proposal]:
        names = list(space)
        seen = set()
        for past in trials:
            params = past.params or past.system_attrs.get("fixed_params") or {}
            if isinstance(params, dict) and params:
                seen.add(_config_key(params, names))
        unique = []
        for proposal in proposals:
            key = _config_key(proposal.values, names)
            if key in seen:
                moved = self._move_away(proposal, space, seen, names)
                if moved is None:
                    continue
                proposal, key = moved, _config_key(moved.values, names)
            seen.add(key)
            unique.append(proposal)
        return unique

    def _move_away(
        self, proposal: Proposal, space: SearchSpace, seen: set[tuple[Any, ...]], names: list[str]
    ) -> Proposal | None:
        """A nearby untried configuration: a small Gaussian step in the unit cube."""
        for attempt in range(20):
            sigma = 0.03 * (1 + attempt / 4)
            values = dict(proposal.values)
            for name, param in space.items():
                if isinstance(param, CategoricalParam):
                    if len(param.choices) > 1 and self._rng.random() < 0.2 + attempt / 40:
                        values[name] = self._rng.choice(param.choices)
                else:
                    u = param.to_unit(values[name]) + self._rng.gauss(0.0, sigma)
                    values[name] = param.from_unit(u)
            if _config_key(values, names) not in seen:
                repairs = {n: list(k) for n, k in proposal.repairs.items()}
                for name in names:
                    if values[name] != proposal.values[name]:
                        repairs.setdefault(name, []).append(DEDUPLICATED)
                return Proposal(values, repairs)
        return None

    def _attrs(
        self, trial: FrozenTrial, call: _Call, proposal: Proposal, share: int
    ) -> dict[str, Any]:
        return {
            "llm.source": "llm",
            "llm.rationale": call.rationale,
            **self._usage_attrs(call, share),
            "llm.repairs": sorted(proposal.repairs),
            "llm.repair_details": "; ".join(
                f"{n}: {', '.join(k)}" for n, k in sorted(proposal.repairs.items())
            ),
            "llm.call_trial": trial.number,
            "llm.cached": call.cached,
        }

    def _usage_attrs(self, call: _Call, share: int = 1) -> dict[str, Any]:
        """What one LLM call cost, split evenly over the ``share`` trials it served."""
        return {
            "llm.prompt_tokens": round(call.usage.prompt_tokens / share),
            "llm.completion_tokens": round(call.usage.completion_tokens / share),
            "llm.cost_usd": call.usage.cost_usd / share,
            "llm.latency_s": round(call.latency_s, 4),
            "llm.prompt_hash": call.prompt_hash,
            "llm.model": getattr(self.backend, "name", "custom"),
        }

    def _set_attrs(self, study: Study, trial: FrozenTrial, attrs: dict[str, Any]) -> None:
        for key, value in attrs.items():
            study._storage.set_trial_user_attr(trial._trial_id, key, value)

    def _record_failure(self) -> None:
        with self._lock:
            self._consecutive_failures += 1
            excess = self._consecutive_failures - _FAILURES_BEFORE_BACKOFF
            if excess >= 0:
                self._trials_to_skip = min(2**excess, _MAX_SKIPPED_TRIALS)

    def _use_fallback(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        reason: str,
        message: str,
        call: _Call | None = None,
    ) -> dict[str, Any]:
        self.stats.fallback(reason)
        _logger.warning("trial %d: fallback sampler used (%s): %s", trial.number, reason, message)
        attrs: dict[str, Any] = {
            "llm.source": "fallback",
            "llm.fallback_reason": f"{reason}: {message}"[:500],
        }
        if call is not None:
            attrs.update(self._usage_attrs(call))
        self._set_attrs(study, trial, attrs)
        fallback_space = self.fallback.infer_relative_search_space(study, trial)
        params = self.fallback.sample_relative(study, trial, fallback_space)
        return {
            name: value for name, value in params.items()
            if name in search_space and _inside(search_space[name], value)
        }


def _inside(distribution: BaseDistribution, value: Any) -> bool:
    try:
        internal = distribution.to_internal_repr(value)
    except (ValueError, TypeError):
        return False
    return bool(distribution._contains(internal)) and not (
        isinstance(internal, float) and math.isnan(internal)
    )
