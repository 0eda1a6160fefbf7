"""Creating sweeps, and driving one by hand with :class:`SweepController`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tunepilot.sdk._client import Client
from tunepilot.sdk._values import to_json


def sweep(
    sweep: Mapping[str, Any],
    entity: str | None = None,
    project: str | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
) -> str:
    """Create a sweep from a W&B sweep config and return its id, as ``wandb.sweep``.

    ``entity`` is accepted for W&B code and ignored.

    Raises:
        ClientError: the server refused the config (the message says which field).
    """
    client = Client(url, token)
    try:
        name = project or sweep.get("project") or "uncategorized"
        # One id for the request and its retries: a lost answer makes no second sweep.
        body = {"config": dict(sweep), "project": name, "request_id": uuid.uuid4().hex}
        created: dict[str, Any] = client.post("/sweeps", body)
        return str(created["id"])
    finally:
        client.close()


@dataclass(frozen=True)
class Suggestion:
    """A configuration leased from a sweep by :meth:`SweepController.suggest`."""

    run_id: str
    trial_number: int
    config: dict[str, Any]


class SweepController:
    """Drive a sweep from your own loop: suggest, report, and the lifecycle.

    Example:
        .. code-block:: python

            from tunepilot.sdk import SweepController

            controller = SweepController(config={
                "method": "bayes", "metric": {"name": "loss"},
                "parameters": {"x": {"min": -5.0, "max": 5.0}},
            })
            for _ in range(20):
                suggestion = controller.suggest()
                controller.report(suggestion, (suggestion.config["x"] - 1) ** 2)
            print(controller.best_params())
    """

    def __init__(
        self,
        sweep_id: str | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        project: str | None = None,
        url: str | None = None,
        token: str | None = None,
        client: Client | None = None,
    ) -> None:
        if (sweep_id is None) == (config is None):
            raise ValueError("give either sweep_id or config")
        self.client = client or Client(url, token)
        if sweep_id is None:
            assert config is not None
            body = {"config": dict(config), "project": project or "uncategorized",
                    "request_id": uuid.uuid4().hex}
            sweep_id = str(self.client.post("/sweeps", body)["id"])
        self.sweep_id = sweep_id
        self._metric: str | None = None

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()

    def __enter__(self) -> SweepController:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def suggest(self, agent: str | None = None) -> Suggestion:
        """Lease the next configuration.

        Raises:
            ClientError: with ``status`` 409 and a ``reason`` when nothing is handed out.
        """
        lease = self.client.post(f"/sweeps/{self.sweep_id}/suggest",
                                 {"agent": agent, "request_id": uuid.uuid4().hex})
        return Suggestion(lease["run_id"], lease["trial_number"], lease["config"])

    def heartbeat(self, suggestion: Suggestion | str) -> bool:
        """Keep a long evaluation's lease; returns True when the server asks to stop it."""
        answer = self.client.post(f"/runs/{_run_id(suggestion)}/heartbeat")
        return bool(answer["stop"])

    def report(
        self,
        suggestion: Suggestion | str,
        value: float | None = None,
        *,
        summary: Mapping[str, Any] | None = None,
        state: str = "finished",
    ) -> dict[str, Any]:
        """Finish a run with its metric ``value`` (and any other summary keys)."""
        merged = dict(summary or {})
        if value is not None:
            merged[self._metric_name()] = value
        run: dict[str, Any] = self.client.post(
            f"/runs/{_run_id(suggestion)}/finish",
            {"state": state, "summary": to_json(merged, "summary")},
        )
        return run

    def _metric_name(self) -> str:
        if self._metric is None:
            sweep = self.client.get(f"/sweeps/{self.sweep_id}")
            name = sweep["metric"]["name"]
            if not name:
                raise ValueError("the sweep has no metric; pass summary= instead of a value")
            self._metric = str(name)
        return self._metric

    def _action(self, action: str) -> dict[str, Any]:
        sweep: dict[str, Any] = self.client.post(f"/sweeps/{self.sweep_id}/{action}")
        return sweep

    def pause(self) -> dict[str, Any]:
        """Stop handing out runs until :meth:`resume`."""
        return self._action("pause")

    def resume(self) -> dict[str, Any]:
        """Hand out runs again."""
        return self._action("resume")

    def finish(self) -> dict[str, Any]:
        """End the sweep; running runs may still report."""
        return self._action("finish")

    def cancel(self) -> dict[str, Any]:
        """End the sweep and ask running runs to stop."""
        return self._action("cancel")

    def stats(self) -> dict[str, Any]:
        """Run counts by state and the best run."""
        stats: dict[str, Any] = self.client.get(f"/sweeps/{self.sweep_id}/stats")
        return stats

    def best_params(self) -> dict[str, Any] | None:
        """The config of the best finished run, or None before the first."""
        best = self.stats()["best_config"]
        return dict(best) if best is not None else None


def _run_id(suggestion: Suggestion | str) -> str:
    return suggestion.run_id if isinstance(suggestion, Suggestion) else suggestion
