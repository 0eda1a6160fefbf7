"""Online optimizer: feedback from live LLM calls in, canary-guarded configuration changes out."""

from __future__ import annotations

from tunepilot.online._client import Client
from tunepilot.online._config import (
    AppConfig,
    Constraints,
    ContextField,
    ModelPrice,
    OnlineConfig,
    Policy,
    Variant,
    load_config,
)
from tunepilot.online._decisions import Decision, GateResult, Rollout
from tunepilot.online._events import Event
from tunepilot.online._optimizer import OnlineOptimizer
from tunepilot.online._state import MemoryStateStore, StateStore

__all__ = [
    "AppConfig",
    "Client",
    "Constraints",
    "ContextField",
    "Decision",
    "Event",
    "GateResult",
    "MemoryStateStore",
    "ModelPrice",
    "OnlineConfig",
    "OnlineOptimizer",
    "Policy",
    "Rollout",
    "StateStore",
    "Variant",
    "load_config",
]
