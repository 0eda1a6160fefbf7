"""The online optimizer's state in the server database survives a restart."""

from __future__ import annotations

import uuid

from tunepilot.online import AppConfig, Decision, OnlineConfig, OnlineOptimizer, Variant
from tunepilot.server import upgrade_database
from tunepilot.server.db import Database, OnlineStateStore
from tunepilot.server._settings import normalize_db_url


def _app(name: str) -> AppConfig:
    return AppConfig(name=name, baseline="big", variants=[Variant(id="big", model="big"),
                                                          Variant(id="small", model="small")])


def test_apps_decisions_and_state_round_trip(db_url: str) -> None:
    upgrade_database(db_url)
    name = f"bot-{uuid.uuid4().hex[:8]}"  # PostgreSQL is shared by the whole test session
    app = _app(name)
    database = Database(normalize_db_url(db_url))
    try:
        store = OnlineStateStore(database)
        clock = [1_800_000_000.0]
        opt = OnlineOptimizer(config=OnlineConfig(apps={name: app}), clock=lambda: clock[0], state=store)
        opt.pause(name)
        clock[0] += 10
        opt.resume(name)
        store.add_decisions([Decision(id=f"{name}-99", app=name, segment="*", kind="gate", time=5.0,
                                      verdict="inconclusive", evidence={"quality": {"candidate_n": 3}})])
        restarted = OnlineOptimizer(config=OnlineConfig(), clock=lambda: clock[0],
                                    state=OnlineStateStore(database))
        assert name in restarted.apps()
        assert restarted.app_config(name) == app
        kinds = [d.kind for d in restarted.decisions(name)]
        assert kinds == ["gate", "resume", "pause"]
        assert restarted.decisions(name)[0].evidence == {"quality": {"candidate_n": 3}}
        assert store.load_decisions(name, limit=1)[0].id == f"{name}-99"
        assert store.load_decisions(f"{name}-nobody", limit=5) == []
    finally:
        database.dispose()


def test_deleting_an_app_removes_its_row_and_decisions_only(db_url: str) -> None:
    upgrade_database(db_url)
    gone, kept = (f"bot-{uuid.uuid4().hex[:8]}" for _ in range(2))
    database = Database(normalize_db_url(db_url))
    try:
        store = OnlineStateStore(database)
        for name in (gone, kept):
            store.save_app(_app(name), {"paused": False, "seq": 1, "segments": {}})
            store.add_decisions([Decision(id=f"{name}-1", app=name, segment="*", kind="pause",
                                          time=1.0)])
        store.delete_app(gone)
        store.delete_app(f"{gone}-never-existed")  # nothing to do, no error
        names = {config.name for config, _ in store.load_apps()}
        assert gone not in names and kept in names
        assert store.load_decisions(gone, limit=10) == []
        assert [d.id for d in store.load_decisions(kept, limit=10)] == [f"{kept}-1"]
    finally:
        database.dispose()
