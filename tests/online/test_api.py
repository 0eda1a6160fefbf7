"""The online API as served by ``create_app``: apps, events, split, decisions, rollout, stats, OTLP."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from pydantic import SecretStr

from tunepilot.server import Settings, create_app, upgrade_database

API = "/api/v1/online"
#: As the SDK talks: to 127.0.0.1 (the server refuses names not its own), writes as JSON.
LOCAL: dict[str, Any] = {"base_url": "http://127.0.0.1",
                         "headers": {"Content-Type": "application/json"}}
WORLD = {
    "models": {"big": {"input_per_mtok": 10.0, "output_per_mtok": 30.0},
               "small": {"input_per_mtok": 0.3, "output_per_mtok": 1.2}},
    "apps": {"support-bot": {
        "baseline": "big",
        "variants": [{"id": "big", "model": "big", "temperature": 0.2},
                     {"id": "small", "model": "small", "temperature": 0.2}],
        "constraints": {"p95_latency_ms": 4000},
        "policy": {"gate_interval_s": 60, "min_samples": 50, "min_step_samples": 50},
    }},
}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/online.db"
    upgrade_database(url)
    return url


@pytest.fixture
def client(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    config = tmp_path / "online.yaml"
    config.write_text(yaml.safe_dump(WORLD))
    monkeypatch.setenv("TUNEPILOT_ONLINE_CONFIG", str(config))
    # Steps are driven by the tests, at the times they choose.
    monkeypatch.setenv("TUNEPILOT_ONLINE_STEP_INTERVAL", "3600")
    with TestClient(create_app(Settings(db=db_url, reaper=False)), **LOCAL) as test_client:
        yield test_client


def event(i: int, variant: str = "big", t: float | None = None, **fields: Any) -> dict[str, Any]:
    return {"app": "support-bot", "variant": variant, "event_id": f"e-{i}",
            "timestamp": time.time() if t is None else t, "latency_ms": 900.0,
            "input_tokens": 400, "output_tokens": 100, **fields}


def test_apps_are_created_listed_read_and_replaced(client: TestClient) -> None:
    assert [a["name"] for a in client.get(f"{API}/apps").json()] == ["support-bot"]
    new = {"name": "search", "baseline": "a",
           "variants": [{"id": "a", "model": "big"}, {"id": "b", "model": "small"}]}
    created = client.post(f"{API}/apps", json=new)
    assert created.status_code == 201 and created.json()["name"] == "search"
    assert client.post(f"{API}/apps", json=new).status_code == 409
    assert [a["name"] for a in client.get(f"{API}/apps").json()] == ["search", "support-bot"]
    detail = client.get(f"{API}/apps/search").json()
    assert detail["config"]["baseline"] == "a" and detail["split"] == {"a": 1.0}
    taken = client.post(f"{API}/events", json=[{**event(1), "app": "search", "variant": "a"}])
    assert taken.status_code == 200
    assert client.get(f"{API}/apps/search").json()["leaders"] == {"*": "a"}
    replaced = client.put(f"{API}/apps/search", json={**new, "variants": [
        *new["variants"], {"id": "c", "model": "small", "temperature": 0.7}]})
    assert replaced.status_code == 200
    assert [v["id"] for v in client.get(f"{API}/apps/search/split").json()["variants"]] == ["a", "b", "c"]
    # The baseline leads, so it cannot go.
    gone = client.put(f"{API}/apps/search", json={**new, "baseline": "b",
                                                  "variants": [{"id": "b", "model": "small"}]})
    assert gone.status_code == 409 and "in use" in gone.json()["detail"]
    assert client.put(f"{API}/apps/other", json=new).status_code == 422
    bad = client.post(f"{API}/apps", json={**new, "name": "x", "baseline": "zzz"})
    assert bad.status_code == 422 and "baseline 'zzz' is not one of the variants" in bad.text
    assert client.get(f"{API}/apps/nope").status_code == 404
    assert "POST /api/v1/online/apps" in client.get(f"{API}/apps/nope/split").json()["detail"]


def test_an_app_is_deleted_with_its_decisions_and_its_name_can_be_used_again(
    client: TestClient,
) -> None:
    new = {"name": "search", "baseline": "a",
           "variants": [{"id": "a", "model": "big"}, {"id": "b", "model": "small"}]}
    assert client.post(f"{API}/apps", json=new).status_code == 201
    client.post(f"{API}/apps/search/rollout/pause")
    assert [d["kind"] for d in client.get(f"{API}/apps/search/decisions").json()] == ["pause"]
    assert client.delete(f"{API}/apps/search").status_code == 204
    assert client.get(f"{API}/apps/search").status_code == 404
    assert client.delete(f"{API}/apps/search").status_code == 404
    late = client.post(f"{API}/events", json=[{**event(1), "app": "search", "variant": "a"}])
    assert [r["reason"] for r in late.json()["rejected"]] == ["unknown_app"]
    # A new app of the same name starts clean: no decisions of the old one.
    assert client.post(f"{API}/apps", json=new).status_code == 201
    assert client.get(f"{API}/apps/search/decisions").json() == []
    # Declared in the config file: it would come back at the next start.
    declared = client.delete(f"{API}/apps/support-bot")
    assert declared.status_code == 409 and "online config file" in declared.json()["detail"]


def test_events_are_counted_and_bad_ones_listed(client: TestClient) -> None:
    ok = client.post(f"{API}/events", json=[event(i) for i in range(10)])
    assert ok.status_code == 200
    assert ok.json() == {"accepted": 10, "duplicates": 0, "rejected": []}
    mixed = client.post(f"{API}/events", json={"events": [
        event(3), event(10), event(11, quality=7), event(12, variant="medium"), {"app": "support-bot"}]})
    assert mixed.status_code == 422
    body = mixed.json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (2, "out_of_range"), (3, "unknown_variant"), (4, "missing_field")]
    assert "re-sending them is safe" in body["detail"]
    garbage = client.post(f"{API}/events", content=b"{{", headers={"content-type": "application/json"})
    assert garbage.status_code == 422 and "not valid JSON" in garbage.json()["detail"]
    stats = client.get(f"{API}/stats").json()
    assert stats["events"]["accepted"] == 11 and stats["events"]["duplicates"] == 1
    assert stats["events"]["rejected_by_reason"] == {"out_of_range": 1, "unknown_variant": 1,
                                                     "missing_field": 1}
    assert stats["events"]["rejected_batches"] == {"malformed_json": 1}
    windows = client.get(f"{API}/apps/support-bot").json()["windows"]
    assert windows["segments"]["*"]["big"]["calls"] == 11


def test_a_promotion_shows_its_evidence_and_the_rollout_can_be_paused_and_aborted(
    client: TestClient
) -> None:
    service = client.app.state.online  # type: ignore[attr-defined]
    rng = random.Random(0)
    start = time.time() - 600
    n = 0
    promoted = None
    for tick in range(40):
        now = start + 10 * tick
        split = client.get(f"{API}/apps/support-bot/split").json()["split"]
        batch = []
        for _ in range(200):
            n += 1
            variant = "big" if rng.random() < split.get("big", 0.0) else "small"
            batch.append(event(n, variant, t=now + rng.random() * 10,
                               quality=min(1.0, max(0.0, rng.gauss(0.8, 0.1)))))
        assert client.post(f"{API}/events", json=batch).status_code == 200
        service.step(now + 10)
        decisions = client.get(f"{API}/apps/support-bot/decisions").json()
        promoted = next((d for d in decisions if d["kind"] == "promote"), None)
        if promoted:
            break
    assert promoted is not None, "no promotion of the 30x cheaper variant of equal quality"
    assert promoted["variant"] == "small" and promoted["baseline"] == "big"
    assert promoted["evidence"]["quality"] and promoted["evidence"]["cost_saving"] > 0.5
    rollout = client.get(f"{API}/apps/support-bot/rollout").json()
    assert (rollout["candidate"], rollout["state"]) == ("small", "running")
    assert client.post(f"{API}/apps/support-bot/rollout/pause").json()["state"] == "paused"
    assert client.post(f"{API}/apps/support-bot/rollout/resume").json()["state"] == "running"
    assert client.post(f"{API}/apps/support-bot/rollout/abort").json()["state"] == "aborted"
    assert client.get(f"{API}/apps/support-bot/rollout").json()["state"] == "aborted"
    kinds = [d["kind"] for d in client.get(f"{API}/apps/support-bot/decisions?limit=3").json()]
    assert kinds == ["abort", "resume", "pause"]
    steps = client.get(f"{API}/stats").json()["steps"]
    assert steps["count"] >= 1 and steps["p99_ms"] is not None


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def test_otlp_traces_in_protobuf_and_json(client: TestClient) -> None:
    now_ns = time.time_ns()
    span = Span(trace_id=bytes(range(16)), span_id=bytes(range(8)), name="chat",
                start_time_unix_nano=now_ns - 500_000_000, end_time_unix_nano=now_ns,
                attributes=[_kv("tunepilot.variant", "small"), _kv("gen_ai.usage.input_tokens", 10),
                            _kv("gen_ai.usage.output_tokens", 5)])
    orphan = Span(trace_id=bytes(range(16)), span_id=bytes(8), name="chat",
                  start_time_unix_nano=now_ns, end_time_unix_nano=now_ns,
                  attributes=[_kv("gen_ai.request.model", "small")])
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource={"attributes": [_kv("service.name", "support-bot")]},
        scope_spans=[ScopeSpans(spans=[span, orphan])])])
    answer = client.post("/v1/traces", content=request.SerializeToString(),
                         headers={"content-type": "application/x-protobuf"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    assert "tunepilot.variant" in response.partial_success.error_message
    again = client.post("/v1/traces", content=request.SerializeToString(),
                        headers={"content-type": "application/x-protobuf"})
    assert again.status_code == 200
    as_json = client.post("/v1/traces", json={"resourceSpans": []})
    assert as_json.status_code == 200 and as_json.json() == {}
    bad = client.post("/v1/traces", content=b"\xff\xff", headers={"content-type": "application/x-protobuf"})
    assert bad.status_code == 400
    stats = client.get(f"{API}/stats").json()["events"]
    assert (stats["accepted"], stats["duplicates"]) == (1, 1)
    assert stats["rejected_by_reason"] == {"missing_variant": 2}
    assert stats["other"]["otlp_bad_requests"] == 1


def test_with_a_token_the_online_routes_need_it(db_url: str) -> None:
    settings = Settings(db=db_url, reaper=False, token=SecretStr("online-secret"))
    with TestClient(create_app(settings), **LOCAL) as client:
        assert client.post(f"{API}/events", json=[]).status_code == 401
        assert client.post("/v1/traces", json={}).status_code == 401
        assert client.get(f"{API}/stats").status_code == 401
        ok = client.get(f"{API}/stats", headers={"Authorization": "Bearer online-secret"})
        assert ok.status_code == 200


def test_the_server_with_the_online_optimizer_does_not_import_litellm(db_url: str) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tunepilot.cli import main\n"
        "from tunepilot.server import Settings, create_app\n"
        f"create_app(Settings(db={db_url!r}, reaper=False))\n"
        "print(sorted(m for m in ('litellm', 'llama_cpp', 'sklearn', 'torch') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split()[-1] == "[]"


def test_apps_and_decisions_survive_a_server_restart(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNEPILOT_ONLINE_STEP_INTERVAL", "3600")
    new = {"name": "search", "baseline": "a",
           "variants": [{"id": "a", "model": "big"}, {"id": "b", "model": "small"}]}
    with TestClient(create_app(Settings(db=db_url, reaper=False)), **LOCAL) as client:
        assert client.post(f"{API}/apps", json=new).status_code == 201
        client.post(f"{API}/apps/search/rollout/pause")
    with TestClient(create_app(Settings(db=db_url, reaper=False)), **LOCAL) as client:
        assert [a["name"] for a in client.get(f"{API}/apps").json()] == ["search"]
        assert [d["kind"] for d in client.get(f"{API}/apps/search/decisions").json()] == ["pause"]
        assert client.get(f"{API}/apps/search").json()["windows"]["paused"] is True
