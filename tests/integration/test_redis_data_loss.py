"""Redis restarted EMPTY under load: the worker recreates the stream and its group, the lost
messages are announced again from the database, and every event is processed without
restarting anything.

Runs against a redis-server of its own (killed with SIGKILL mid-load) and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import redis
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from backend.db.models import ProcessedEvent
from backend.infra.outbox import OutboxSweeper
from backend.infra.stream import RedisEventStream, StreamEvent
from backend.jobs.worker import StreamWorker
from backend.main import create_app
from backend.wiring import build_components
from tests.integration.conftest import RedisProcess, redis_settings
from tests.waiting import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def _kill(server: RedisProcess) -> None:
    assert server.proc is not None
    server.proc.kill()  # no shutdown, no save: like a crash
    server.proc.wait()
    server.proc = None


class GatedProcessor:
    """The real processor, held at a gate so messages are in flight when Redis dies."""

    def __init__(self, real: object, gate: threading.Event) -> None:
        self.real, self.gate = real, gate

    def process(self, events: list[StreamEvent]) -> object:
        self.gate.wait(30)
        return self.real.process(events)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


def test_every_event_is_processed_after_redis_comes_back_empty(
    tmp_path, postgres_url, pg_shop, redis_server
):
    settings = redis_settings(tmp_path, postgres_url, redis_server.url, "loss:")
    components = build_components(settings)
    gate = threading.Event()
    worker_stream = RedisEventStream.from_url(
        redis_server.url,
        stream=f"loss:{settings.event_stream}",
        group=settings.event_group,
        retry_after_seconds=0.2,
    )
    worker = StreamWorker(
        stream=worker_stream,
        processor=GatedProcessor(components.processor, gate),  # type: ignore[arg-type]
        consumer="w1",
        batch_size=5,
        block_ms=100,
        claim_idle_ms=500,
        sweeper=OutboxSweeper(db=components.db, stream=worker_stream, grace_seconds=0.5),
        sweep_seconds=0.5,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    users = [u.id for u in pg_shop.users.values()]
    products = [p.id for p in pg_shop.products.values()]
    accepted: list[str] = []

    with TestClient(create_app(components=components)) as api:

        def send(n: int) -> None:
            for i in range(n):
                body = {
                    "user_id": str(users[i % len(users)]),
                    "action": "view",
                    "product_id": str(products[i % len(products)]),
                }
                r = api.post("/events", json=body)
                assert r.status_code == 201, r.text
                accepted.append(r.json()["interaction_id"])

        thread.start()
        send(20)  # the worker takes a first batch and is held; the rest wait in the stream
        wait_for(lambda: worker_stream.pending_count() > 0, "a batch in the worker's hands")
        _kill(redis_server)
        gate.set()
        send(20)  # during the outage: stored, buffered and kept in the outbox
        health = api.get("/health").json()
        assert health["status"] == "degraded"
        events = health["components"]["events"]
        assert events["status"] == "degraded"
        assert "Redis unreachable" in events["detail"], events
        assert "Redis unreachable" in health["components"]["worker"]["detail"], health

        redis_server.start()  # same port, EMPTY: stream, group and messages are gone
        send(20)

        def processed() -> set[str]:
            with Session(components.db) as session:
                return {
                    str(i)
                    for i in session.exec(
                        select(ProcessedEvent.interaction_id).where(
                            col(ProcessedEvent.interaction_id).in_(accepted)
                        )
                    ).all()
                }

        wait_for(lambda: processed() == set(accepted), "every event to be processed", 60)
        assert thread.is_alive()  # the same worker, never restarted
        wait_for(
            lambda: api.get("/health").json()["components"]["events"]["status"] == "ok",
            "health to show the stream ok",
        )
        raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
        groups = [g["name"] for g in raw.xinfo_groups(worker_stream.stream)]
        assert groups == [settings.event_group]
        raw.close()

    stop.set()
    thread.join(10)
    components.db.dispose()
    assert len(accepted) == 60


@pytest.mark.parametrize(
    "command",
    [
        lambda s: s.read("w1", 10, 10),
        lambda s: s.claim("w1", 0, 10),
        lambda s: s.own_pending("w1", 10),
        lambda s: s.pending_count(),
        lambda s: s.lag_seconds(),
        lambda s: s.consumers(),
    ],
    ids=["read", "claim", "own_pending", "pending_count", "lag", "consumers"],
)
def test_every_group_command_recreates_a_lost_stream_and_group(
    redis_url: str, redis_prefix: str, command: Callable[[RedisEventStream], object]
):
    stream = RedisEventStream.from_url(
        redis_url, stream=f"{redis_prefix}events", group="workers", retry_after_seconds=0.1
    )
    assert stream.read("w1", 10, 10) == []  # the group exists and this process knows it
    first = stream.group_generation()
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    raw.delete(stream.stream)  # what an empty restart looks like from here
    command(stream)  # no NOGROUP error
    assert [g["name"] for g in raw.xinfo_groups(stream.stream)] == ["workers"]
    assert stream.group_generation() != first  # workers learn that messages may be lost
    raw.close()
