"""When this server process last heard from each running run, on the monotonic clock.

The database keeps each run's last heartbeat as a wall-clock time, which every server
process sharing the database can read. The wall clock can jump: NTP correcting a
drifted clock, a virtual machine resumed, an administrator's ``date``. After a jump of
+1 h every heartbeat in the database looks an hour old, and the reaper would fail
healthy runs. A run's silence is therefore the shorter of what the database says and
what this process measured itself with :func:`time.monotonic`, which never jumps: the
time since it last heard from the run, or, for a run it has not heard from, since
it started (while it was down, no agent could reach it).

Example:
    .. code-block:: python

        liveness = Liveness()
        liveness.heard("r1")
        assert liveness.silence("r1", wall=3600.0) < 1.0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable


class Liveness:
    """Monotonic times of the last request of each running run that reached this process.

    Args:
        clock: the monotonic clock, in seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        #: When this process started listening, on ``clock``.
        self.started = clock()
        self._heard: dict[str, float] = {}
        self._lock = threading.Lock()

    def heard(self, run_id: str) -> None:
        """The run's agent was heard from now (a lease, heartbeat or log)."""
        now = self.clock()
        with self._lock:
            self._heard[run_id] = now

    def forget(self, run_id: str) -> None:
        """The run ended; it is not watched any more."""
        with self._lock:
            self._heard.pop(run_id, None)

    def now(self) -> float:
        """The current time on this object's clock."""
        return self.clock()

    def keep_only(self, run_ids: Iterable[str], *, before: float) -> None:
        """Forget the runs not in ``run_ids`` (those running when they were read, at
        ``before``): runs deleted with their sweep. Runs heard since stay."""
        keep = set(run_ids)
        with self._lock:
            for run_id in [r for r, t in self._heard.items() if r not in keep and t < before]:
                del self._heard[run_id]

    def silence(self, run_id: str, *, wall: float) -> float:
        """Seconds the run has been silent: ``wall`` (from the database's wall-clock
        heartbeat), unless this process measured a shorter silence itself."""
        now = self.clock()
        with self._lock:
            since = self._heard.get(run_id, self.started)
        return max(0.0, min(wall, now - since))
