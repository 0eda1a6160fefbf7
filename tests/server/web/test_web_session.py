"""With a token configured, every dashboard path needs the login's signed session cookie."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete
from starlette.websockets import WebSocketDisconnect

from tunepilot.server import Settings, create_app, create_token
from tunepilot.server._auth import TOKEN_CACHE_SECONDS
from tunepilot.server.db import ApiToken, Database, hash_token
from tunepilot.server.web import DashboardGate
from tunepilot.server.web._session import COOKIE

TOKEN = "dashboard-test-token"
LOCAL = "http://127.0.0.1"


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
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


def dashboard_routes() -> list[tuple[str, str]]:
    from tunepilot.server.web import _api, _pages

    return sorted(
        (method, re.sub(r"\{[^}]+\}", "x", route.path))
        for router in (_api.router, _pages.router) for route in router.routes
        if isinstance(route, APIRoute) for method in route.methods - {"HEAD"}
    )


def form_token(client: TestClient) -> str:
    """The form token the login page carries for this client's form cookie."""
    text = client.get("/ui/login").text
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', text)
    assert found, text[:300]
    return found.group(1)


def login(client: TestClient, token: str = TOKEN, target: str = "/ui/sweeps") -> str:
    answer = client.post("/ui/login", data={"token": token, "next": target,
                                            "csrf": form_token(client)},
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
            # A login posted without the form token is refused before it is read.
            assert bare.status_code == (403 if method == "POST" else 200), (method, path)
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
    wrong = client.post("/ui/login", data={"token": "guess", "next": "/ui/sweeps",
                                           "csrf": form_token(client)})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    assert COOKIE not in client.cookies
    answer = client.post("/ui/login", data={"token": TOKEN, "next": "/ui/sweeps?state=running",
                                            "csrf": form_token(client)},
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
    client.post("/ui/logout", data={"csrf": form_token(client)})
    assert client.get("/ui/sweeps", follow_redirects=False).status_code == 303


def test_forged_expired_and_foreign_cookies_are_refused(app: FastAPI,
                                                         client: TestClient) -> None:
    gate: DashboardGate = app.state.dashboard_gate
    digest = hash_token(TOKEN)
    good = gate.issue(digest)
    forged = [
        good[:-1] + ("A" if good[-1] != "A" else "B"),  # one character changed
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
    with TestClient(create_app(Settings(db=url, reaper=False)), base_url=LOCAL) as client:
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
    with TestClient(create_app(Settings(db=url, reaper=False)), base_url=LOCAL) as client:
        assert client.get("/ui/sweeps").status_code == 200
        assert client.get("/ui/login", follow_redirects=False).status_code == 303


def test_logging_out_ends_the_session_for_a_saved_cookie_too(client: TestClient) -> None:
    login(client)
    saved = client.cookies[COOKIE]
    assert client.get("/ui/sweeps", follow_redirects=False).status_code == 200
    client.post("/ui/logout", data={"csrf": form_token(client)})
    client.cookies.set(COOKIE, saved)
    assert client.get("/ui/sweeps", follow_redirects=False).status_code == 303
    assert client.get("/ui/api/sweeps/x/live").status_code == 401


def test_failed_logins_are_limited_per_address(tmp_path: object) -> None:
    from tunepilot.server import upgrade_database

    url = f"sqlite:///{tmp_path}/limit.db"
    upgrade_database(url)
    settings = Settings(db=url, token=SecretStr(TOKEN), reaper=False, max_failed_auth=3,
                        failed_auth_window=2.0)
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        token = form_token(client)
        tries = [client.post("/ui/login", data={"token": f"guess{i}", "csrf": token})
                 for i in range(3)]
        assert [t.status_code for t in tries] == [401, 401, 401]
        locked = client.post("/ui/login", data={"token": TOKEN, "csrf": token},
                             follow_redirects=False)
        assert locked.status_code == 429 and "try again in" in locked.text
        assert 1 <= int(locked.headers["retry-after"]) <= 2
        # The login page and the API's bearer check count the same failures.
        bearer = client.get("/api/v1/sweeps", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 429
        time.sleep(2.1)
        assert login(client) == "/ui/sweeps"


def test_websockets_under_the_dashboard_need_a_session(tmp_path: object) -> None:
    from tunepilot.server import upgrade_database

    router = APIRouter()

    @router.websocket("/ui/live")
    async def live(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("live")
        await socket.close()

    url = f"sqlite:///{tmp_path}/ws.db"
    upgrade_database(url)
    app = create_app(Settings(db=url, token=SecretStr(TOKEN), reaper=False), routers=[router])
    with TestClient(app, base_url=LOCAL) as client:
        with pytest.raises(WebSocketDisconnect) as closed, \
                client.websocket_connect("ws://127.0.0.1/ui/live"):
            pass
        assert closed.value.code == 1008
        login(client)
        # The browser's cookie (the test client's jar leaves ws:// URLs without it).
        session = {"Cookie": f"{COOKIE}={client.cookies[COOKIE]}"}
        with client.websocket_connect("ws://127.0.0.1/ui/live", headers=session) as socket:
            assert socket.receive_text() == "live"
