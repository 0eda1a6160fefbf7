"""FastAPI dependencies, as ``Annotated`` aliases routers import from one place."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from tunepilot.server._analysis import AnalysisService
from tunepilot.server._context import ServerContext
from tunepilot.server._runs import RunService
from tunepilot.server._settings import Settings
from tunepilot.server._sweeps import SweepService


def get_context(request: Request) -> ServerContext:
    """The app's shared context (settings, database, storage, locks).

    A GET or HEAD request only reads: it gets the read-only view, which on SQLite
    never waits for a writer's lock.
    """
    context: ServerContext = request.app.state.tunepilot
    return context.reading() if request.method in ("GET", "HEAD") else context


ContextDep = Annotated[ServerContext, Depends(get_context)]


def get_settings(ctx: ContextDep) -> Settings:
    return ctx.settings


def get_sweeps(ctx: ContextDep) -> SweepService:
    return SweepService(ctx)


def get_runs(ctx: ContextDep) -> RunService:
    return RunService(ctx)


def get_analysis(ctx: ContextDep) -> AnalysisService:
    return AnalysisService(ctx)


SettingsDep = Annotated[Settings, Depends(get_settings)]
SweepsDep = Annotated[SweepService, Depends(get_sweeps)]
RunsDep = Annotated[RunService, Depends(get_runs)]
AnalysisDep = Annotated[AnalysisService, Depends(get_analysis)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="Items to skip.")]
