"""What the server's parts share: the kept answers of slow views."""

from __future__ import annotations

import os
from collections.abc import Iterator

import optuna
import pytest
from optuna.trial import TrialState

from tunepilot.server import Settings
from tunepilot.server._context import ServerContext


@pytest.fixture
def ctx(db_url: str) -> Iterator[ServerContext]:
    context = ServerContext.open(Settings(db=db_url))
    yield context
    context.close()


def test_a_kept_answer_is_reused_and_the_least_recently_used_is_dropped(
    ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ServerContext, "COMPUTED_KEPT", 2)
    calls: list[str] = []

    def compute(name: str) -> dict[str, str]:
        calls.append(name)
        return {"answer": name}

    assert ctx.computed("a", lambda: compute("a")) == {"answer": "a"}
    assert ctx.computed("a", lambda: compute("a")) == {"answer": "a"} and calls == ["a"]
    ctx.computed("b", lambda: compute("b"))
    ctx.computed("a", lambda: compute("a"))  # a is now the most recently used
    ctx.computed("c", lambda: compute("c"))  # drops b
    ctx.computed("a", lambda: compute("a"))
    ctx.computed("b", lambda: compute("b"))
    assert calls == ["a", "b", "c", "b"]


def test_a_failed_computation_is_not_kept(ctx: ServerContext) -> None:
    def fail() -> None:
        raise ValueError("not yet")

    with pytest.raises(ValueError, match="not yet"):
        ctx.computed("k", fail)
    assert ctx.computed("k", lambda: 42) == 42


def _study(ctx: ServerContext, name: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=name, storage=ctx.storage)


def test_study_trials_follow_new_and_finishing_trials(ctx: ServerContext) -> None:
    study = _study(ctx, "polled")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    sid = study._study_id
    assert [t.state for t in ctx.study_trials(sid, "polled")] == [TrialState.COMPLETE] * 3
    running = study.ask()
    running.suggest_float("x", 0, 1)
    seen = ctx.study_trials(sid, "polled")
    assert [t.state for t in seen][3:] == [TrialState.RUNNING]
    study.tell(running, 0.25)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    seen = ctx.study_trials(sid, "polled")
    assert len(seen) == 6 and all(t.state == TrialState.COMPLETE for t in seen)
    assert seen[3].value == 0.25


def test_a_study_deleted_and_made_again_is_read_afresh(ctx: ServerContext) -> None:
    old = _study(ctx, "again")
    old.optimize(lambda t: 1.0 + t.suggest_float("x", 0, 1) * 0, n_trials=4)
    assert [t.value for t in ctx.study_trials(old._study_id, "again")] == [1.0] * 4
    optuna.delete_study(study_name="again", storage=ctx.storage)
    new = _study(ctx, "again")  # SQLite may give it the same id
    new.optimize(lambda t: 2.0 + t.suggest_float("x", 0, 1) * 0, n_trials=5)
    assert [t.value for t in ctx.study_trials(new._study_id, "again")] == [2.0] * 5


def test_importance_of_a_study_made_again_is_not_the_old_answer(ctx: ServerContext) -> None:
    from tunepilot.server.web._studies import StudyView

    old = _study(ctx, "imp")
    old.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert StudyView(ctx, old._study_id).importance()["importances"] == {"x": 1.0}
    optuna.delete_study(study_name="imp", storage=ctx.storage)
    new = _study(ctx, "imp")  # SQLite may give it the same id; same name, same count
    new.optimize(lambda t: t.suggest_float("y", 0, 1), n_trials=3)
    assert StudyView(ctx, new._study_id).importance()["importances"] == {"y": 1.0}


def test_the_reading_view_refuses_to_write_on_sqlite(tmp_path: os.PathLike[str]) -> None:
    from sqlalchemy import text

    from tunepilot.exceptions import DatabaseError
    from tunepilot.server import upgrade_database

    url = f"sqlite:///{tmp_path}/sweeps.db"
    upgrade_database(url)
    context = ServerContext.open(Settings(db=url))
    try:
        reading = context.reading()
        assert reading.db is not context.db and reading.storage is not context.storage
        assert reading.locks is context.locks and reading._computed is context._computed
        with pytest.raises(DatabaseError, match="readonly"), reading.db.session() as session:
            session.execute(text("DELETE FROM tp_sweeps"))
        with pytest.raises(optuna.exceptions.StorageInternalError):
            optuna.create_study(study_name="not-here", storage=reading.storage)
        assert "not-here" not in optuna.get_all_study_names(context.storage)
        # Sweep studies are loaded for writing whichever view asks first.
        assert reading.sweep_storage is context.storage
    finally:
        context.close()
