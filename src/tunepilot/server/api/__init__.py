"""The REST API: routers mounted under ``/api/v1`` by :func:`tunepilot.server.create_app`."""

from fastapi import APIRouter

from tunepilot.server.api import runs, sweeps
from tunepilot.server.api.health import router as health_router

api_router = APIRouter()
api_router.include_router(sweeps.router)
api_router.include_router(runs.router)

__all__ = ["api_router", "health_router"]
