"""Where the optimizer keeps what must survive a restart: apps, decisions, rollout state.

The optimizer talks to a :class:`StateStore`; the sweep server provides one over its
database (``tunepilot.server.db.OnlineStateStore``), tests and the simulator may use
:class:`MemoryStateStore`. Windows are not stored: after a restart they refill from
new events, and decisions wait for enough of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from tunepilot.online._config import AppConfig
from tunepilot.online._decisions import Decision

__all__ = ["MemoryStateStore", "StateStore"]


@runtime_checkable
class StateStore(Protocol):
    """Persistence of apps (config and state) and decisions."""

    def load_apps(self) -> list[tuple[AppConfig, dict[str, Any]]]:
        """Every stored app with its state (segments, leaders, rollouts, paused)."""

    def save_app(self, app: AppConfig, state: dict[str, Any]) -> None:
        """Create or replace one app's config and state."""

    def delete_app(self, app: str) -> None:
        """Remove one app, its state and its decisions (nothing if there is no such app)."""

    def add_decisions(self, decisions: Sequence[Decision]) -> None:
        """Append decisions."""

    def load_decisions(self, app: str, *, limit: int) -> list[Decision]:
        """The newest ``limit`` decisions of ``app``, newest first."""


class MemoryStateStore:
    """A :class:`StateStore` in memory that round-trips everything through JSON.

    The JSON round trip makes it as strict as the database: state that would not
    survive being stored fails here too.

    Example:
        >>> store = MemoryStateStore()
        >>> store.load_apps()
        []
    """

    def __init__(self) -> None:
        self._apps: dict[str, tuple[str, str]] = {}
        self._decisions: dict[str, list[str]] = {}

    def load_apps(self) -> list[tuple[AppConfig, dict[str, Any]]]:
        return [(AppConfig.model_validate_json(config), json.loads(state))
                for config, state in self._apps.values()]

    def save_app(self, app: AppConfig, state: dict[str, Any]) -> None:
        self._apps[app.name] = (app.model_dump_json(), json.dumps(state))

    def delete_app(self, app: str) -> None:
        self._apps.pop(app, None)
        self._decisions.pop(app, None)

    def add_decisions(self, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            self._decisions.setdefault(decision.app, []).append(decision.model_dump_json())

    def load_decisions(self, app: str, *, limit: int) -> list[Decision]:
        rows = self._decisions.get(app, [])[-limit:] if limit > 0 else []
        return [Decision.model_validate_json(row) for row in reversed(rows)]
