"""Proposals that repeat a trial are moved to a nearby untried configuration."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from optuna.trial import FrozenTrial

from tunepilot.samplers._response import Proposal
from tunepilot.space import CategoricalParam, SearchSpace

#: Recorded on a value the deduplication moved.
DEDUPLICATED = "deduplicated"
#: System attribute in which a blend trial claims its configuration before it is
#: suggested, so that workers in other processes sampling at once can see it.
CLAIM = "tunepilot:claimed_params"


def deduplicate(
    proposals: list[Proposal], trials: list[FrozenTrial], space: SearchSpace, rng: random.Random
) -> list[Proposal]:
    """``proposals`` with each one that repeats a trial (or an earlier proposal) moved to a
    nearby untried point, its moved values recorded as ``deduplicated``; a proposal with
    no untried point nearby is dropped."""
    names = list(space)
    seen: set[tuple[Any, ...]] = set()
    for past in trials:
        for params in (past.params, past.system_attrs.get("fixed_params"),
                       past.system_attrs.get(CLAIM)):
            if isinstance(params, dict) and params:
                seen.add(_config_key(params, names))
    unique = []
    for proposal in proposals:
        key = _config_key(proposal.values, names)
        if key in seen:
            moved = _move_away(proposal, space, seen, names, rng)
            if moved is None:
                continue
            proposal, key = moved, _config_key(moved.values, names)
        seen.add(key)
        unique.append(proposal)
    return unique

def _move_away(
    proposal: Proposal, space: SearchSpace, seen: set[tuple[Any, ...]], names: list[str],
    rng: random.Random,
) -> Proposal | None:
    """A nearby untried configuration: a small Gaussian step in the unit cube."""
    for attempt in range(20):
        sigma = 0.03 * (1 + attempt / 4)
        values = dict(proposal.values)
        for name, param in space.items():
            if isinstance(param, CategoricalParam):
                if len(param.choices) > 1 and rng.random() < 0.2 + attempt / 40:
                    values[name] = rng.choice(param.choices)
            else:
                u = param.to_unit(values[name]) + rng.gauss(0.0, sigma)
                values[name] = param.from_unit(u)
        if _config_key(values, names) not in seen:
            repairs = {n: list(k) for n, k in proposal.repairs.items()}
            for name in names:
                if values[name] != proposal.values[name]:
                    repairs.setdefault(name, []).append(DEDUPLICATED)
            return Proposal(values, repairs)
    return None


def _config_key(values: Mapping[str, Any], names: list[str]) -> tuple[Any, ...]:
    return tuple(
        float(f"{values[n]:.5g}") if isinstance(values.get(n), float) else values.get(n)
        for n in names
    )
