"""What every part of the server shares: settings, database, Optuna storage, locks."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import optuna

from tunepilot.exceptions import NotFoundError, SearchSpaceError
from tunepilot.server._liveness import Liveness
from tunepilot.server._locks import SweepLocks
from tunepilot.server._samplers import build_sweep_sampler
from tunepilot.server._settings import Settings
from tunepilot.server.db import Database, check_database, make_storage, repository
from tunepilot.space import SweepConfig


@dataclass
class ServerContext:
    """One per app: the settings object, session factory, Optuna storage and locks.

    Routers mounted later (dashboard, online optimizer) get the same object through
    ``api.deps``; GET requests get :meth:`reading`'s view of it.
    """

    settings: Settings
    db: Database
    storage: optuna.storages.RDBStorage
    locks: SweepLocks
    #: Read-only database and storage (SQLite; see ``db/_engine.py``); None: ``db``, ``storage``.
    read_db: Database | None = None
    read_storage: optuna.storages.RDBStorage | None = None
    #: In a read view, the storage sweep studies write through (the original's); None: ``storage``.
    sweep_storage: optuna.storages.RDBStorage | None = None
    #: When this process last heard from each running run (the reaper's monotonic clock).
    liveness: Liveness = field(default_factory=Liveness)
    _studies: dict[str, tuple[optuna.Study, SweepConfig]] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _computed: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict)
    _readers: OrderedDict[tuple[int, str], optuna.Study] = field(default_factory=OrderedDict)
    _read_view: ServerContext | None = field(default=None, repr=False)

    #: How many computed views (parameter importances) are kept.
    COMPUTED_KEPT = 64
    #: How many studies keep their finished trials in memory for the dashboard.
    READERS_KEPT = 8

    @classmethod
    def open(cls, settings: Settings) -> ServerContext:
        """Connect to the database named in ``settings`` after checking its migrations.

        Raises:
            DatabaseError: unreachable, or not migrated (the message says what to run).
        """
        check_database(settings.db_url)
        database = Database(settings.db_url)
        storage = make_storage(settings.db_url)
        reading = database.sqlite
        return cls(
            settings=settings, db=database, storage=storage, locks=SweepLocks(database),
            read_db=Database(settings.db_url, read_only=True) if reading else None,
            read_storage=make_storage(settings.db_url, read_only=True) if reading else None,
        )

    def reading(self) -> ServerContext:
        """This context for a request that only reads: its ``db`` and ``storage`` are the
        read-only ones, which on SQLite never wait for a writer's lock (and refuse to
        write). Caches and locks are shared with this context."""
        if self.read_db is None and self.read_storage is None:
            return self
        if self._read_view is None:  # built once: every GET request asks for it
            self._read_view = dataclasses.replace(
                self, db=self.read_db or self.db, storage=self.read_storage or self.storage,
                read_db=None, read_storage=None, sweep_storage=self.storage,
            )
        return self._read_view

    def runtime(
        self, sweep_id: str, study_name: str, raw_config: Any
    ) -> tuple[optuna.Study, SweepConfig]:
        """The sweep's Optuna study (with its sampler) and parsed config, built once."""
        with self._guard:
            cached = self._studies.get(sweep_id)
        if cached is not None:
            return cached
        config = parse_config(raw_config)
        sampler = (build_sweep_sampler(config, prior_studies=self.prior_studies(config),
                                       settings=self.settings)
                   if config.method != "grid" else None)
        # Loaded once and kept for suggest and tell: always through the writing storage.
        study = optuna.load_study(
            study_name=study_name, storage=self.sweep_storage or self.storage, sampler=sampler
        )
        with self._guard:
            return self._studies.setdefault(sweep_id, (study, config))

    def config(self, sweep_id: str, raw_config: Any) -> SweepConfig:
        """The sweep's parsed config, without building its sampler or loading its study.

        For what needs only the config (finishing and reaping runs, hyperband): a
        sampler that cannot be built now (a model key gone since the sweep was made)
        must not keep runs from ending.
        """
        with self._guard:
            cached = self._studies.get(sweep_id)
        return cached[1] if cached is not None else parse_config(raw_config)

    def prior_studies(self, config: SweepConfig, *, check: bool = False) -> list[str]:
        """The Optuna studies of the sweeps ``config.prior_from`` names.

        Args:
            config: the sweep config.
            check: also check that each can give a prior now: it has a finished run
                that shares parameters with ``config``.

        Raises:
            SearchSpaceError: no sweep has one of those ids, or (``check``) one cannot
                give a prior; the message names ``prior_from`` and the sweep.
        """
        if not config.prior_from:
            return []
        names = []
        with self.db.session() as session:
            for sweep_id in config.prior_from:
                try:
                    names.append(repository.get_sweep(session, sweep_id).study_name)
                except NotFoundError:
                    raise SearchSpaceError(
                        f"prior_from: no sweep {sweep_id!r} on this server; give the id of an "
                        "earlier sweep (GET /api/v1/sweeps lists them)"
                    ) from None
        if check:
            from tunepilot.samplers import StudyRef
            from tunepilot.samplers._sources import best_configs

            space = config.space.search_space()
            for sweep_id, name in zip(config.prior_from, names, strict=True):
                try:
                    best_configs(StudyRef(name), space, self.sweep_storage or self.storage)
                except SearchSpaceError as exc:
                    reason = str(exc).removeprefix("prior_from: ").replace(repr(name), "it")
                    raise SearchSpaceError(
                        f"prior_from: sweep {sweep_id!r} cannot give a prior: {reason}"
                    ) from None
        return names

    def computed(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``, or its answer kept from an earlier call with the same ``key``.

        For views that are slow to compute and fully determined by the key, such as
        parameter importance over a study's completed trials: completed trials never
        change, so (study, evaluator, number completed) names the answer. The least
        recently used answers beyond :attr:`COMPUTED_KEPT` are dropped; exceptions are
        not kept.
        """
        with self._guard:
            if key in self._computed:
                self._computed.move_to_end(key)
                return self._computed[key]
        value = compute()  # outside the lock: two first requests may both compute
        with self._guard:
            self._computed[key] = value
            while len(self._computed) > self.COMPUTED_KEPT:
                self._computed.popitem(last=False)
        return value

    def study_trials(self, study_id: int, name: str) -> list[optuna.trial.FrozenTrial]:
        """Every trial of a study, read incrementally (see :meth:`study_reader`)."""
        return self._read(study_id, name)[1]

    def study_reader(self, study_id: int, name: str) -> optuna.Study:
        """The study, kept for views that read it again and again; for reading only.

        Optuna's study over an RDB storage keeps finished trials (which never change)
        and reads only new and unfinished ones on later calls: a dashboard polling a
        study of 5,000 trials reads a handful of rows, not 5,000. The last
        :attr:`READERS_KEPT` studies are kept. A kept copy that no longer matches the
        database (its first or last trial gone or different: the study was deleted
        and its id and name used again) is dropped and the study read afresh.
        """
        return self._read(study_id, name)[0]

    def _read(self, study_id: int, name: str) -> tuple[optuna.Study, list[optuna.trial.FrozenTrial]]:
        key = (study_id, name)
        with self._guard:
            study = self._readers.get(key)
            if study is not None:
                self._readers.move_to_end(key)
        if study is not None:
            trials = study.get_trials(deepcopy=False)
            if self._still_current(study_id, trials):
                return study, trials
        study = optuna.load_study(study_name=name, storage=self.storage)
        with self._guard:
            self._readers[key] = study
            self._readers.move_to_end(key)
            while len(self._readers) > self.READERS_KEPT:
                self._readers.popitem(last=False)
        return study, study.get_trials(deepcopy=False)

    def _still_current(self, study_id: int, trials: list[optuna.trial.FrozenTrial]) -> bool:
        # The first and the last kept trial must still be there, the same trials. A few
        # one-row queries: RDBStorage.get_n_trials would read every trial.
        for kept in trials[:1] + trials[1:][-1:]:
            try:
                trial_id = self.storage.get_trial_id_from_study_id_trial_number(
                    study_id, kept.number)
                stored = self.storage.get_trial(trial_id)
            except KeyError:
                return False
            if trial_id != kept._trial_id or stored.datetime_start != kept.datetime_start:
                return False
        return True

    def forget(self, sweep_id: str) -> None:
        """Drop the cached study of a deleted sweep."""
        with self._guard:
            self._studies.pop(sweep_id, None)

    def close(self) -> None:
        """Close every database connection."""
        self.db.dispose()
        self.storage.engine.dispose()
        if self.read_db is not None:
            self.read_db.dispose()
        if self.read_storage is not None:
            self.read_storage.engine.dispose()


def parse_config(data: Any) -> SweepConfig:
    """Validate a stored or submitted sweep config (``SearchSpaceError`` when invalid)."""
    if not isinstance(data, dict):
        raise SearchSpaceError("config must be a mapping")
    return SweepConfig.parse(data)
