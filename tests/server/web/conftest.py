"""Headless Debian Chromium driven by Playwright, and where screenshots go.

Screenshots are saved under ``tests/artifacts/dashboard`` (git-ignored), or under
``TUNEPILOT_TEST_ARTIFACTS`` when set, and their paths are printed. Chromium is
``/usr/bin/chromium`` (``.ci/run`` installs it); without it the browser tests are
skipped on a developer machine and fail in CI.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS_ENV = "TUNEPILOT_TEST_ARTIFACTS"
#: Chromium with no network beyond loopback and no background services; WebGL
#: (Plotly's parallel coordinates) through the SwiftShader software renderer.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
]


#: Every screenshot this session saved, listed at the end of the run.
SAVED: list[Path] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SAVED:
        terminalreporter.write_sep("-", f"dashboard screenshots: {len(SAVED)} in "
                                        f"{SAVED[0].parent}")
        for path in SAVED:
            terminalreporter.write_line(str(path))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    default = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
    folder = Path(os.environ.get(ARTIFACTS_ENV) or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI; .ci/run installs Debian's chromium")
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Shots:
    """Saves full-page screenshots as ``NN-name.png`` and prints each path."""

    def __init__(self, folder: Path, prefix: str) -> None:
        self.folder, self.prefix, self.count = folder, prefix, 0
        self.paths: list[Path] = []
        for old in folder.glob(f"{prefix}-*.png"):
            old.unlink()  # the previous run's, so the folder shows this run only

    def __call__(self, page: Any, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.prefix}-{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        self.paths.append(path)
        SAVED.append(path)
        return path


@pytest.fixture
def shots(artifacts: Path, request: pytest.FixtureRequest) -> Shots:
    return Shots(artifacts, request.node.name.replace("test_", "").replace("/", "_")[:40])


@pytest.fixture
def offline_page(browser: Any) -> Any:
    """A factory of pages that reach only the given server (see :func:`_offline_page`)."""
    return lambda base_url: _offline_page(browser, base_url)


def _offline_page(browser: Any, base_url: str) -> tuple[Any, Any, list[str]]:
    """A new page that may only reach ``base_url``; other requests are refused and listed."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    foreign: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(base_url) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            foreign.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return context, page, foreign


@pytest.fixture
def csrf() -> Any:
    """A function: the form token a client's dashboard pages carry (their csrf-token meta).

    The client keeps the form cookie the page set, so the token works for its posts.
    """
    def token(client: Any, page: str = "/ui/login") -> str:
        text = client.get(page).text
        found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', text)
        assert found, f"no form token on {page}"
        return found.group(1)

    return token
