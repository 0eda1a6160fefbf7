"""Every route, walked: foreign Host names, cross-site writes and oversized bodies are refused.

Routes are read from the app's routing tree itself (routers, the dashboard, mounts,
websockets), as the token-coverage test in ``test_auth.py`` reads them, so a route
added later is walked too; one added through ``routers=`` stands for it here. The
browser-driven cross-site cases are in ``web/test_web_cross_site.py``.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from tunepilot.server import Settings, create_app

LOCAL = "http://127.0.0.1"
JSON = {"Content-Type": "application/json"}
#: Small limits, so that an oversized body is cheap to send.
LIMITS: dict[str, Any] = {"max_body_bytes": 4096, "max_form_bytes": 2048,
                          "max_decompressed_bytes": 64 * 1024, "max_batch_items": 50,
                          "max_config_bytes": 2048, "max_config_leaves": 40}
CONFIG = {"method": "random", "metric": {"name": "loss"},
          "parameters": {"x": {"min": 0.0, "max": 1.0}}}
#: Browsers send these from any page without asking the server first (no CORS preflight).
SIMPLE_BODIES: list[tuple[str | None, bytes]] = [
    (None, b""),
    ("text/plain", b'{"config": {}}'),
    ("application/x-www-form-urlencoded", b"config=x"),
    ("multipart/form-data; boundary=b", b"--b--\r\n"),
]


def _later_router() -> APIRouter:
    # Stands in for a route mounted later: it gets every check without doing anything.
    router = APIRouter()

    @router.post("/later/write")
    def write() -> dict[str, bool]:
        return {"written": True}

    @router.websocket("/ui/later/live")
    async def live(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("live")
        await socket.close()

    return router


@pytest.fixture
def app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    monkeypatch.setenv("TUNEPILOT_ONLINE_STEP_INTERVAL", "3600")
    app = create_app(Settings(db=db_url, reaper=False, **LIMITS), routers=[_later_router()])
    yield app
    app.state.tunepilot.close()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


def routes(tree: list[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    """Every (method, path) the routing tree serves, path parameters as ``x``.

    A mount counts as ``GET`` and ``POST`` below it; a websocket route as ``WS``.
    """
    out: set[tuple[str, str]] = set()
    for route in tree:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out |= routes(inner.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        elif isinstance(route, Mount):
            out |= {("GET", prefix + route.path + "/x"), ("POST", prefix + route.path + "/x")}
        elif isinstance(route, WebSocketRoute) or type(route).__name__ == "APIWebSocketRoute":
            out.add(("WS", re.sub(r"\{[^}]+\}", "x", prefix + route.path)))  # type: ignore[attr-defined]
        elif isinstance(route, Route) or hasattr(route, "methods"):
            path = re.sub(r"\{[^}]+\}", "x", prefix + route.path)  # type: ignore[attr-defined]
            out.update((m, path) for m in (route.methods or {"GET"}) - {"HEAD"})  # type: ignore[attr-defined]
    return out


def writes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted((m, p) for m, p in routes(app.routes) if m in ("POST", "PUT", "PATCH", "DELETE"))


def total(client: TestClient) -> int:
    """How many sweeps the database holds (PostgreSQL's is shared by the session's tests)."""
    count: int = client.get("/api/v1/sweeps").json()["total"]
    return count


def is_form(path: str) -> bool:
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def test_the_walk_sees_every_kind_of_route(app: FastAPI) -> None:
    seen = routes(app.routes)
    for expected in [("POST", "/api/v1/sweeps"), ("POST", "/api/v1/sweeps/x/pause"),
                     ("PATCH", "/api/v1/runs/x/summary"), ("POST", "/api/v1/online/events"),
                     ("PUT", "/api/v1/online/apps/x"), ("DELETE", "/api/v1/online/apps/x"),
                     ("POST", "/v1/traces"), ("POST", "/ui/sweeps/new"), ("POST", "/ui/login"),
                     ("POST", "/ui/logout"), ("GET", "/ui/static/x"), ("GET", "/health"),
                     ("POST", "/later/write"), ("WS", "/ui/later/live")]:
        assert expected in seen, expected
    assert len(writes(app)) >= 20


def test_a_foreign_host_name_gets_nothing_from_any_route(app: FastAPI, client: TestClient) -> None:
    # DNS rebinding: a page of attacker.example, whose name now resolves to 127.0.0.1.
    for method, path in sorted(routes(app.routes)):
        if method == "WS":
            with pytest.raises(WebSocketDisconnect) as closed, \
                    client.websocket_connect(f"ws://attacker.example{path}"):
                pass
            assert "TUNEPILOT_ALLOWED_HOSTS" in closed.value.reason
            continue
        answer = client.request(method, path, headers={"Host": "attacker.example:8000", **JSON})
        assert answer.status_code == 400, (method, path, answer.status_code)
        assert "TUNEPILOT_ALLOWED_HOSTS" in answer.json()["detail"]
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "10.1.2.3", "LOCALHOST."):
        assert client.get("/health", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_name_more_names(db_url: str) -> None:
    with TestClient(create_app(Settings(db=db_url, reaper=False,
                                        allowed_hosts="sweeps.internal, gpu-box")),
                    base_url="http://gpu-box:8000") as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health", headers={"Host": "sweeps.internal"}).status_code == 200
        assert client.get("/health", headers={"Host": "other.internal"}).status_code == 400
    assert Settings(allowed_hosts="*").allowed_hosts == ["*"]


def test_no_api_write_takes_a_body_a_browser_sends_cross_site(
    app: FastAPI, client: TestClient
) -> None:
    sweep = client.post("/api/v1/sweeps", json={"config": CONFIG}).json()["id"]
    for method, path in writes(app):
        if is_form(path) or method == "DELETE":
            continue  # forms: the next test; DELETE: browsers always ask first
        path = path.replace("/sweeps/x/", f"/sweeps/{sweep}/")
        for kind, body in SIMPLE_BODIES:
            headers = {"Content-Type": kind} if kind else {}
            answer = client.request(method, path, content=body, headers=headers)
            assert answer.status_code == 415, (method, path, kind, answer.status_code)
            assert "application/json" in answer.json()["detail"]
    # The no-cors fetch that paused a sweep from another site: refused, nothing changed.
    assert client.post(f"/api/v1/sweeps/{sweep}/pause").status_code == 415
    assert client.get(f"/api/v1/sweeps/{sweep}").json()["state"] == "running"
    assert client.post(f"/api/v1/sweeps/{sweep}/pause", headers=JSON).status_code == 200
    # OTLP also takes protobuf; other routes do not.
    proto = {"Content-Type": "application/x-protobuf"}
    assert client.post("/v1/traces", content=b"", headers=proto).status_code == 200
    assert client.post("/api/v1/online/events", content=b"", headers=proto).status_code == 415
    events = client.get("/api/v1/online/stats").json()["events"]
    assert events["accepted"] == 0 and events["rejected_batches"] == {}


def _form_token(client: TestClient) -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', client.get("/ui/sweeps").text)
    assert found
    return found.group(1)


def test_no_dashboard_form_is_taken_from_another_origin_or_without_its_token(
    app: FastAPI, client: TestClient
) -> None:
    sweep = client.post("/api/v1/sweeps", json={"config": CONFIG}, headers=JSON).json()["id"]
    before = total(client)
    token = _form_token(client)
    forms = [(m, p) for m, p in writes(app) if is_form(p)]
    assert ("POST", "/ui/sweeps/new") in forms and ("POST", "/ui/sweeps/x/x") in forms
    refused: list[dict[str, str]] = [
        {"Origin": "null"},  # a sandboxed iframe or a data: page
        {"Origin": "http://attacker.example"},
        {"Origin": "http://127.0.0.1:9999"},  # another port is another origin
        {"Origin": LOCAL, "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ]
    for method, path in forms:
        path = path.replace("/sweeps/x/x", f"/sweeps/{sweep}/pause")
        data = {"csrf": token, "config": json.dumps(CONFIG), "token": "x"}
        for headers in refused:
            answer = client.request(method, path, data=data, headers=headers)
            assert answer.status_code == 403, (method, path, headers, answer.status_code)
        for missing in ({}, {"csrf": "0" * 64}):
            answer = client.request(method, path, data={**data, "csrf": missing.get("csrf", "")})
            assert answer.status_code == 403 and "form token" in answer.json()["detail"]
    assert client.get(f"/api/v1/sweeps/{sweep}").json()["state"] == "running"
    assert total(client) == before
    # The same form from the dashboard's own page goes through.
    done = client.post(f"/ui/sweeps/{sweep}/pause", data={"csrf": token},
                       headers={"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"},
                       follow_redirects=False)
    assert done.status_code == 303
    assert client.get(f"/api/v1/sweeps/{sweep}").json()["state"] == "paused"


def test_a_new_client_gets_a_form_cookie_and_forms_carry_its_token(client: TestClient) -> None:
    page = client.get("/ui/sweeps/new")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("tunepilot_csrf=") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert token and token.group(1) == _form_token(client)
    # Another browser (another form cookie) gets another token. (No second lifespan.)
    other = TestClient(client.app, base_url=LOCAL)
    assert _form_token(other) != token.group(1)


def readers(app: FastAPI) -> set[tuple[str, str]]:
    """The API routes that read a request body: declared in the schema, or read raw."""
    declared = {
        (method.upper(), re.sub(r"\{[^}]+\}", "x", path))
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items() if "requestBody" in operation
    }
    return declared | {("POST", "/api/v1/online/events"), ("POST", "/v1/traces")}


def test_every_write_refuses_an_oversized_body_before_reading_it(
    app: FastAPI, client: TestClient
) -> None:
    big = b"x" * (LIMITS["max_body_bytes"] + 1)
    for method, path in writes(app):
        declared = client.request(method, path, content=big, headers=JSON)
        assert declared.status_code == 413, (method, path, declared.status_code)
        detail = declared.json()["detail"]
        assert "4 KiB (4,096 bytes)" in detail and "TUNEPILOT_MAX_BODY_BYTES" in detail

    # Without Content-Length (chunked): counted as it arrives, whoever reads it.
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    reading = readers(app)
    assert len(reading) >= 10 and ("POST", "/api/v1/sweeps") in reading
    for method, path in sorted(reading):
        streamed = client.request(method, path, content=chunks(), headers=JSON)
        assert streamed.status_code == 413, (method, path, streamed.status_code)


def test_a_dashboard_form_over_its_limit_is_refused(client: TestClient) -> None:
    token = _form_token(client)
    answer = client.post("/ui/sweeps/new", data={"csrf": token, "config": "x" * 3000})
    assert answer.status_code == 413
    assert "TUNEPILOT_MAX_FORM_BYTES" in answer.json()["detail"]


def test_a_sweep_config_over_its_limits_is_not_stored(client: TestClient) -> None:
    before = total(client)
    many = {**CONFIG, "parameters": {f"p{i}": {"values": [1, 2, 3]} for i in range(20)}}
    answer = client.post("/api/v1/sweeps", json={"config": many}, headers=JSON)
    assert answer.status_code == 422
    assert "more than 40 values" in answer.json()["detail"]
    assert "TUNEPILOT_MAX_CONFIG_LEAVES" in answer.json()["detail"]
    long = {**CONFIG, "description": "d" * 3000}
    answer = client.post("/api/v1/sweeps", json={"config": long}, headers=JSON)
    assert answer.status_code == 422 and "TUNEPILOT_MAX_CONFIG_BYTES" in answer.json()["detail"]
    # The dashboard's form goes through the same check.
    token = _form_token(client)
    form = client.post("/ui/sweeps/new", data={"csrf": token, "config": json.dumps(many)})
    assert form.status_code == 422 and "TUNEPILOT_MAX_CONFIG_LEAVES" in form.text
    assert total(client) == before


def test_a_yaml_anchor_bomb_in_the_sweep_form_is_refused(client: TestClient) -> None:
    # 399 bytes that expanded to 4.8 million stored values.
    lines = ["method: random", "parameters: {x: {values: [1, 2]}}", 'a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 8)]
    before = total(client)
    started = time.perf_counter()
    answer = client.post("/ui/sweeps/new", data={"csrf": _form_token(client),
                                                 "config": "\n".join(lines)})
    assert answer.status_code == 422 and "TUNEPILOT_MAX_YAML_NODES" in answer.text
    assert time.perf_counter() - started < 5
    assert total(client) == before


def _spans_protobuf(n: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(n):
        scope.spans.add(trace_id=bytes(16), span_id=i.to_bytes(8, "big"), name="call")
    data: bytes = request.SerializeToString()
    return data


def test_otlp_and_events_are_bounded_before_they_are_parsed(client: TestClient) -> None:
    proto = {"Content-Type": "application/x-protobuf"}
    # 51 spans (the limit is 50 here), refused from the wire format.
    answer = client.post("/v1/traces", content=_spans_protobuf(51), headers=proto)
    assert answer.status_code == 413 and b"more than 50 spans" in answer.content
    assert client.post("/v1/traces", content=_spans_protobuf(50), headers=proto).status_code == 200
    # A gzip bomb: a few hundred bytes that inflate past the limit (64 KiB here).
    bomb = gzip.compress(b"\0" * (1024 * 1024))
    assert len(bomb) < LIMITS["max_body_bytes"]
    answer = client.post("/v1/traces", content=bomb,
                         headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert answer.status_code == 413
    assert "inflates to more than 65,536 bytes" in answer.json()["message"]
    assert "TUNEPILOT_MAX_DECOMPRESSED_BYTES" in answer.json()["message"]
    spans = {"resourceSpans": [{"scopeSpans": [{"spans": [{}] * 51}]}]}
    answer = client.post("/v1/traces", json=spans, headers=JSON)
    assert answer.status_code == 413 and "more than 50 spans" in answer.json()["message"]
    # Events: more JSON objects than 50 events could hold (64 each) is refused unparsed.
    answer = client.post("/api/v1/online/events", content=b"[" + b"{" * 3300, headers=JSON)
    assert answer.status_code == 413 and "TUNEPILOT_MAX_BATCH_ITEMS" in answer.json()["detail"]
    assert client.get("/api/v1/online/stats").json()["events"]["accepted"] == 0


def test_websockets_under_the_dashboard_need_the_same_origin(client: TestClient) -> None:
    url = "ws://127.0.0.1/ui/later/live"
    with client.websocket_connect(url, headers={"Origin": LOCAL}) as socket:
        assert socket.receive_text() == "live"
    for origin in ("http://attacker.example", "null", "http://127.0.0.1:9999"):
        with pytest.raises(WebSocketDisconnect) as closed, \
                client.websocket_connect(url, headers={"Origin": origin}):
            pass
        assert closed.value.code == 1008
