"""Sweep priors over HTTP: ``prior`` on parameters and ``prior_from`` earlier sweeps."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from tunepilot.server.db import make_storage

PARAMETERS: dict[str, Any] = {
    "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
    "opt": {"values": ["adam", "sgd"]},
}


def blend(**fields: Any) -> dict[str, Any]:
    return {"method": "blend", "metric": {"name": "loss"}, "parameters": PARAMETERS,
            "sampler": {"model": None, "seed": 0}, **fields}


RANDOM: dict[str, Any] = {"method": "random", "metric": {"name": "loss"},
                          "parameters": PARAMETERS}


def create(client: TestClient, config: dict[str, Any]) -> Any:
    return client.post("/api/v1/sweeps", json={"config": config})


def refused(client: TestClient, config: dict[str, Any]) -> str:
    answer = create(client, config)
    assert answer.status_code == 422, answer.text
    detail: str = answer.json()["detail"]
    return detail


def prior_sources(db_url: str, sweep: dict[str, Any]) -> set[str]:
    """Every prior source that shaped one of the sweep's trials (``llm.prior_sources``)."""
    storage = make_storage(db_url)
    try:
        trials = optuna.load_study(study_name=sweep["study_name"], storage=storage).trials
    finally:
        storage.engine.dispose()
    return {s for t in trials for s in t.user_attrs.get("llm.prior_sources", [])}


def run(client: TestClient, sweep_id: str, n: int) -> list[dict[str, Any]]:
    configs = []
    for _ in range(n):
        lease = client.post(f"/api/v1/sweeps/{sweep_id}/suggest")
        assert lease.status_code == 201, lease.text
        config = lease.json()["config"]
        loss = abs(config["lr"] - 0.01) + (0.1 if config["opt"] == "adam" else 0.0)
        client.post(f"/api/v1/runs/{lease.json()['run_id']}/finish",
                    json={"summary": {"loss": loss}})
        configs.append(config)
    return configs


@pytest.mark.parametrize(("prior", "fragment"), [
    ({"lr": 0.5}, "parameters.lr.prior: 0.5 is outside the range [0.0001, 0.1]"),
    ({"opt": "rmsprop"}, "parameters.opt.prior: 'rmsprop' is not one of the values"),
])
def test_a_prior_outside_the_parameter_is_refused_naming_it(
    client: TestClient, prior: dict[str, Any], fragment: str
) -> None:
    name, value = next(iter(prior.items()))
    parameters = {**PARAMETERS, name: {**PARAMETERS[name], "prior": value}}
    assert fragment in refused(client, blend(parameters=parameters))


def test_an_unknown_confidence_is_refused_naming_it(client: TestClient) -> None:
    parameters = {**PARAMETERS, "lr": {**PARAMETERS["lr"], "prior": 0.01, "confidence": "sure"}}
    assert "parameters.lr.confidence: must be one of low, medium, high, got 'sure'" in refused(
        client, blend(parameters=parameters))


@pytest.mark.parametrize("method", ["bayes", "random", "grid", "llm"])
def test_methods_without_a_prior_refuse_one(client: TestClient, method: str) -> None:
    parameters = {"opt": {"values": ["adam", "sgd"], "prior": "sgd"}}
    config = {"method": method, "metric": {"name": "loss"}, "parameters": parameters}
    assert refused(client, config) == (
        f"parameters.opt.prior: method '{method}' cannot use a prior; set method: blend")
    config = {"method": method, "metric": {"name": "loss"}, "prior_from": "abcd1234",
              "parameters": {"opt": {"values": ["adam", "sgd"]}}}
    assert "prior_from: method" in refused(client, config)


@pytest.mark.parametrize("key", ["prior", "prior_from"])
def test_priors_are_not_sampler_options(client: TestClient, key: str) -> None:
    config = blend(sampler={"model": None, key: {"lr": 0.01}})
    assert refused(client, config).startswith(f"sampler.{key}: not a sampler option here")


def test_a_blend_sweep_with_a_prior_hands_out_runs(client: TestClient, db_url: str) -> None:
    parameters = {**PARAMETERS, "lr": {**PARAMETERS["lr"], "prior": 0.01, "confidence": "high"},
                  "opt": {"values": ["adam", "sgd"], "prior": "sgd"}}
    created = create(client, blend(parameters=parameters))
    assert created.status_code == 201, created.text
    assert created.json()["config"]["parameters"]["lr"]["prior"] == 0.01
    configs = run(client, created.json()["id"], 4)
    assert all(1e-4 <= c["lr"] <= 1e-1 and c["opt"] in ("adam", "sgd") for c in configs)
    assert prior_sources(db_url, created.json()) == {"user"}


def test_prior_from_an_unknown_sweep_is_refused(client: TestClient) -> None:
    assert refused(client, blend(prior_from="nope1234")) == (
        "prior_from: no sweep 'nope1234' on this server; give the id of an earlier sweep "
        "(GET /api/v1/sweeps lists them)")


def test_prior_from_a_sweep_without_a_finished_run_is_refused(client: TestClient) -> None:
    earlier = create(client, RANDOM).json()["id"]
    assert refused(client, blend(prior_from=earlier)) == (
        f"prior_from: sweep {earlier!r} cannot give a prior: it has no completed trial yet")


def test_a_sweep_starts_from_an_earlier_sweeps_best_runs(
    client: TestClient, db_url: str
) -> None:
    earlier = create(client, RANDOM).json()["id"]
    run(client, earlier, 5)
    created = create(client, blend(prior_from=earlier))
    assert created.status_code == 201, created.text
    configs = run(client, created.json()["id"], 3)
    assert all(1e-4 <= c["lr"] <= 1e-1 for c in configs)
    assert prior_sources(db_url, created.json()) == {"study"}
