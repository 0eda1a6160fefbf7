"""``GET /health``: public liveness and database check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from tunepilot.server.api.deps import ContextDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(ctx: ContextDep) -> dict[str, Any]:
    """Whether the server is up and its database answers. Needs no token."""
    with ctx.db.session() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok"}
