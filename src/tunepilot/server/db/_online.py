"""The online optimizer's state in the server database (``tp_online_*`` tables)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select

from tunepilot.online import AppConfig, Decision
from tunepilot.server.db._engine import Database
from tunepilot.server.db._models import OnlineApp, OnlineDecision

__all__ = ["OnlineStateStore"]


class OnlineStateStore:
    """A :class:`tunepilot.online.StateStore` over the server's database.

    Apps (config and state: leaders, rollouts, paused) are one row each, replaced on
    every save; decisions are appended with their evidence. A server restart reads
    them back, so no app, decision or rollout is lost.

    Example:
        .. code-block:: python

            from tunepilot.online import OnlineOptimizer, OnlineConfig
            from tunepilot.server.db import Database, OnlineStateStore

            store = OnlineStateStore(Database("sqlite:///tunepilot.db"))
            optimizer = OnlineOptimizer(config=OnlineConfig(), state=store)
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def load_apps(self) -> list[tuple[AppConfig, dict[str, Any]]]:
        with self.database.session() as session:
            rows = session.scalars(select(OnlineApp).order_by(OnlineApp.name)).all()
            return [(AppConfig.model_validate(row.config), dict(row.state)) for row in rows]

    def save_app(self, app: AppConfig, state: dict[str, Any]) -> None:
        config = app.model_dump(mode="json")
        with self.database.session() as session:
            row = session.get(OnlineApp, app.name)
            if row is None:
                session.add(OnlineApp(name=app.name, config=config, state=state))
            else:
                row.config = config
                row.state = state

    def delete_app(self, app: str) -> None:
        # One transaction: the app never disappears with its decisions left behind.
        with self.database.session() as session:
            session.execute(delete(OnlineDecision).where(OnlineDecision.app == app))
            session.execute(delete(OnlineApp).where(OnlineApp.name == app))

    def add_decisions(self, decisions: Sequence[Decision]) -> None:
        if not decisions:
            return
        with self.database.session() as session:
            for decision in decisions:
                session.merge(OnlineDecision(
                    id=decision.id, app=decision.app, seq=_seq(decision.id), kind=decision.kind,
                    time=decision.time, data=decision.model_dump(mode="json")))

    def load_decisions(self, app: str, *, limit: int) -> list[Decision]:
        if limit <= 0:
            return []
        with self.database.session() as session:
            rows = session.scalars(
                select(OnlineDecision).where(OnlineDecision.app == app)
                .order_by(OnlineDecision.seq.desc()).limit(limit)).all()
            return [Decision.model_validate(row.data) for row in rows]


def _seq(decision_id: str) -> int:
    # Decision ids are "<app>-<n>"; the number orders an app's decisions.
    tail = decision_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0
