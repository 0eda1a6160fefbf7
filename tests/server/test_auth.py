"""Authentication: with a token configured, every route but the public allowlist refuses."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy import delete, select
from starlette.routing import BaseRoute, Mount, Route

from tunepilot.exceptions import TunepilotError
from tunepilot.server import Settings, create_app, create_token
from tunepilot.server._auth import PUBLIC_PATHS
from tunepilot.server.db import ApiToken, Database

TOKEN = "s3cret-token-for-tests"
#: As the SDK talks: to 127.0.0.1 (the server refuses names not its own), writes as JSON.
LOCAL: dict[str, Any] = {"base_url": "http://127.0.0.1",
                         "headers": {"Content-Type": "application/json"}}
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
    # Every route is tried with a wrong token: no lockout for this client here.
    settings = Settings(db=db_url, token=SecretStr(TOKEN), reaper=False, max_failed_auth=1000)
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
    with TestClient(app, **LOCAL) as client:
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
    with TestClient(app, base_url=LOCAL["base_url"],
                    headers={**LOCAL["headers"], "Authorization": f"Bearer {TOKEN}"}) as client:
        for method, path in _requests(app):
            assert client.request(method, path).status_code != 401, (method, path)
        assert client.get("/dashboard/secret").json() == {"secret": "data"}


def test_unknown_paths_need_the_token_too(app: FastAPI) -> None:
    with TestClient(app, **LOCAL) as client:
        assert client.get("/health/").status_code == 401
        assert client.get("/api/v2/anything").status_code == 401


def test_a_created_token_is_stored_hashed_and_works(db_url: str) -> None:
    token = create_token(db_url, name="ci")
    database = Database(Settings(db=db_url).db_url)
    try:
        with database.session() as session:
            stored = list(session.scalars(select(ApiToken.token_hash)))
        assert token not in stored and len(stored[-1]) == 64
        with TestClient(create_app(Settings(db=db_url, reaper=False)), **LOCAL) as client:
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


def test_failed_tokens_are_limited_per_address(db_url: str) -> None:
    settings = Settings(db=db_url, token=SecretStr(TOKEN), reaper=False, max_failed_auth=5,
                        failed_auth_window=2.0)
    with TestClient(create_app(settings), **LOCAL) as client:
        wrong = {"Authorization": "Bearer guess"}
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert [client.get("/api/v1/sweeps", headers=wrong).status_code
                for _ in range(5)] == [401] * 5
        locked = client.get("/api/v1/sweeps", headers=wrong)
        assert locked.status_code == 429 and 1 <= int(locked.headers["retry-after"]) <= 2
        assert "too many failed" in locked.json()["detail"]
        assert "TUNEPILOT_MAX_FAILED_AUTH" in locked.json()["detail"]
        # Even the right token is not checked while the address is locked out.
        assert client.get("/api/v1/sweeps", headers=right).status_code == 429
        # Requests without a token are not attempts: they get 401, not 429.
        assert client.get("/api/v1/sweeps").status_code == 401
        time.sleep(2.1)
        assert client.get("/api/v1/sweeps", headers=right).status_code == 200


@pytest.mark.parametrize("token", ["a", "x" * 40, "0123456789" * 3])
def test_beyond_loopback_a_weak_token_is_refused(token: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(host="0.0.0.0", token=SecretStr(token))
    message = str(caught.value)
    assert "too weak for a server on 0.0.0.0" in message and "32 random characters" in message
    assert len(token) < 8 or token not in message  # the secret is not repeated


def test_strong_tokens_and_loopback_servers_are_accepted() -> None:
    assert Settings(host="0.0.0.0", token=SecretStr(secrets.token_urlsafe(32))).auth_token
    assert Settings(host="127.0.0.1", token=SecretStr("a")).auth_token == "a"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from tunepilot.cli import main; main()", *args],
                          check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_the_server_command_refuses_a_weak_token_beyond_loopback(tmp_path: Path) -> None:
    done = _cli("server", "--host", "0.0.0.0", "--db", f"sqlite:///{tmp_path}/weak.db",
                env={"TUNEPILOT_TOKEN": "a"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "TUNEPILOT_TOKEN is too weak for a server on 0.0.0.0" in done.stderr


@pytest.mark.slow
def test_tokens_are_listed_and_revoked_by_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tokens.db"
    assert _cli("db", "upgrade", "--db", url).returncode == 0
    ci = _cli("token", "create", "--db", url, "--name", "ci").stdout.strip()
    laptop = _cli("token", "create", "--db", url, "--name", "laptop").stdout.strip()
    listed = json.loads(_cli("token", "list", "--db", url, "--json").stdout)
    assert [(t["id"], t["name"]) for t in listed] == [(1, "ci"), (2, "laptop")]
    assert listed[0]["fingerprint"] == hashlib.sha256(ci.encode()).hexdigest()[:12]
    plain = _cli("token", "list", "--db", url).stdout
    assert ci not in plain and laptop not in plain and "laptop" in plain
    revoked = _cli("token", "revoke", "ci", "--db", url)
    assert revoked.returncode == 0 and "revoked token 1 (ci" in revoked.stdout
    missing = _cli("token", "revoke", "ci", "--db", url)
    assert missing.returncode == 2 and "no token with id or name 'ci'" in missing.stderr
    with TestClient(create_app(Settings(db=url, reaper=False)), **LOCAL) as client:
        assert client.get("/api/v1/sweeps", headers={"Authorization": f"Bearer {ci}"}
                          ).status_code == 401
        assert client.get("/api/v1/sweeps", headers={"Authorization": f"Bearer {laptop}"}
                          ).status_code == 200
    assert _cli("token", "revoke", "2", "--db", url).returncode == 0
    assert json.loads(_cli("token", "list", "--db", url, "--json").stdout) == []
