"""Property-based API testing from the OpenAPI schema: no input makes the server fail (5xx).

Every operation of the schema gets at least 100 generated requests, valid and
invalid ones, through the ASGI app on a real database. Every other example has its
path ids replaced by a real sweep or a real running run, and every other sweep
creation gets a valid config, so that generated bodies reach the code behind the
404 and 422 checks. The operations are driven one by one with Hypothesis directly
(schemathesis' own pytest plugin does not support this pytest version).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from tunepilot.server import Settings, create_app, upgrade_database

EXAMPLES = 100
VALID = {"method": "random", "metric": {"name": "loss"},
         "parameters": {"x": {"min": 0.0, "max": 1.0}, "k": {"values": ["a", "b"]}}}


class Real:
    """Makes real sweeps and running runs to aim generated requests at."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def sweep(self) -> str:
        return str(self.client.post("/api/v1/sweeps", json={"config": VALID}).json()["id"])

    def run(self) -> str:
        lease = self.client.post(f"/api/v1/sweeps/{self.sweep()}/suggest").json()
        return str(lease["run_id"])

    def aim(self, case: Any) -> None:
        parameters = case.path_parameters or {}
        if "sweep_id" in parameters:
            parameters["sweep_id"] = self.sweep()
        if "run_id" in parameters:
            parameters["run_id"] = self.run()
        if case.path == "/api/v1/sweeps" and case.method.upper() == "POST":
            if isinstance(case.body, dict):
                case.body["config"] = VALID


#: As the SDK talks: to the server by an address of its own (it refuses other names),
#: every write declared JSON (it refuses other types).
AS_THE_SDK = {"Host": "127.0.0.1", "Content-Type": "application/json"}


def fuzz(url: str) -> dict[str, int]:
    """Run every operation; return the number of examples each one got."""
    app = create_app(Settings(db=url, reaper=False))
    counts: dict[str, int] = {}
    errors: list[str] = []
    # Entering the client runs the lifespan: shutdown closes the database.
    with TestClient(app, base_url="http://127.0.0.1",
                    headers={"Content-Type": "application/json"}) as client:
        real = Real(client)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=AS_THE_SDK)
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in operations:
            label = f"{operation.method.upper()} {operation.path}"
            counts[label] = 0
            run = _runner(operation, label, counts, errors, real)
            # Hypothesis stops early once a small input space is exhausted (GET /health
            # has one input); such operations are run again until they had EXAMPLES.
            for _ in range(EXAMPLES):
                run()
                if counts[label] >= EXAMPLES:
                    break
    assert errors == []
    return counts


def _runner(
    operation: Any, label: str, counts: dict[str, int], errors: list[str], real: Real
) -> Any:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        counts[label] += 1
        if counts[label] % 2 == 0:
            real.aim(case)
        response = case.call(headers=AS_THE_SDK)
        if response.status_code >= 500:
            errors.append(f"{label}: {response.status_code} {response.text[:300]}")

    return run


def _check(counts: dict[str, int]) -> None:
    assert len(counts) >= 20
    assert min(counts.values()) >= EXAMPLES, counts


@pytest.mark.slow
def test_no_server_errors_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fuzz.db"
    upgrade_database(url)
    _check(fuzz(url))


@pytest.mark.slow
@pytest.mark.postgres
def test_no_server_errors_on_postgres(postgres_url: str) -> None:
    _check(fuzz(postgres_url))
