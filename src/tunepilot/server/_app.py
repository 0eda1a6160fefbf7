"""The app factory: one FastAPI app, settings object, auth layer and session factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tunepilot.exceptions import (
    ConflictError,
    DatabaseError,
    NotFoundError,
    SearchSpaceError,
    SpecError,
    TunepilotError,
)
from tunepilot.online._api import OTLP_PATHS, online_router, otlp_router
from tunepilot.online._otlp import IngestLimits
from tunepilot.online._service import OnlineService
from tunepilot.server._auth import TokenAuth, lockout_for
from tunepilot.server._guard import RequestGuard
from tunepilot.server._context import ServerContext
from tunepilot.server._reaper import Reaper
from tunepilot.server._runs import RunService
from tunepilot.server._settings import Settings, is_loopback
from tunepilot.server.api import api_router, health_router
from tunepilot.server.db import OnlineStateStore, token_digests
from tunepilot.server.web import mount_dashboard

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, *, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """Build the server app over the database in ``settings``.

    The database must be migrated (``tunepilot db upgrade``). Every route, including
    those in ``routers`` and any mounted later, needs the bearer token once one is
    configured, except ``/health`` and the API description; and every request passes
    the checks of :class:`~tunepilot.server._guard.RequestGuard` (Host, content type,
    body size) first.

    Args:
        settings: defaults to :class:`Settings` read from ``TUNEPILOT_*`` variables.
        routers: more routers to mount beside the sweep API (dashboard, online optimizer).

    Raises:
        DatabaseError: the database is unreachable or not migrated.
        TunepilotError: ``settings.host`` is not a loopback address and no token is
            configured (``TUNEPILOT_TOKEN`` or ``tunepilot token create``).

    Example:
        .. code-block:: python

            from fastapi.testclient import TestClient
            from tunepilot.server import Settings, create_app, upgrade_database

            upgrade_database("sqlite:///sweeps.db")
            with TestClient(create_app(Settings(db="sqlite:///sweeps.db"))) as client:
                assert client.get("/health").json() == {"status": "ok"}
    """
    settings = settings if settings is not None else Settings()
    ctx = ServerContext.open(settings)
    if not is_loopback(settings.host) and not settings.auth_token and not token_digests(ctx.db):
        ctx.close()
        raise TunepilotError(
            f"refusing to listen on {settings.host} without an API token: set "
            "TUNEPILOT_TOKEN, or run 'tunepilot token create', or bind 127.0.0.1"
        )
    reaper = Reaper(RunService(ctx), period=settings.reaper_period)
    try:
        # TUNEPILOT_ONLINE_* settings: the apps file, the step interval, a Redis stream.
        # Apps, decisions and rollouts live in this database, so a restart keeps them.
        online = OnlineService.from_settings(state=OnlineStateStore(ctx.db))
    except BaseException:
        ctx.close()
        raise

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.reaper:
            reaper.start()
        await online.start()
        try:
            yield
        finally:
            await online.stop()
            reaper.stop()
            ctx.close()

    from tunepilot import __version__

    app = FastAPI(
        title="tunepilot",
        version=__version__,
        description="Self-hosted sweeps over Optuna: W&B-compatible configs, agents, liveness.",
        lifespan=lifespan,
    )
    app.state.tunepilot = ctx
    app.state.reaper = reaper
    app.state.online = online
    app.state.ingest_limits = IngestLimits(
        max_decompressed_bytes=settings.max_decompressed_bytes,
        max_items=settings.max_batch_items,
    )
    lockout = lockout_for(settings)
    app.state.lockout = lockout
    app.include_router(health_router)
    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(online_router)
    app.include_router(otlp_router)
    for router in routers:
        app.include_router(router)
    # The dashboard's pages take a session cookie from its login form instead of a header.
    gate = mount_dashboard(app, settings, lockout=lockout)
    _add_error_handlers(app)
    # Token lookups only read: on SQLite they must not wait for a writer's lock.
    app.add_middleware(TokenAuth, settings=settings, database=ctx.reading().db, gate=gate,
                       lockout=lockout)
    # Added last, so it runs first: a foreign Host never reaches the token check.
    app.add_middleware(RequestGuard, settings=settings, forms=gate.handles,
                       protobuf_paths=OTLP_PATHS)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        reason = exc.reason if isinstance(exc, ConflictError) else None
        return JSONResponse({"detail": str(exc), "reason": reason}, status_code=409)

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    async def unprocessable(_: Request, exc: Exception) -> JSONResponse:
        # Without the offending input: it may hold NaN, which JSON cannot carry back.
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in errors
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(RequestValidationError, unprocessable)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(ConflictError, conflict)
    app.add_exception_handler(SearchSpaceError, invalid)
    app.add_exception_handler(SpecError, invalid)
    app.add_exception_handler(DatabaseError, unavailable)
