"""Command-line interface: ``tunepilot run SPEC.yaml`` and friends."""

from tunepilot.cli._app import app, main

__all__ = ["app", "main"]
