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

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from tunepilot._redact import redact
from tunepilot.exceptions import (
    LLMConfigError,
    LLMError,
    LLMRateLimitError,
    LLMRequestError,
    LLMTimeoutError,
)
from tunepilot.llm import Backend, Completion, Usage, prompt_hash
from tunepilot.llm._factory import make_backend
from tunepilot.samplers._blend import RANDOM, Blender
from tunepilot.samplers._context import ContextOptions, build_messages
from tunepilot.samplers._dedup import CLAIM, deduplicate
from tunepilot.samplers._guard import model_share, model_turn
from tunepilot.samplers._response import Proposal, answer_with_repair, response_schema
from tunepilot.samplers._sources import (
    LLM,
    STUDY,
    Source,
    StudyRef,
    as_study_refs,
    belief_source,
    best_configs,
)
from tunepilot.samplers._stats import LLMStats
from tunepilot.space import SearchSpace, parse_beliefs
from tunepilot.space._params import CLAMPED

_logger = logging.getLogger("tunepilot.samplers")

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
    weights a classical sampler's acquisition by π(x)^(β/n), with β calibrated by how
    well trials drawn from the prior have done (the math is in
    :mod:`tunepilot.samplers._blend`): good advice speeds the search up, bad advice
    fades out. The classical sampler, the *base*, is Optuna's GP or its TPE, chosen per
    study (``base="auto"``, :mod:`tunepilot.samplers._bases`). The prior may also come
    from the user (``prior=``) and from earlier studies (``prior_from=``), each source
    with its own trust, with or without a model (``model=None``). ``mode="llm"`` runs
    the model's proposals themselves, as described below, and hands a growing share of
    the trials to the fallback sampler while they do not beat its own
    (:mod:`tunepilot.samplers._guard`).

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
    trial records ``llm.source == "blend"``, ``llm.blend_part`` (``prior``, ``gp``,
    ``tpe`` or ``random``: which part chose it), ``llm.base`` (``gp`` or ``tpe``),
    ``llm.beta`` (Σβ over the sources), ``llm.prior_sources`` (the sources that shaped
    it: ``llm``, ``user``, ``study``), ``llm.prior_source`` on trials drawn from one,
    and ``llm.betas`` (β per source) when the model is not the only source. In llm
    mode each trial records ``llm.model_share``, and the fallback's trials handed out
    by the safeguard ``llm.source == "base"``.

    Every trial it drives gets the user attributes ``llm.source`` (``"llm"``,
    ``"blend"``, ``"base"`` or ``"fallback"``), ``llm.rationale``, ``llm.prompt_tokens``,
    ``llm.completion_tokens``, ``llm.cost_usd`` (a call's usage split over its
    configurations), ``llm.latency_s``, ``llm.repairs`` (names of repaired
    parameters), ``llm.repair_details``, ``llm.prompt_hash``, ``llm.model``,
    ``llm.call_trial`` (the trial whose call proposed it), and on fallbacks
    ``llm.fallback_reason``.

    Args:
        model: ``"auto"`` (a local server if one answers, else a hosted model whose key
            is set, else the embedded model), ``"local"`` (the embedded SmolLM2 model,
            no key or network needed), ``"local:/path/to/model.gguf"``, a LiteLLM model
            string such as ``"openai/gpt-4.1-mini"``, a :class:`~tunepilot.llm.Backend`,
            or ``None`` (no model: the blend of ``prior`` and ``prior_from`` only).
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
        n_startup_trials: trials before the base's model takes over in blend mode.
        base: the blend's classical sampler: ``"auto"``, ``"gp"`` (needs torch) or
            ``"tpe"``.
        prior: the user's beliefs, ``{name: value}`` or ``{name: Belief(value,
            confidence)}`` (:class:`~tunepilot.space.Belief`); needs ``search_space``.
        prior_from: earlier studies whose best trials become a prior: a study name in
            the same storage, a :class:`~tunepilot.samplers.StudyRef`, or a list.
        safeguard: in llm mode, hand trials to the fallback sampler while the model's
            trials do not beat it; ``False`` runs every trial from the model.

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
        model: str | Backend | None = "auto",
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
        base: str = "auto",
        prior: Mapping[str, Any] | None = None,
        prior_from: str | StudyRef | Sequence[str | StudyRef] | None = None,
        safeguard: bool = True,
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
        if model is None and mode != "blend":
            raise ValueError("mode='llm' needs a model; without one, use mode='blend' with "
                             "prior= or prior_from=")
        if mode != "blend" and (prior or prior_from):
            raise ValueError("prior= and prior_from= shape the blend: use mode='blend'")
        if prior and search_space is None:
            raise ValueError("prior= needs search_space=: the beliefs are checked against "
                             "the parameters' ranges")
        if mode == "blend" and fallback is not None:
            raise ValueError(
                "blend mode blends with its own base (base='auto', 'gp' or 'tpe'); "
                "use mode='llm' to choose a fallback sampler"
            )
        if mode == "llm" and model == "local" and not safeguard:
            _logger.warning(
                "mode='llm' with safeguard=False runs the embedded 135M model's "
                "configurations as they are; on tunepilot's benchmarks that searched worse "
                "than random search (benchmarks/README.md). Use mode='blend' (the default) "
                "with this model, or mode='llm' with a capable one."
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
        self.base = base
        self.safeguard = safeguard
        self.prior = parse_beliefs(self.search_space, prior) if prior and self.search_space else {}
        self.prior_from = as_study_refs(prior_from)
        self._blender = (
            Blender(beta=beta, epsilon=prior_epsilon, n_startup_trials=n_startup_trials,
                    seed=seed, base=base,
                    sources=[belief_source(self.prior)] if self.prior else [])
            if mode == "blend" else None
        )
        self._studies_loaded = False
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
        if self.model is None:
            raise LLMConfigError("this sampler has no model (model=None): its blend uses "
                                 "prior= and prior_from= only")
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
        space = self._call_space(study)
        if self._blender is None:
            return space
        # The blend samples what every finished trial has, as TPE and the GP do: a
        # conditional parameter is left to the independent sampler.
        finished = study._get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED), use_cache=True
        )
        if finished:
            common = set.intersection(*(set(t.params) for t in finished))
            space = {n: d for n, d in space.items() if n in common}
        return space

    def _call_space(self, study: Study) -> dict[str, BaseDistribution]:
        """The space the model proposes in: the declared one, or every parameter seen."""
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
        _single_objective(study)
        if "fixed_params" in trial.system_attrs:
            # Enqueued by an earlier call of ours (a batch) or by the user.
            return {}
        if self._blender is not None and search_space:
            # Like TPE, leave single-valued parameters to Optuna, which sets them itself.
            varying = {n: d for n, d in search_space.items() if not d.single()}
            return self._sample_blend(study, trial, varying, self._blender) if varying else {}
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
        share, trusted = model_share(study) if self.safeguard else (1.0, None)
        if trusted is not None and not model_turn(study, trial, share, trusted):
            return self._use_base(study, trial, search_space, share)
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
        batch = len(call.proposals)
        for proposal in call.proposals[1:]:
            study.enqueue_trial(proposal.values, user_attrs=self._attrs(trial, call, proposal, batch))
        first = call.proposals[0]
        self._set_attrs(study, trial, {**self._attrs(trial, call, first, batch),
                                       "llm.model_share": round(share, 4)})
        self.stats.count("llm_trials")
        return dict(first.values)

    def _sample_blend(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        blender: Blender,
    ) -> dict[str, Any]:
        self._load_study_priors(study, blender)
        n_complete = len(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        call: _Call | None = None
        error: LLMError | None = None
        with self._lock:
            advised = LLM in blender.sources and bool(blender.sources[LLM].configs)
            due = self.model is not None and (
                not advised or n_complete >= blender.refreshed_at + self.refresh_every)
            if due:  # one refresh per step, however many threads are sampling
                blender.refreshed_at = n_complete
            skipping = due and self._trials_to_skip > 0
            if skipping:
                self._trials_to_skip -= 1
        if due and not skipping:
            space = SearchSpace.from_optuna(
                {n: d for n, d in self._call_space(study).items() if not d.single()}
                or search_space
            )
            try:
                call = self._call(study, trial, space)
            except LLMConfigError:
                raise
            except LLMError as exc:
                self._record_failure()
                error = exc
            else:
                with self._lock:
                    self._consecutive_failures = 0
                if call.proposals:
                    # A clamped value is no advice about where in its range to look.
                    unknown = [{n for n, kinds in p.repairs.items() if CLAMPED in kinds}
                               for p in call.proposals]
                    blender.add(space, [p.values for p in call.proposals], n_complete, unknown)
        if not blender.has_prior and self.model is not None:
            if error is not None:
                return self._use_fallback(study, trial, search_space, _reason_key(error), str(error))
            if skipping:
                return self._use_fallback(
                    study, trial, search_space, "backing_off",
                    f"the LLM failed {self._consecutive_failures} times in a row; trying it "
                    "again later",
                )
            errors = "; ".join(call.errors[:3]) if call is not None else "no proposals yet"
            return self._use_fallback(
                study, trial, search_space, "invalid_output", f"no usable configuration: {errors}",
                call,
            )
        if error is not None:
            _logger.warning(
                "trial %d: refreshing the LLM prior failed (%s); blending with the previous one",
                trial.number, redact(str(error)),
            )
        choice = blender.sample(study, trial, search_space)
        attrs: dict[str, Any] = {
            "llm.source": "blend", "llm.blend_part": choice.part, "llm.beta": round(choice.beta, 4),
            "llm.base": choice.base,
            # Every source whose prior shaped this trial: the one it was drawn from, or
            # every source with weight in the acquisition.
            "llm.prior_sources": (
                [choice.source] if choice.source is not None
                else sorted(n for n, b in choice.betas.items() if b > 0)
                if choice.part not in (RANDOM,) else []
            ),
        }
        if len(choice.betas) > 1 or (choice.betas and LLM not in choice.betas):
            attrs["llm.betas"] = {n: round(b, 4) for n, b in choice.betas.items()}
        if choice.source is not None:
            attrs["llm.prior_source"] = choice.source
        if call is not None:
            attrs.update(self._usage_attrs(call))
            attrs.update({"llm.rationale": call.rationale, "llm.proposals": len(call.proposals)})
        params, moved = self._claim(study, trial, search_space,
                                    self._complete(study, trial, search_space, choice.params))
        if moved:
            attrs["llm.deduplicated"] = True
        self._set_attrs(study, trial, attrs)
        self.stats.count("blend_trials")
        return params

    def _claim(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution],
        params: dict[str, Any],
    ) -> tuple[dict[str, Any], bool]:
        """``params``, claimed in the storage, or a nearby untried configuration when
        another trial has (or claims) the same one; and whether it moved.

        Workers in several processes that sample at once can reach the same
        configuration (the GP's acquisition maximum, a corner); each writes its claim
        before it reads the others', so of two equal claims at least one sees the
        other, and moves. With no other trial running or queued, no claim is written,
        and the configuration is checked against the finished trials only.
        """
        busy = any(t.number != trial.number for t in study._get_trials(
            deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING), use_cache=False))
        if busy:
            study._storage.set_trial_system_attr(trial._trial_id, CLAIM, params)
        others = [t for t in study._get_trials(deepcopy=False, use_cache=not busy)
                  if t.number != trial.number]
        moved = deduplicate([Proposal(params)], others, SearchSpace.from_optuna(search_space),
                            self._rng)
        if not moved or moved[0].values == params:
            return params, False
        if busy:
            study._storage.set_trial_system_attr(trial._trial_id, CLAIM, moved[0].values)
        return dict(moved[0].values), True

    def _complete(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution],
        params: Mapping[str, Any],
    ) -> dict[str, Any]:
        """``params`` with every parameter of ``search_space`` set, as Python values.

        The base samplers leave their random startup to ``sample_independent``; drawing
        those values here instead (from the same sampler) answers for the whole space.
        """
        out = _plain(params)
        for name, dist in search_space.items():
            if name not in out:
                out[name] = _plain(
                    {name: self.fallback.sample_independent(study, trial, name, dist)})[name]
        return out

    def _load_study_priors(self, study: Study, blender: Blender) -> None:
        """Turn ``prior_from`` into a source, once, when the storage is known."""
        with self._lock:
            if self._studies_loaded or not self.prior_from:
                self._studies_loaded = True
                return
            self._studies_loaded = True
        space = self.search_space or SearchSpace.from_optuna(self._call_space(study))
        source = Source(STUDY)
        for ref in self.prior_from:
            source.add(best_configs(ref, space, study._storage))
        with self._lock:
            blender.sources[STUDY] = source
        _logger.info("prior from %s: %d configurations", ", ".join(r.study_name for r in
                     self.prior_from), len(source.configs))

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        # Parameters outside the relative space: the first define-by-run trial, or a
        # conditional parameter the space does not hold.
        _single_objective(study)
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

        answer = answer_with_repair(ask, messages, space, self.batch_size, self.stats)
        proposals = deduplicate(list(answer.proposals), others, space, self._rng)[: self.batch_size]
        self.stats.count("proposals", len(proposals))
        self.stats.count("repaired_params", sum(len(p.repairs) for p in proposals))
        return _Call(proposals, answer.rationale, list(answer.errors), answer.usage,
                     answer.latency_s, digest, answer.cached)
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

    def _use_base(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution],
        share: float,
    ) -> dict[str, Any]:
        """The base sampler's trial, by the safeguard's quota (:mod:`._guard`)."""
        self.stats.count("base_trials")
        self._set_attrs(study, trial, {"llm.source": "base", "llm.model_share": round(share, 4)})
        return self._from_fallback(study, trial, search_space)

    def _from_fallback(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        params = self.fallback.sample_relative(
            study, trial, self.fallback.infer_relative_search_space(study, trial))
        return self._complete(study, trial, search_space, {
            n: v for n, v in params.items() if n in search_space and _inside(search_space[n], v)})

    def _use_fallback(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        reason: str,
        message: str,
        call: _Call | None = None,
    ) -> dict[str, Any]:
        # A provider's error or the model's own output may quote a key or a URL's password.
        message = redact(message)
        self.stats.fallback(reason)
        _logger.warning("trial %d: fallback sampler used (%s): %s", trial.number, reason, message)
        attrs: dict[str, Any] = {
            "llm.source": "fallback",
            "llm.fallback_reason": f"{reason}: {message}"[:500],
        }
        if call is not None:
            attrs.update(self._usage_attrs(call))
        self._set_attrs(study, trial, attrs)
        return self._from_fallback(study, trial, search_space)


def _inside(distribution: BaseDistribution, value: Any) -> bool:
    try:
        internal = distribution.to_internal_repr(value)
    except (ValueError, TypeError):
        return False
    return bool(distribution._contains(internal)) and not (
        isinstance(internal, float) and math.isnan(internal)
    )


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """Values as Python's own types: Optuna's samplers return them so (numpy scalars are
    not JSON, and compare unequal to a categorical's choices by type)."""
    return {n: v.item() if isinstance(v, np.generic) else v for n, v in params.items()}


def _single_objective(study: Study) -> None:
    if len(study.directions) > 1:
        raise ValueError(
            "LLMSampler tunes a single objective; for several, use one of Optuna's "
            "multi-objective samplers (NSGAIISampler, TPESampler, GPSampler)"
        )
