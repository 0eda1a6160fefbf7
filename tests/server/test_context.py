"""What the server's parts share: the kept answers of slow views."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
