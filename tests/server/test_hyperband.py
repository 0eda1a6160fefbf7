"""Hyperband decisions with W&B's semantics."""

from __future__ import annotations

from tunepilot.server._hyperband import should_stop
from tunepilot.space import Hyperband

# W&B's own example: max_iter 5, eta 2, s 2 gives bands [1, 2].
CONFIG = Hyperband(type="hyperband", max_iter=5, eta=2, s=2)
RUNS = {
    "a": [10, 9],  # finished
    "b": [10, 10],
    "c": [10, 8, 8],
    "d": [10, 7, 7],
    "e": [10, 6, 6],  # finished
}


def _stopped(config: Hyperband, running: list[str], maximize: bool = False) -> list[str]:
    runs = {k: [-v for v in h] for k, h in RUNS.items()} if maximize else RUNS
    everyone = list(runs.values())
    return [k for k in running if should_stop(config, runs[k], everyone, maximize=maximize).stop]


def test_bands_from_max_iter_and_from_min_iter() -> None:
    assert CONFIG.bands() == [1, 2]
    assert Hyperband(type="hyperband", min_iter=3).bands()[:4] == [3, 9, 27, 81]
    assert Hyperband(type="hyperband", max_iter=81, s=3).bands() == [3, 9, 27]


def test_the_run_behind_the_threshold_stops() -> None:
    # Band 2 values 9, 10, 8, 7, 6: the threshold is the 3rd best (8); b's best is 10.
    assert _stopped(CONFIG, ["b", "c", "d"]) == ["b"]


def test_maximize_mirrors_minimize() -> None:
    assert _stopped(CONFIG, ["b", "c", "d"], maximize=True) == ["b"]


def test_strict_compares_the_value_at_the_band_not_the_best() -> None:
    strict = Hyperband(type="hyperband", max_iter=5, eta=2, s=2, strict=True)
    everyone = [*RUNS.values(), [10, 11, 3]]
    # Best so far (3) passes, but at band 2 the value was 11: strict mode stops it.
    assert not should_stop(CONFIG, [10, 11, 3], everyone, maximize=False).stop
    decision = should_stop(strict, [10, 11, 3], everyone, maximize=False)
    assert decision.stop and "band 2" in decision.reason


def test_no_band_reached_or_no_metric_means_keep_going() -> None:
    late = Hyperband(type="hyperband", min_iter=5)
    assert not should_stop(late, [100, 100], list(RUNS.values()), maximize=False).stop
    assert not should_stop(CONFIG, [], list(RUNS.values()), maximize=False).stop
