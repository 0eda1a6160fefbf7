"""Fail late and helpfully when the ``server`` extra is missing (Optuna's ``try_import``)."""

from __future__ import annotations

import importlib

_REQUIRED = ("fastapi", "uvicorn", "sqlalchemy", "alembic", "pydantic_settings", "httpx",
             "jinja2", "plotly")


def check_server_extra() -> None:
    """Raise ImportError naming the extra if a package the server needs is missing."""
    missing = []
    for name in _REQUIRED:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            f"the sweep server needs {', '.join(missing)}; "
            "install them with: pip install 'tunepilot[server]'"
        )
