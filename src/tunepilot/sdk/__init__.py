"""A W&B-compatible client of the tunepilot sweep server.

Usable in place of W&B's sweep API::

    import tunepilot.sdk as wandb

    def train():
        wandb.init(config={"epochs": 5})
        for epoch in range(wandb.config.epochs):
            wandb.log({"loss": 1 / (epoch + 1) * wandb.config.lr}, step=epoch)

    sweep_id = wandb.sweep({"method": "random", "metric": {"name": "loss"},
                            "parameters": {"lr": {"min": 0.001, "max": 0.1}}},
                           project="demo")
    wandb.agent(sweep_id, function=train, count=10)

``wandb.init()`` also works as a context manager (``with wandb.init() as run:``),
and ``wandb.run`` is the current run (``None`` before ``init()``). ``login`` is
accepted; ``watch`` and ``define_metric`` are accepted and ignored with a warning.

The server URL and token come from arguments or ``TUNEPILOT_URL`` and
``TUNEPILOT_TOKEN``. The SDK speaks HTTP only (httpx); it never imports the server.
"""

from typing import Any

from tunepilot.sdk._agent import AgentTerminated, agent, expand_command
from tunepilot.sdk._client import Client
from tunepilot.sdk._run import (
    Config,
    Run,
    RunStopped,
    Summary,
    config,
    define_metric,
    finish,
    init,
    log,
    login,
    summary,
    watch,
)
from tunepilot.sdk._sweep import Suggestion, SweepController, sweep

__all__ = [
    "AgentTerminated",
    "Client",
    "Config",
    "Run",
    "RunStopped",
    "Suggestion",
    "Summary",
    "SweepController",
    "agent",
    "config",
    "define_metric",
    "expand_command",
    "finish",
    "init",
    "log",
    "login",
    "summary",
    "sweep",
    "watch",
]


def __getattr__(name: str) -> Any:
    """``wandb.run``: the current run, read when asked (it changes with each ``init()``)."""
    if name == "run":
        from tunepilot.sdk._run import current

        return current.run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
