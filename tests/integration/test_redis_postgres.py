"""The scale-out configuration on real services: PostgreSQL, the shared Redis, a worker."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from backend.config import PROJECT_ROOT
from backend.db.models import Interaction, ProcessedEvent, UserPreferences, UserRecommendation
from backend.infra.cache import RedisCache
from backend.infra.stream import RedisEventStream
from backend.jobs.worker import StreamWorker
from backend.main import create_app
from tests.api.test_observability import metric
from tests.waiting import free_port

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def api(redis_components):
    with TestClient(create_app(components=redis_components)) as client:
        yield client


@pytest.fixture
def raw(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def event(shop, user="bob", product="Desk Lamp", action="view", **extra):
    return {
        "user_id": str(shop.users[user].id),
        "action": action,
        "product_id": str(shop.products[product].id),
    } | extra


def stream_name(components) -> str:
    assert isinstance(components.stream, RedisEventStream)
    return components.stream.stream


def test_a_retried_event_is_stored_published_and_counted_once(api, pg_shop, redis_components, raw):
    assert isinstance(redis_components.cache, RedisCache)
    body = event(pg_shop, action="add_to_cart", event_id="shop-1/evt-7")
    first = api.post("/events", json=body)
    again = api.post("/events", json=body)
    batch = api.post("/events/batch", json={"events": [body, body]}).json()
    assert (first.status_code, again.status_code) == (201, 200)
    assert [r["status"] for r in batch["results"]] == ["duplicate", "duplicate"]
    with Session(redis_components.db) as s:
        stored = s.exec(select(func.count()).where(Interaction.event_id == "shop-1/evt-7")).one()
        prefs = s.get(UserPreferences, pg_shop.users["bob"].id)
    assert stored == 1 and prefs.event_count == 1
    assert raw.xlen(stream_name(redis_components)) == 1  # the worker hears of it once


def test_an_event_invalidates_the_users_redis_keys(
    api, pg_shop, redis_components, raw, redis_prefix
):
    alice = pg_shop.users["alice"].id
    url = f"/recommend/{alice}"
    assert api.get(url).json()["cached"] is False
    assert api.get(url).json()["cached"] is True
    rec_key = f"{redis_prefix}rec:recommendations:{alice}"
    exp_key = f"{redis_prefix}rec:explanations:{alice}"
    raw.hset(exp_key, "v1", "an explanation")
    assert raw.exists(rec_key) and 3500 < raw.ttl(rec_key) <= 3600  # default TTL: 1 h
    other = f"{redis_prefix}rec:recommendations:{pg_shop.users['dave'].id}"
    api.get(f"/recommend/{pg_shop.users['dave'].id}")
    assert api.post("/events", json=event(pg_shop, "alice", "Wireless Earbuds")).status_code == 201
    assert not raw.exists(rec_key) and not raw.exists(exp_key)
    assert raw.exists(other)  # only that user's keys go
    body = api.get(url).json()
    assert body["cached"] is False
    assert "Wireless Earbuds" not in [p["name"] for p in body["recommended_products"]]


def test_the_worker_consumes_the_stream_and_recommend_serves_its_lists(
    api, pg_shop, redis_components
):
    health = api.get("/health").json()["components"]
    assert health["cache"]["status"] == "ok" and health["cache"]["detail"].startswith("redis")
    assert health["worker"]["status"] == "degraded"  # no worker has joined yet
    events = [
        event(pg_shop, "bob", "Desk Lamp", "purchase"),
        event(pg_shop, "bob", "Cast Iron Skillet", "purchase"),
        event(pg_shop, "dave", "Desk Lamp", "purchase"),
    ]
    assert api.post("/events/batch", json={"events": events}).json()["accepted"] == 3
    worker_stream = RedisEventStream.from_url(
        redis_components.settings.redis_url,
        stream=stream_name(redis_components),
        group=redis_components.settings.event_group,
    )
    worker = StreamWorker(
        stream=worker_stream, processor=redis_components.processor, consumer="w1", block_ms=100
    )
    worker.run(threading.Event(), burst=True)
    assert worker.handled == 3 and worker_stream.pending_count() == 0
    with Session(redis_components.db) as s:
        assert s.exec(select(func.count()).select_from(ProcessedEvent)).one() == 3
        users = set(s.exec(select(UserRecommendation.user_id)).all())
    assert users == {pg_shop.users["bob"].id, pg_shop.users["dave"].id}
    recommender = redis_components.recommender
    hits = recommender.precomputed_hits
    assert api.get(f"/recommend/{pg_shop.users['bob'].id}").json()["cached"] is False
    assert recommender.precomputed_hits == hits + 1
    health = api.get("/health").json()["components"]
    assert health["worker"]["status"] == "ok", health["worker"]
    assert "0 message(s) pending" in health["worker"]["detail"]
    worker_stream._client.close()


def test_lag_in_the_api_and_progress_on_the_worker_metrics_port(
    api, pg_shop, redis_components, redis_prefix
):
    events = [event(pg_shop, "bob", "Desk Lamp"), event(pg_shop, "dave", "Desk Lamp")]
    assert api.post("/events/batch", json={"events": events}).json()["accepted"] == 2
    time.sleep(0.3)
    waiting = api.get("/metrics").text
    assert metric(waiting, "shopwise_event_lag_seconds") >= 0.3  # no worker yet

    settings = redis_components.settings
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "REDIS_KEY_PREFIX": redis_prefix,
        "PROMPTS_DIR": str(settings.prompts_dir),
        "DATA_DIR": str(settings.data_dir),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "worker", "--name", "metered",
         "--metrics-port", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        own = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                own = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.TransportError:
                own = ""
            if metric(own, "shopwise_worker_events_processed_total", result="processed") == 2:
                break
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            time.sleep(0.2)
        assert metric(own, "shopwise_worker_events_processed_total", result="processed") == 2
        assert metric(own, "shopwise_event_processing_delay_seconds_count") == 2
    finally:
        worker.terminate()
        worker.communicate(timeout=30)  # waits, and closes the stderr pipe
    assert metric(api.get("/metrics").text, "shopwise_event_lag_seconds") == 0  # caught up
