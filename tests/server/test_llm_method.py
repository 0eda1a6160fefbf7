"""``method: llm``: the sweep's configurations come from LLMSampler over the internal space."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tunepilot.testing import FakeOpenAIServer


def answer(body: dict[str, Any]) -> str:
    return json.dumps({"configurations": [{"lr": 0.02, "opt": "sgd"}], "rationale": "small lr"})


@pytest.mark.slow
@pytest.mark.parametrize("method", ["llm", "blend"])
def test_llm_methods_propose_through_the_model(
    make_client: Callable[..., TestClient], method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeOpenAIServer(responder=answer) as llm:
        # The operator names the model and its endpoint; the sweep, how to search.
        client = make_client(llm_model="openai/test-model", llm_api_base=llm.base_url,
                             llm_timeout=5)
        config = {
            "method": method, "metric": {"name": "loss"},
            "parameters": {"lr": {"min": 0.001, "max": 0.1}, "opt": {"values": ["adam", "sgd"]}},
            "sampler": {"seed": 0, "description": "a small MLP"},
        }
        created = client.post("/api/v1/sweeps", json={"config": config})
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        leases = []
        for _ in range(3):
            lease = client.post(f"/api/v1/sweeps/{sid}/suggest").json()
            leases.append(lease)
            assert 0.001 <= lease["config"]["lr"] <= 0.1
            client.post(f"/api/v1/runs/{lease['run_id']}/finish",
                        json={"summary": {"loss": lease["config"]["lr"]}})
        if method == "llm":
            # The model's answer is used as is; repeats of it are moved off the tried point.
            assert leases[0]["config"] == {"lr": 0.02, "opt": "sgd"}
        assert llm.requests, "the model was never asked"
        assert "a small MLP" in json.dumps(llm.requests[0]["messages"])


def test_unknown_llm_options_are_refused(client: TestClient) -> None:
    config = {"method": "llm", "metric": {"name": "loss"}, "sampler": {"temprature": 0.5},
              "parameters": {"lr": {"min": 0.001, "max": 0.1}}}
    refused = client.post("/api/v1/sweeps", json={"config": config})
    assert refused.status_code == 422 and "did you mean 'temperature'" in refused.json()["detail"]


def test_the_model_is_called_outside_the_sweeps_lock(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another agent's finish, log and suggest do not wait behind a slow model."""
    import threading
    import time

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeOpenAIServer(responder=answer) as llm:
        client = make_client(llm_model="openai/test-model", llm_api_base=llm.base_url,
                             llm_timeout=30)
        config = {
            "method": "llm", "metric": {"name": "loss"}, "run_cap": 3,
            "parameters": {"lr": {"min": 0.001, "max": 0.1}, "opt": {"values": ["adam", "sgd"]}},
            "sampler": {"seed": 0, "safeguard": False},
        }
        sid = client.post("/api/v1/sweeps", json={"config": config}).json()["id"]
        first = client.post(f"/api/v1/sweeps/{sid}/suggest").json()["run_id"]
        asked = len(llm.requests)
        llm.push_delay(3.0)
        slow: list[Any] = []
        worker = threading.Thread(
            target=lambda: slow.append(client.post(f"/api/v1/sweeps/{sid}/suggest")))
        worker.start()
        deadline = time.monotonic() + 10
        while len(llm.requests) == asked and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(llm.requests) > asked, "the second suggest never asked the model"

        start = time.monotonic()
        client.post(f"/api/v1/runs/{first}/log", json={"rows": [{"metrics": {"loss": 0.5}}]})
        finished = client.post(f"/api/v1/runs/{first}/finish", json={})
        waited = time.monotonic() - start
        worker.join(30)

        assert finished.status_code == 200 and finished.json()["state"] == "finished"
        assert waited < 1.5, f"the finish waited {waited:.2f} s behind the model"
        assert slow[0].status_code == 201, slow[0].text
        sweep = client.get(f"/api/v1/sweeps/{sid}").json()
        assert sweep["n_suggested"] == 2 and sweep["state"] == "running"


@pytest.mark.parametrize(("model", "missing", "said"), [
    ("openai/gpt-4o-mini", None, ("sampler.model: no API key for 'openai/gpt-4o-mini': set "
                                  "OPENAI_API_KEY in the environment")),
    ("local", "llama_cpp", ("sampler.model: llama-cpp-python is not installed; install the "
                            "'local' extra: pip install 'tunepilot[local]'")),
])
def test_a_sweep_whose_model_cannot_run_is_refused_when_made(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch, model: str,
    missing: str | None, said: str,
) -> None:
    import sys

    client = make_client(llm_models=["openai/gpt-4o-mini", "local"])

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    if missing is not None:
        monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    before = client.get("/api/v1/sweeps").json()["total"]
    config = {"method": "llm", "metric": {"name": "loss"}, "sampler": {"model": model},
              "parameters": {"lr": {"min": 0.001, "max": 0.1}}}
    refused = client.post("/api/v1/sweeps", json={"config": config})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith(said)
    assert client.get("/api/v1/sweeps").json()["total"] == before


def _llm_sweep(**sampler: Any) -> dict[str, Any]:
    return {"method": "llm", "metric": {"name": "loss"}, "sampler": sampler,
            "parameters": {"lr": {"min": 0.001, "max": 0.1}}}


@pytest.mark.parametrize(("sampler", "said"), [
    ({"api_base": "ATTACKER"}, "sampler.api_base: a sweep cannot set it"),
    ({"cache_dir": "/tmp/anywhere"}, "sampler.cache_dir: a sweep cannot set it"),
    ({"timeout": 3600}, "sampler.timeout: a sweep cannot set it"),
    ({"max_retries": 50}, "sampler.max_retries: a sweep cannot set it"),
    ({"model": "openai/gpt-4o"}, "sampler.model: 'openai/gpt-4o' is not one of this server's"),
    ({"model": "local:/etc/passwd"}, "sampler.model: 'local:/etc/passwd' is not one of"),
    ({"batch_size": 500}, "sampler.batch_size: at most 16"),
    ({"max_prompt_tokens": 100_000}, "sampler.max_prompt_tokens: at most 4000"),
])
def test_a_sweep_cannot_spend_or_send_the_operators_key_elsewhere(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch,
    sampler: dict[str, Any], said: str,
) -> None:
    """Issue: a sweep's sampler options reached LLMSampler unchecked, and one suggest sent
    the server's OPENAI_API_KEY to an api_base the client chose, and wrote in its folder."""
    monkeypatch.setenv("OPENAI_API_KEY", "operator-key")
    with FakeOpenAIServer(responder=answer) as attacker:
        client = make_client(llm_model="openai/test-model")
        options = {k: (attacker.base_url if v == "ATTACKER" else v) for k, v in sampler.items()}
        before = client.get("/api/v1/sweeps").json()["total"]
        refused = client.post("/api/v1/sweeps", json={"config": _llm_sweep(**options)})
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"].startswith(said)
        assert client.get("/api/v1/sweeps").json()["total"] == before
        assert attacker.requests == []


def test_a_sweep_may_choose_among_the_operators_models(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "operator-key")
    with FakeOpenAIServer(responder=answer) as llm:
        client = make_client(llm_model="openai/test-model", llm_models="openai/other-model",
                             llm_api_base=llm.base_url, llm_timeout=5)
        made = client.post("/api/v1/sweeps", json={"config": _llm_sweep(
            model="openai/other-model", temperature=0.2, batch_size=2, safeguard=False)})
        assert made.status_code == 201, made.text
        client.post(f"/api/v1/sweeps/{made.json()['id']}/suggest")
        assert [r["model"] for r in llm.requests] == ["other-model"]
