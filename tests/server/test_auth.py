"""Authentication: with a token configured, every route but the public allowlist refuses."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute, Mount, Route
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete, select

from tunepilot.exceptions import TunepilotError
from tunepilot.server import Settings, create_app, create_token
from tunepilot.server._auth import PUBLIC_PATHS
from tunepilot.server.db import ApiToken, Database

TOKEN = "s3cret-token-for-tests"
EXPECTED_PUBLIC = {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _later_router() -> APIRouter:
    # Stands in for a router mounted later (dashboard, online optimizer).
    router = APIRouter()

    @router.get("/dashboard/secret")
    def secret() -> dict[str, str]:
        return {"secret": "data"}

    return router


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:
    settings = Settings(db=db_url, token=SecretStr(TOKEN), reaper=False)
    app = create_app(settings, routers=[_later_router()])
    yield app
    # A test that never starts the app (no lifespan) would leave its pool open.
    app.state.tunepilot.close()


def _requests(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves: the OpenAPI operations (every router,
    included ones too, since none is hidden from the schema) plus the plain routes
    FastAPI adds itself (the schema and the docs pages)."""
    out = {
        (method.upper(), re.sub(r"\{[^}]+\}", "x", path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    for route in app.routes:
        if isinstance(route, Route):
            out.update((m, route.path) for m in (route.methods or {"GET"}) - {"HEAD"})
    return sorted(out)


def _served(routes: list[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    """Every (method, path) of the routing tree itself, routers included at any depth
    and routes hidden from the schema too (a mount counts as method ``*``)."""
    out: set[tuple[str, str]] = set()
    for route in routes:
        inner = getattr(route, "original_router", None)  # a router included by FastAPI
        if inner is not None:
            out |= _served(inner.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        elif isinstance(route, Mount):
            out.add(("*", prefix + route.path))
        elif isinstance(route, Route) or hasattr(route, "methods"):
            path = re.sub(r"\{[^}]+\}", "x", prefix + route.path)  # type: ignore[attr-defined]
            out.update((m, path) for m in (route.methods or {"GET"}) - {"HEAD"})  # type: ignore[attr-defined]
    return out


def test_the_enumeration_misses_no_route(app: FastAPI) -> None:
    # Routes outside the schema are the dashboard's, which its own test walks
    # route by route (tests/server/web/test_web_session.py); nothing else may hide.
    served = _served(app.routes)
    assert ("POST", "/api/v1/sweeps/x/suggest") in served and ("GET", "/dashboard/secret") in served
    hidden = served - set(_requests(app))
    assert hidden and all(path.startswith("/ui") or path == "/" for _, path in hidden), sorted(hidden)


def test_every_route_refuses_a_request_without_the_token(app: FastAPI) -> None:
    assert PUBLIC_PATHS == EXPECTED_PUBLIC
    requests = _requests(app)
    assert ("POST", "/api/v1/sweeps/x/suggest") in requests
    assert ("GET", "/dashboard/secret") in requests
    assert len(requests) >= 25
    with TestClient(app) as client:
        for method, path in requests:
            bare = client.request(method, path)
            wrong = client.request(method, path, headers={"Authorization": "Bearer wrong"})
            if path in EXPECTED_PUBLIC:
                assert bare.status_code == 200, (method, path)
            else:
                assert bare.status_code == 401, (method, path, bare.status_code)
                assert wrong.status_code == 401, (method, path)
                assert "TUNEPILOT_TOKEN" in bare.json()["detail"]


def test_the_token_opens_every_route(app: FastAPI) -> None:
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for method, path in _requests(app):
            assert client.request(method, path).status_code != 401, (method, path)
        assert client.get("/dashboard/secret").json() == {"secret": "data"}


def test_unknown_paths_need_the_token_too(app: FastAPI) -> None:
    with TestClient(app) as client:
        assert client.get("/health/").status_code == 401
        assert client.get("/api/v2/anything").status_code == 401


def test_a_created_token_is_stored_hashed_and_works(db_url: str) -> None:
    token = create_token(db_url, name="ci")
    database = Database(Settings(db=db_url).db_url)
    try:
        with database.session() as session:
            stored = list(session.scalars(select(ApiToken.token_hash)))
        assert token not in stored and len(stored[-1]) == 64
        with TestClient(create_app(Settings(db=db_url, reaper=False))) as client:
            assert client.get("/api/v1/sweeps").status_code == 401
            ok = client.get("/api/v1/sweeps", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
    finally:
        # The PostgreSQL database is shared by the session's tests: stored tokens
        # would switch authentication on for all that follow.
        with database.session() as session:
            session.execute(delete(ApiToken))
        database.dispose()


def test_the_server_refuses_a_public_address_without_a_token(tmp_path: object) -> None:
    from tunepilot.cli._server import serve
    from tunepilot.server import upgrade_database

    url = f"sqlite:///{tmp_path}/public.db"
    upgrade_database(url)
    with pytest.raises(TunepilotError, match="refusing to listen on 0.0.0.0 without an API token"):
        serve(Settings(db=url, host="0.0.0.0"))
