"""Online optimizer: feedback from live LLM calls in, canary-guarded configuration changes out."""

from __future__ import annotations

from tunepilot.online._events import Event

__all__ = ["Event"]
