"""Databases for the server tests: a fresh SQLite file each, and PostgreSQL when configured.

PostgreSQL tests read ``TUNEPILOT_TEST_POSTGRES_URL`` (``.ci/run`` starts a server on
127.0.0.1 and sets it). They are skipped only on a developer machine where the
variable is unset and ``CI`` is not set; when the variable is set and the server
cannot be reached, or in CI without it, they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

POSTGRES_ENV = "TUNEPILOT_TEST_POSTGRES_URL"
#: The server answers only to its own names (localhost, IP addresses), not "testserver".
LOCAL = "http://127.0.0.1"
#: The server refuses writes that are not JSON, bodyless ones included.
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set in CI; .ci/run starts PostgreSQL and sets it")
        pytest.skip(f"{POSTGRES_ENV} is not set; see .ci/run for starting PostgreSQL")
    from sqlalchemy import create_engine, text

    from tunepilot.server import upgrade_database
    from tunepilot.server._settings import normalize_db_url

    engine = create_engine(normalize_db_url(url))
    try:
        with engine.begin() as connection:
            # A clean database per test session; tests share it through unique sweep ids.
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect must fail, not skip
        pytest.fail(f"PostgreSQL at {POSTGRES_ENV} is unreachable: {exc}")
    finally:
        engine.dispose()
    upgrade_database(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    from tunepilot.server import upgrade_database

    url = f"sqlite:///{tmp_path}/sweeps.db"
    upgrade_database(url)
    return url


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    """A client of the API as the SDK is one: to 127.0.0.1, every write declared JSON."""
    from tunepilot.server import Settings, create_app

    with TestClient(create_app(Settings(db=db_url, reaper=False)), base_url=LOCAL,
                    headers=JSON) as test_client:
        yield test_client


@pytest.fixture
def make_client(db_url: str) -> Iterator[Callable[..., TestClient]]:
    """Clients of apps made with the given settings (the LLM options an operator sets)."""
    from tunepilot.server import Settings, create_app

    made: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        client = TestClient(create_app(Settings(db=db_url, reaper=False, **settings)),
                            base_url=LOCAL, headers=JSON)
        made.append(client.__enter__())
        return client

    yield make
    for client in made:
        client.__exit__(None, None, None)
