"""The web dashboard: sweeps, runs and studies in the browser, served by the server app.

Pages are Jinja2 templates with autoescape; charts are drawn by Plotly, whose
JavaScript is served from the installed ``plotly`` package. With a token
configured, a login form sets a signed session cookie that every page needs.

Example:
    .. code-block:: python

        from fastapi.testclient import TestClient
        from tunepilot.server import Settings, create_app, upgrade_database

        upgrade_database("sqlite:///sweeps.db")
        with TestClient(create_app(Settings(db="sqlite:///sweeps.db"))) as client:
            assert "Sweeps" in client.get("/ui/sweeps").text
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tunepilot.server._lockout import Lockout
from tunepilot.server._settings import Settings
from tunepilot.server.web._api import router as _api_router
from tunepilot.server.web._pages import router as _pages_router
from tunepilot.server.web._session import CSP, CSP_WEBGL, DashboardGate

STATIC = Path(__file__).parent / "static"


def mount_dashboard(
    app: FastAPI, settings: Settings, *, lockout: Lockout | None = None
) -> DashboardGate:
    """Add the dashboard's routes and static files to ``app``; return its session gate.

    The gate must be given to :class:`~tunepilot.server._auth.TokenAuth` so that the
    dashboard's paths take the session cookie; ``lockout`` is the failure counter it
    shares with the API's token check.
    """
    gate = DashboardGate(settings, lockout=lockout)
    app.state.dashboard_gate = gate
    app.include_router(_api_router)
    app.include_router(_pages_router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="dashboard-static")
    return gate


__all__ = ["CSP", "CSP_WEBGL", "DashboardGate", "mount_dashboard"]
