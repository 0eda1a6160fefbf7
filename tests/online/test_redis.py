"""Redis Streams ingestion against a real redis-server: acknowledged only once taken, never lost.

``TUNEPILOT_TEST_REDIS_URL`` names the server (``.ci/run`` starts one on 127.0.0.1 and
sets it). Without it the tests are skipped on a developer machine, and fail in CI;
with it set and the server unreachable, they fail.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis

from tunepilot.online._collector import Collector
from tunepilot.online._redis import RedisConsumer
from tunepilot.testing import FailingSink, RecordingSink

REDIS_ENV = "TUNEPILOT_TEST_REDIS_URL"
NOW = 1795329000.0


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{REDIS_ENV} is not set in CI; .ci/run starts redis-server and sets it")
        pytest.skip(f"{REDIS_ENV} is not set; see .ci/redis.sh for starting Redis")
    try:
        redis.Redis.from_url(url, socket_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_ENV}={url} is unreachable: {exc}")
    return url


@pytest.fixture
def stream(redis_url: str) -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(redis_url)
    key = f"tunepilot-test:{uuid.uuid4().hex}"
    yield client, key
    client.delete(key)
    client.close()


def event(i: int, **fields: Any) -> dict[str, Any]:
    return {"app": "bot", "variant": "small", "event_id": f"e-{i}", "timestamp": NOW + i,
            "latency_ms": 100.0, **fields}


def consumer(sink: RecordingSink, url: str, key: str, **options: Any) -> RedisConsumer:
    collector = Collector(sink, clock=lambda: NOW)
    return RedisConsumer(collector, url=url, stream=key, block_ms=10, **options)


def pending(client: redis.Redis, key: str) -> int:
    return int(client.xpending(key, "tunepilot")["pending"])


def test_entries_are_ingested_then_acknowledged(stream: tuple[redis.Redis, str], redis_url: str) -> None:
    client, key = stream
    sink = RecordingSink()
    reader = consumer(sink, redis_url, key)
    reader.ensure_group()
    client.xadd(key, {"event": orjson.dumps(event(1))})
    client.xadd(key, {"events": orjson.dumps([event(2), event(3), event(1)])})
    assert reader.poll() == 2
    assert sorted(e.event_id for e in sink.events) == ["e-1", "e-2", "e-3"]
    assert pending(client, key) == 0
    stats = reader.collector.stats()
    assert (stats["accepted"], stats["duplicates"], stats["other"]["redis_entries"]) == (3, 1, 2)
    reader.close()


def test_entries_of_a_crashed_consumer_are_claimed_and_counted_once(
    stream: tuple[redis.Redis, str], redis_url: str
) -> None:
    client, key = stream
    sink = RecordingSink()
    survivor = consumer(sink, redis_url, key, consumer="survivor", claim_idle_ms=100)
    survivor.ensure_group()
    for i in range(50):
        client.xadd(key, {"event": orjson.dumps(event(i))})
    # Another consumer reads half the stream and dies before acknowledging anything.
    taken = client.xreadgroup("tunepilot", "crashed", {key: ">"}, count=25)
    assert len(taken[0][1]) == 25 and pending(client, key) == 25
    survivor.poll()  # the other 25, new
    assert len(sink.events) == 25
    time.sleep(0.15)
    survivor.poll()  # the crashed consumer's 25, idle long enough to be claimed
    assert Counter(e.event_id for e in sink.events) == {f"e-{i}": 1 for i in range(50)}
    assert pending(client, key) == 0
    assert survivor.collector.stats()["other"]["redis_reclaimed"] == 25
    survivor.close()


def test_a_failed_ingest_leaves_entries_pending_until_they_are_taken(
    stream: tuple[redis.Redis, str], redis_url: str
) -> None:
    client, key = stream
    sink = FailingSink(failures=1)
    reader = consumer(sink, redis_url, key, consumer="same-name")
    reader.ensure_group()
    for i in range(10):
        client.xadd(key, {"event": orjson.dumps(event(i))})
    with pytest.raises(RuntimeError, match="injected"):
        reader.poll()
    assert sink.events == [] and pending(client, key) == 10
    # A restart under the same consumer name reads its own pending entries first.
    restarted = RedisConsumer(reader.collector, url=redis_url, stream=key, consumer="same-name",
                              block_ms=10)
    assert restarted.poll() == 10
    assert sorted(e.event_id for e in sink.events) == sorted(f"e-{i}" for i in range(10))
    assert pending(client, key) == 0
    reader.close()
    restarted.close()


def test_malformed_entries_are_counted_and_acknowledged(
    stream: tuple[redis.Redis, str], redis_url: str
) -> None:
    client, key = stream
    sink = RecordingSink()
    reader = consumer(sink, redis_url, key)
    client.xadd(key, {"event": b"{not json"})
    client.xadd(key, {"payload": b"{}"})
    client.xadd(key, {"events": orjson.dumps([event(1), event(2, latency_ms=-1)])})
    assert reader.poll() == 3
    assert [e.event_id for e in sink.events] == ["e-1"]
    stats = reader.collector.stats()
    assert stats["rejected_by_reason"] == {"malformed_entry": 2, "out_of_range": 1}
    assert pending(client, key) == 0
    reader.close()


def test_the_consumer_thread_follows_the_stream(stream: tuple[redis.Redis, str], redis_url: str) -> None:
    client, key = stream
    sink = RecordingSink()
    reader = consumer(sink, redis_url, key)
    reader.start()
    try:
        for i in range(200):
            client.xadd(key, {"event": orjson.dumps(event(i))})
        deadline = time.monotonic() + 10
        while len(sink.events) < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        reader.stop()
    assert len(sink.events) == 200
    assert pending(client, key) == 0
    reader.close()


def test_the_server_consumes_the_stream_named_in_its_settings(
    stream: tuple[redis.Redis, str], redis_url: str, tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi.testclient import TestClient

    from tunepilot.server import Settings, create_app, upgrade_database

    client, key = stream
    config = tmp_path / "online.yaml"
    config.write_text("apps:\n  bot:\n    baseline: big\n    variants:\n"
                      "      - {id: big, model: big}\n      - {id: small, model: small}\n")
    monkeypatch.setenv("TUNEPILOT_ONLINE_CONFIG", str(config))
    monkeypatch.setenv("TUNEPILOT_ONLINE_REDIS_URL", redis_url)
    monkeypatch.setenv("TUNEPILOT_ONLINE_REDIS_STREAM", key)
    db = f"sqlite:///{tmp_path}/online.db"
    upgrade_database(db)
    now = time.time()
    for i in range(20):
        client.xadd(key, {"event": orjson.dumps({**event(i), "timestamp": now})})
    with TestClient(create_app(Settings(db=db, reaper=False)), base_url="http://127.0.0.1",
                    headers={"Content-Type": "application/json"}) as api:
        deadline = time.monotonic() + 10
        while api.get("/api/v1/online/stats").json()["events"]["accepted"] < 20:
            assert time.monotonic() < deadline, api.get("/api/v1/online/stats").json()
            time.sleep(0.05)
        stats = api.get("/api/v1/online/stats").json()
        assert stats["redis"]["stream"] == key
    assert pending(client, key) == 0


def test_a_lost_group_is_made_again_and_logged(
    stream: tuple[redis.Redis, str], redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, key = stream
    sink = RecordingSink()
    reader = consumer(sink, redis_url, key)
    client.xadd(key, {"event": orjson.dumps(event(1))})
    assert reader.poll() == 1
    # What a Redis restarted without its data looks like to this stream: no stream,
    # no group; producers then make the stream again with their next XADD.
    client.delete(key)
    for i in range(2, 5):
        client.xadd(key, {"event": orjson.dumps(event(i))})

    reader.start()
    deadline = time.monotonic() + 10
    while len(sink.events) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    reader.close()

    assert sorted(e.event_id for e in sink.events) == ["e-1", "e-2", "e-3", "e-4"]
    assert pending(client, key) == 0
    assert reader.collector.stats()["other"]["redis_group_recreated"] == 1
    assert "consumer group tunepilot is gone" in caplog.text


def test_the_redis_password_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    reader = consumer(RecordingSink(), f"redis://:pw-e4a17c@127.0.0.1:{port}/0", "tunepilot:x")
    reader.start()
    deadline = time.monotonic() + 10
    while "retrying" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.02)
    reader.close()

    assert f"redis://:***@127.0.0.1:{port}/0" in caplog.text
    assert "pw-e4a17c" not in caplog.text
