"""A run's silence: the database's wall-clock heartbeat, unless this process heard it later."""

from __future__ import annotations

from tunepilot.server._liveness import Liveness


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_run_heard_here_is_as_silent_as_the_monotonic_clock_says() -> None:
    clock = Clock()
    liveness = Liveness(clock)
    clock.t += 50
    liveness.heard("r1")
    clock.t += 2
    assert liveness.silence("r1", wall=3600.0) == 2.0  # the wall clock jumped
    assert liveness.silence("r1", wall=1.0) == 1.0  # another process heard it later
    assert liveness.silence("r2", wall=3600.0) == 52.0  # never heard: since the start


def test_ended_and_deleted_runs_are_forgotten_but_not_runs_heard_since() -> None:
    clock = Clock()
    liveness = Liveness(clock)
    for run_id in ("ended", "deleted", "running"):
        liveness.heard(run_id)
    liveness.forget("ended")
    read_at = liveness.now()
    clock.t += 1
    liveness.heard("new")
    liveness.keep_only(["running"], before=read_at)
    clock.t += 1
    assert liveness.silence("running", wall=99.0) == 2.0
    assert liveness.silence("new", wall=99.0) == 1.0
    assert liveness.silence("deleted", wall=99.0) == 2.0  # since the start
    assert liveness.silence("ended", wall=99.0) == 2.0
