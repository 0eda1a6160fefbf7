"""With a token configured, every dashboard path needs the login's signed session cookie."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete

from tunepilot.server import Settings, create_app, create_token
from tunepilot.server._auth import TOKEN_CACHE_SECONDS
from tunepilot.server.db import ApiToken, Database, hash_token
from tunepilot.server.web import DashboardGate
from tunepilot.server.web._session import COOKIE

TOKEN = "dashboard-test-token"


@pytest.fixture
def app(tmp_path: object) -> Iterator[FastAPI]:
    from tunepilot.server import upgrade_database

    url = f"sqlite:///{tmp_path}/auth.db"
    upgrade_database(url)
    app = create_app(Settings(db=url, token=SecretStr(TOKEN), reaper=False))
    yield app
    app.state.tunepilot.close()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def dashboard_routes() -> list[tuple[str, str]]:
    from tunepilot.server.web import _api, _pages

    return sorted(
        (method, re.sub(r"\{[^}]+\}", "x", route.path))
        for router in (_api.router, _pages.router) for route in router.routes
        if isinstance(route, APIRoute) for method in route.methods - {"HEAD"}
    )


def login(client: TestClient, token: str = TOKEN, target: str = "/ui/sweeps") -> str:
    answer = client.post("/ui/login", data={"token": token, "next": target},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def test_every_dashboard_route_needs_a_login(app: FastAPI, client: TestClient) -> None:
    routes = dashboard_routes()
    assert len(routes) >= 20 and ("GET", "/ui/sweeps/x") in routes
    open_paths = {"/ui/login", "/ui/static/plotly.min.js"}
    for method, path in routes:
        bare = client.request(method, path, follow_redirects=False)
        if path in open_paths:
            assert bare.status_code in (200, 401), (method, path, bare.status_code)
        elif method == "GET" and not path.startswith("/ui/api/"):
            assert bare.status_code == 303, (method, path, bare.status_code)
            assert bare.headers["location"].startswith("/ui/login?next=")
        else:
            assert bare.status_code == 401, (method, path, bare.status_code)
    assert client.get("/ui/static/dashboard.css").status_code == 200


def test_the_login_form_sets_a_cookie_that_opens_pages_only(client: TestClient) -> None:
    first = client.get("/ui/sweeps?state=running", follow_redirects=False)
    assert first.headers["location"] == "/ui/login?next=%2Fui%2Fsweeps%3Fstate%3Drunning"
    form = client.get(first.headers["location"])
    assert form.status_code == 200 and 'value="/ui/sweeps?state=running"' in form.text
    wrong = client.post("/ui/login", data={"token": "guess", "next": "/ui/sweeps"})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    assert COOKIE not in client.cookies
    answer = client.post("/ui/login", data={"token": TOKEN, "next": "/ui/sweeps?state=running"},
                         follow_redirects=False)
    assert answer.headers["location"] == "/ui/sweeps?state=running"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    assert client.get("/ui/sweeps").status_code == 200
    assert client.get("/ui/api/sweeps/nosuch/live").status_code == 404
    # The API keeps bearer tokens: the cookie is not one.
    assert client.get("/api/v1/sweeps").status_code == 401
    assert client.get("/api/v1/sweeps",
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    client.post("/ui/logout", data={})
    assert client.get("/ui/sweeps", follow_redirects=False).status_code == 303


def test_forged_expired_and_foreign_cookies_are_refused(app: FastAPI,
                                                         client: TestClient) -> None:
    gate: DashboardGate = app.state.dashboard_gate
    digest = hash_token(TOKEN)
    good = gate.issue(digest)
    expires, tag, mac = good.split(".")
    forged = [
        f"{int(expires) + 10**6}.{tag}.{mac}",  # a later expiry, same signature
        gate.issue(digest, now=0),  # long expired
        DashboardGate(Settings(token=SecretStr("another-server"))).issue(digest),
        gate.issue(hash_token("a token nobody has")),
        "garbage",
    ]
    for value in forged:
        client.cookies.set(COOKIE, value)
        assert client.get("/ui/sweeps", follow_redirects=False).status_code == 303, value
    client.cookies.set(COOKIE, good)
    assert client.get("/ui/sweeps", follow_redirects=False).status_code == 200


def test_logins_only_redirect_inside_the_dashboard(client: TestClient) -> None:
    for target in ("//evil.example/x", "https://evil.example", "/api/v1/sweeps", "/\\evil"):
        assert login(client, target=target) == "/ui/sweeps"


def test_a_database_token_logs_in_and_its_removal_ends_the_session(tmp_path: object) -> None:
    from tunepilot.server import upgrade_database

    url = f"sqlite:///{tmp_path}/tokens.db"
    upgrade_database(url)
    token = create_token(url, name="browser")
    with TestClient(create_app(Settings(db=url, reaper=False))) as client:
        assert client.get("/ui/sweeps", follow_redirects=False).status_code == 303
        login(client, token)
        assert client.get("/ui/sweeps").status_code == 200
        create_token(url, name="keeps authentication on")
        database = Database(Settings(db=url).db_url)
        with database.session() as session:
            session.execute(delete(ApiToken).where(ApiToken.name == "browser"))
        database.dispose()
        # The token table is re-read every few seconds; wait that out rather than patch it.
        time.sleep(TOKEN_CACHE_SECONDS + 0.5)
        assert client.get("/ui/sweeps", follow_redirects=False).status_code == 303


def test_without_any_token_the_dashboard_is_open(tmp_path: object) -> None:
    from tunepilot.server import upgrade_database

    url = f"sqlite:///{tmp_path}/open.db"
    upgrade_database(url)
    with TestClient(create_app(Settings(db=url, reaper=False))) as client:
        assert client.get("/ui/sweeps").status_code == 200
        assert client.get("/ui/login", follow_redirects=False).status_code == 303
