"""Cross-site attacks from a real browser: another origin's pages cannot change anything.

The server runs without a token, as by default; a second server on another port of
127.0.0.1 plays the attacker's site (another origin, and the same site, so even
``SameSite=Strict`` cookies go along). For DNS rebinding, Chromium resolves an
attacker's name to 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tunepilot.testing import SweepServer

CONFIG = {"method": "random", "metric": {"name": "loss"},
          "parameters": {"x": {"min": 0.0, "max": 1.0}}}
#: Debian's Chromium, as the conftest's browser; the rebinding test starts a second one.
CHROMIUM = "/usr/bin/chromium"


class Attacker:
    """A site on another port of 127.0.0.1 that serves the pages it is given."""

    def __init__(self) -> None:
        pages: dict[str, str] = {}
        self.pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[tuple[SweepServer, str]]:
    with SweepServer(f"sqlite:///{tmp_path}/sweeps.db") as server:
        sweep = httpx.post(f"{server.url}/api/v1/sweeps", json={"config": CONFIG}).json()["id"]
        yield server, sweep


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    site = Attacker()
    yield site
    site.close()


def sweeps(server: SweepServer) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(f"{server.url}/api/v1/sweeps").json()["items"]
    return items


def answered(page: Any, url: str, visit: str) -> int:
    """Open ``visit`` and return the status of the server's answer to ``url``."""
    with page.expect_response(lambda r: r.url.startswith(url), timeout=90_000) as response:
        page.goto(visit)
    status: int = response.value.status
    return status


@pytest.mark.slow
def test_another_origin_cannot_post_the_dashboards_forms(
    browser: Any, target: tuple[SweepServer, str], attacker: Attacker
) -> None:
    server, sweep = target
    form = (f'<form method="post" action="{server.url}/ui/sweeps/new">'
            '<textarea name="config">method: random\nparameters: {x: {values: [1, 2]}}</textarea>'
            '<input name="start" value="on"></form><script>document.forms[0].submit()</script>')
    # A sandboxed frame: its requests say Origin: null, which the old check let through.
    attacker.pages["/sandboxed"] = (
        f'<iframe sandbox="allow-forms allow-scripts" srcdoc="{form.replace(chr(34), "&quot;")}">'
        "</iframe>")
    attacker.pages["/direct"] = (
        f'<form method="post" action="{server.url}/ui/sweeps/{sweep}/pause">'
        '<input name="next" value="/ui/sweeps"></form><script>document.forms[0].submit()</script>')
    context = browser.new_context()
    page = context.new_page()
    try:
        # The victim has used the dashboard: the browser holds its form cookie.
        page.goto(f"{server.url}/ui/sweeps")
        assert answered(page, f"{server.url}/ui/sweeps/new", f"{attacker.url}/sandboxed") == 403
        assert answered(page, f"{server.url}/ui/sweeps/{sweep}/pause",
                        f"{attacker.url}/direct") == 403
    finally:
        context.close()
    assert [s["id"] for s in sweeps(server)] == [sweep]
    assert sweeps(server)[0]["state"] == "running"


@pytest.mark.slow
def test_another_origin_cannot_write_through_the_api_with_no_cors_requests(
    browser: Any, target: tuple[SweepServer, str], attacker: Attacker
) -> None:
    server, sweep = target
    attacker.pages["/fetch"] = f"""<script>
      const done = [];
      fetch("{server.url}/api/v1/sweeps/{sweep}/pause", {{method: "POST", mode: "no-cors"}})
        .finally(() => done.push("pause"));
      fetch("{server.url}/api/v1/online/events", {{method: "POST", mode: "no-cors",
        headers: {{"Content-Type": "text/plain"}},
        body: JSON.stringify([{{app: "a", variant: "b", event_id: "e", timestamp: 1}}])}})
        .finally(() => done.push("events"));
      window.done = done;
    </script>"""
    statuses: dict[str, int] = {}
    context = browser.new_context()
    page = context.new_page()
    page.on("response", lambda r: statuses.__setitem__(r.url, r.status))
    try:
        page.goto(f"{attacker.url}/fetch")
        page.wait_for_function("window.done && window.done.length == 2", timeout=90_000)
    finally:
        context.close()
    assert statuses[f"{server.url}/api/v1/sweeps/{sweep}/pause"] == 415
    assert statuses[f"{server.url}/api/v1/online/events"] == 415
    assert sweeps(server)[0]["state"] == "running"
    stats = httpx.get(f"{server.url}/api/v1/online/stats").json()["events"]
    assert stats["accepted"] == 0 and stats["rejected"] == 0


@pytest.mark.slow
def test_a_rebound_name_gets_nothing(browser: Any, target: tuple[SweepServer, str]) -> None:
    server, sweep = target
    port = server.url.rsplit(":", 1)[1]
    # The attacker's name now resolves to 127.0.0.1: its pages are same-origin with
    # anything served there, so only the Host check stands between them and the API.
    rebinding = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=["--headless", "--no-sandbox", "--disable-gpu",
              "--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1"])
    try:
        page = rebinding.new_page()
        origin = f"http://rebind.attacker.test:{port}"
        response = page.goto(f"{origin}/ui/sweeps")
        assert response.status == 400 and "TUNEPILOT_ALLOWED_HOSTS" in page.content()
        status = page.evaluate(f"""async () => (await fetch("{origin}/api/v1/sweeps/{sweep}/pause",
            {{method: "POST", headers: {{"Content-Type": "application/json"}}}})).status""")
        assert status == 400
        listing = page.evaluate(f"""async () => (await fetch("{origin}/api/v1/sweeps")).status""")
        assert listing == 400
    finally:
        rebinding.close()
    assert sweeps(server)[0]["state"] == "running"
