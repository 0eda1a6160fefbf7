"""What a storage holds: its studies, with trial counts and best values."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tunepilot.exceptions import TunepilotError


def storage_url(storage: str) -> str:
    """The storage URL for ``storage``: a URL as given, or the path of an SQLite file.

    Raises:
        TunepilotError: an SQLite file that does not exist (opening it would create
            an empty database and hide the typo).

    Example:
        .. code-block:: python

            storage_url("runs.db")  # 'sqlite:////home/me/runs.db', if the file exists
    """
    if "://" not in storage:
        path = Path(storage)
        if not path.is_file():
            raise TunepilotError(f"{storage}: no such database file; give the path of the "
                                 "SQLite file or a URL such as sqlite:///tunepilot.db")
        return f"sqlite:///{path.resolve()}"
    if storage.startswith("sqlite:///"):
        file = storage.removeprefix("sqlite:///")
        if file and file != ":memory:" and not Path(file).is_file():
            raise TunepilotError(f"{storage}: no such database file; check the path (run "
                                 "'tunepilot run' first to create it)")
    return storage


def load_study(storage: str, study_name: str) -> optuna.Study:
    """Open an existing study.

    Raises:
        TunepilotError: the storage cannot be opened or holds no study of that name;
            the message lists the studies it holds.
    """
    url = storage_url(storage)
    names = _study_names(url)
    if study_name not in names:
        raise TunepilotError(f"{storage}: no study named {study_name!r}; it holds "
                             f"{', '.join(names) or 'no studies'}")
    return optuna.load_study(study_name=study_name, storage=url)


def list_studies(storage: str) -> list[dict[str, Any]]:
    """One JSON-ready summary per study in ``storage``, in creation order.

    Each has ``name``, ``directions``, ``n_trials``, ``states`` (trials per state),
    ``best_value`` and ``best_params`` (single objective; ``None``/``{}`` otherwise or
    before a trial completes), ``pareto_size`` (several objectives), ``steps``
    (intermediate values reported) and ``datetime_start``.

    Raises:
        TunepilotError: the storage does not exist or cannot be opened.

    Example:
        .. code-block:: python

            for study in list_studies("sqlite:///pruning.db"):
                print(study["name"], study["n_trials"], study["best_value"])
    """
    url = storage_url(storage)
    summaries = []
    for name in _study_names(url):
        study = optuna.load_study(study_name=name, storage=url)
        trials = study.get_trials(deepcopy=False)
        multi = len(study.directions) > 1
        best = None
        if not multi and any(t.state == TrialState.COMPLETE for t in trials):
            best = study.best_trial
        starts = [t.datetime_start for t in trials if t.datetime_start is not None]
        summaries.append({
            "name": name,
            "directions": [d.name.lower() for d in study.directions],
            "n_trials": len(trials),
            "states": dict(Counter(t.state.name for t in trials)),
            "best_value": best.value if best is not None else None,
            "best_params": dict(best.params) if best is not None else {},
            "pareto_size": len(study.best_trials) if multi else None,
            "steps": sum(len(t.intermediate_values) for t in trials),
            "datetime_start": min(starts).isoformat(timespec="seconds") if starts else None,
        })
    return summaries


def _study_names(url: str) -> list[str]:
    try:
        return optuna.get_all_study_names(storage=url)
    except Exception as exc:  # SQLAlchemy and driver errors: bad URL, not a database
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TunepilotError(f"{url}: cannot open the storage: {first}") from None
