"""The run a training function sees: ``init``, ``config``, ``log``, ``summary``, ``finish``."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from tunepilot.exceptions import TunepilotError
from tunepilot.sdk._client import Client
from tunepilot.sdk._values import to_json

_logger = logging.getLogger("tunepilot.sdk")


class RunStopped(BaseException):
    """Raised by :func:`log` in a function run by an agent when the server asked to stop
    the run (hyperband, cancel, a stop request).

    A ``BaseException`` so that a training loop's ``except Exception`` does not
    swallow it; the agent catches it and reports the run as stopped. A program started
    by ``tunepilot agent`` never sees it: the agent stops the program with SIGTERM, so
    the program's own SIGTERM handler runs (as under W&B's agent), and its logs until
    then are kept.
    """


class Config(dict[str, Any]):
    """The run's config: a dict that also reads and writes keys as attributes.

    In a sweep the sweep's parameters are locked, as in W&B: setting one (by key,
    attribute or ``update``) keeps the sweep's value and logs a warning, so code
    that loads its defaults after ``init()`` still trains with the sweep's values.
    A nested parameter keeps its sweep values and takes new keys beside them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "_locked", {})

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]

    def __setitem__(self, key: str, value: Any) -> None:
        locked: dict[str, Any] = object.__getattribute__(self, "_locked")
        if key in locked:
            kept = locked[key]
            if isinstance(value, Mapping) and isinstance(kept, Mapping):
                kept = merge(value, kept)
            if _differs(value, kept):
                _logger.warning("config item %r is set by the sweep (%r); the update to %r "
                                "is ignored", key, locked[key], value)
            value = kept
        super().__setitem__(key, value)

    def update(self, *args: Any, allow_val_change: bool | None = None, **kwargs: Any) -> None:
        """Set keys from a mapping, an ``argparse.Namespace`` or keywords (``wandb.config.update``).

        ``allow_val_change`` is accepted for W&B compatibility; it does not unlock
        the sweep's parameters (nor does it in W&B).
        """
        if len(args) > 1:
            raise TypeError(f"update() takes at most 1 positional argument ({len(args)} given)")
        values = _as_dict(args[0] if args else None)
        values.update(kwargs)
        for key, value in values.items():
            self[key] = value

    def lock(self, values: Mapping[str, Any]) -> None:
        """Lock ``values`` (the sweep's parameters): updates to them are ignored."""
        object.__setattr__(self, "_locked", dict(values))

    def as_dict(self) -> dict[str, Any]:
        """A plain-dict copy."""
        return dict(self)


def _as_dict(values: Any) -> dict[str, Any]:
    """A config given as a mapping, an ``argparse.Namespace`` or None, as a new dict."""
    if isinstance(values, argparse.Namespace):
        return dict(vars(values))
    return dict(values or {})


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except (TypeError, ValueError):  # e.g. arrays, whose comparison has no single truth
        return True


class Summary(dict[str, Any]):
    """Each key's last logged value; keys set here are sent when the run finishes."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: set[str] = set()

    def __setitem__(self, key: str, value: Any) -> None:
        to_json({key: value}, "summary")  # an unstorable value fails here, not at the run's end
        super().__setitem__(key, value)
        self.changed.add(key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` wins key by key, nested mappings merged (sweep params over init config)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class Run:
    """One run: its config, summary and logged history; remote when it has an id.

    A run without an id (``init()`` outside any agent) keeps its history in memory.
    A run of a program the agent started (``signalled``) is stopped by the agent's
    SIGTERM, not by :class:`RunStopped`.
    """

    def __init__(
        self, *, client: Client | None, run_id: str | None, config: Mapping[str, Any],
        sweep_id: str | None = None, signalled: bool = False,
    ) -> None:
        self.client = client
        self.id = run_id
        self.sweep_id = sweep_id
        self.config = Config(config)
        self.summary = Summary()
        self.history: list[dict[str, Any]] = []
        self.stop_event = threading.Event()
        self.stop_reason: str | None = None
        self.signalled = signalled
        self.finished = False
        self._step = 0
        self._log_lock = threading.Lock()

    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        """Log metrics to the current step, as ``wandb.log`` does.

        Without ``step``, the data goes to the current step, which then advances
        unless ``commit=False``. With ``step``, the data goes to that step, which
        stays current unless ``commit=True``, so more logs can add to it. Logs to the
        same step make one row; a step before the current one is dropped with a
        warning (steps must increase).

        Threads may log to one run (a training loop and a monitor): their logs are
        taken and sent one at a time, so the server gets the steps in order.
        """
        with self._log_lock:
            self._log(data, step, commit)

    def _log(self, data: Mapping[str, Any], step: int | None, commit: bool | None) -> None:
        if self.finished:
            raise TunepilotError("this run has finished; call init() for a new one")
        if self.stop_event.is_set() and not self.signalled:
            raise RunStopped(self.stop_reason or "the server asked to stop this run")
        row = dict(data)
        sent = to_json(row, "log()")  # before anything changes: a bad value stores nothing
        advance = commit if commit is not None else step is None
        if step is not None:
            step = int(step)
            if step < self._step:
                _logger.warning(
                    "log(step=%s) is before the current step %s; the data is dropped "
                    "(steps must increase)", step, self._step,
                )
                return
            self._step = step
        step = self._step
        if advance:
            self._step += 1
        if self.history and self.history[-1]["_step"] == step:
            self.history[-1].update(row)
        else:
            self.history.append({"_step": step, **row})
        dict.update(self.summary, row)
        if self.client is not None and self.id is not None:
            # One id for the request and its retries, so a retry of a log whose
            # answer was lost (a timeout, a server restart) is not stored twice.
            answer = self.client.post(f"/runs/{self.id}/log", {
                "rows": [{"step": step, "metrics": sent}], "request_id": uuid.uuid4().hex,
            })
            if answer and answer.get("stop") and not self.stop_event.is_set():
                self.stop_reason = answer.get("reason")
                self.stop_event.set()
                if self.signalled:
                    _logger.info("the server asked to stop run %s (%s); the agent sends SIGTERM",
                                 self.id, self.stop_reason)

    @property
    def name(self) -> str:
        """The run's id (W&B's display name); ``"local"`` for a run outside any sweep."""
        return self.id or "local"

    def finish(self, exit_code: int | None = None) -> None:
        """Send the hand-set summary keys; a local run ends here.

        A sweep run ends when its function returns or its program exits: the agent
        reports that, failed if the function raised or the program exited non-zero.
        """
        self.flush_summary()
        if self.client is None:
            self.finished = True

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """``with wandb.init() as run:`` finishes the run on the way out, as W&B's does."""
        self.finish(exit_code=1 if exc_type is not None else 0)

    def flush_summary(self) -> None:
        """Send the summary keys set by hand since the last flush."""
        changed = {k: self.summary[k] for k in self.summary.changed if k in self.summary}
        if changed and self.client is not None and self.id is not None:
            self.client.request("PATCH", f"/runs/{self.id}/summary",
                                json={"summary": to_json(changed, "summary")})
        self.summary.changed.clear()


class _Current:
    """The process's current run, shared by the module-level functions."""

    def __init__(self) -> None:
        self.run: Run | None = None
        self.sweep_config: dict[str, Any] | None = None


current = _Current()
#: The current run's config (the same object across runs, as ``wandb.config``).
config = Config()
#: The current run's summary.
summary = Summary()


def _attach(run: Run) -> Run:
    current.run = run
    config.clear()
    dict.update(config, run.config)
    config.lock(current.sweep_config or {})
    run.config = config
    summary.clear()
    summary.changed.clear()
    run.summary = summary
    return run


def init(
    config: Mapping[str, Any] | argparse.Namespace | None = None,
    project: str | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
    **_ignored: Any,
) -> Run:
    """Start (or join) the run, as ``wandb.init``.

    Inside an agent (a function agent in this process, or a program started by
    ``tunepilot agent``, which passes ``TUNEPILOT_RUN_ID``) the run is the leased
    one: the sweep's parameters override ``config``, and keys only in ``config``
    are merged in, as W&B does. Elsewhere the run is local and keeps its history
    in memory. ``config`` may be a mapping or an ``argparse.Namespace``. Other W&B
    keyword arguments are accepted and ignored.
    """
    given = _as_dict(config)
    if current.sweep_config is not None and current.run is not None:
        current.run.config = Config(merge(given, current.sweep_config))
        return _attach(current.run)
    run_id = os.environ.get("TUNEPILOT_RUN_ID")
    if run_id:
        client = Client(url, token)
        remote = client.get(f"/runs/{run_id}")
        current.sweep_config = dict(remote["config"])
        run = Run(client=client, run_id=run_id, config=merge(given, remote["config"]),
                  sweep_id=remote["sweep_id"], signalled=True)
        # A program need not call finish(): hand-set summary keys are sent at exit.
        atexit.register(_flush_at_exit, run)
        return _attach(run)
    return _attach(Run(client=None, run_id=None, config=given))


def _flush_at_exit(run: Run) -> None:
    try:
        run.flush_summary()
    except TunepilotError:
        pass  # the agent reports the run's end either way
    if run.client is not None:
        run.client.close()


def _run() -> Run:
    if current.run is None:
        raise TunepilotError("no run: call tunepilot.sdk.init() first")
    return current.run


def log(data: Mapping[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """Log metrics to the current run's current step (see :meth:`Run.log`)."""
    _run().log(data, step=step, commit=commit)


def finish(exit_code: int | None = None) -> None:
    """Send hand-set summary keys; the agent reports the run's end when the function returns."""
    if current.run is not None:
        current.run.finish(exit_code)


def login(*_args: Any, **_kwargs: Any) -> bool:
    """Accepted for W&B compatibility; returns True.

    The sweep server's token comes from ``TUNEPILOT_TOKEN`` or the ``token``
    argument of :func:`init`, ``sweep`` and ``agent``, not from a W&B key.
    """
    return True


_warned: set[str] = set()


def _ignored(name: str, why: str) -> None:
    if name not in _warned:
        _warned.add(name)
        _logger.warning("%s() is accepted and ignored: %s", name, why)


def watch(*_args: Any, **_kwargs: Any) -> None:
    """Accepted for W&B compatibility and ignored (warned once): no gradients are logged."""
    _ignored("watch", "tunepilot logs no gradients or parameters")


def define_metric(*_args: Any, **_kwargs: Any) -> None:
    """Accepted for W&B compatibility and ignored (warned once).

    The summary keeps each metric's last value and the sweep uses it; to make the
    sweep use the best value, set it yourself: ``wandb.summary["loss"] = best``.
    """
    _ignored("define_metric", "the summary keeps each metric's last value and the sweep "
             "uses it; to use the best one, set wandb.summary[name] = best yourself")
