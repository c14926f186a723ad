"""Stream adapters: the in-process queue, and Redis Streams with a consumer group."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from backend.infra.stream import (
    Delivery,
    InProcessEventStream,
    RedisEventStream,
    StreamEvent,
)


def make_event(action: str = "view") -> StreamEvent:
    return StreamEvent(
        interaction_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        action=action,
        product_id=uuid.uuid4() if action != "search" else None,
        created_at=datetime(2026, 1, 1, 12, tzinfo=UTC),
    )


def test_stream_events_round_trip_and_bad_payloads_are_flagged():
    for event in (make_event(), make_event("search")):
        assert StreamEvent.from_fields(event.to_fields()) == event
    bad = Delivery.parse("1-0", {"interaction_id": "nope"})
    assert bad.event is None and bad.fields == {"interaction_id": "nope"}


def test_in_process_queue_batches_and_counts_drops():
    stream = InProcessEventStream(maxsize=3)
    stream.publish([make_event() for _ in range(5)])
    assert stream.dropped == 2 and "2 dropped" in stream.status().detail
    assert len(stream.take(2, timeout=0)) == 2
    assert len(stream.take(10, timeout=0)) == 1
    assert stream.take(10, timeout=0) == []


def test_in_process_lag_is_the_age_of_the_oldest_queued_event():
    stream = InProcessEventStream()
    assert stream.lag_seconds() == 0.0
    old = make_event()  # stored on 2026-01-01
    stream.publish([old, make_event()])
    expected = (datetime.now(UTC) - old.created_at).total_seconds()
    assert abs(stream.lag_seconds() - expected) < 5
    stream.take(10, timeout=0)
    assert stream.lag_seconds() == 0.0


@pytest.fixture
def redis_stream(redis_url, redis_prefix):
    stream = RedisEventStream.from_url(redis_url, stream=f"{redis_prefix}events", group="workers")
    yield stream
    stream._client.close()


@pytest.mark.redis
def test_consumer_group_delivers_once_and_acks(redis_stream):
    events = [make_event() for _ in range(5)]
    redis_stream.publish(events)
    first = redis_stream.read("w1", count=3, block_ms=100)
    second = redis_stream.read("w2", count=10, block_ms=100)
    assert [d.event for d in first + second] == events  # each message to one consumer
    assert redis_stream.pending_count() == 5
    redis_stream.ack([d.message_id for d in first + second])
    assert redis_stream.pending_count() == 0
    assert redis_stream.read("w1", count=10, block_ms=50) == []


@pytest.mark.redis
def test_messages_of_a_dead_consumer_are_reclaimed(redis_stream):
    events = [make_event() for _ in range(4)]
    redis_stream.publish(events)
    taken = redis_stream.read("dead", count=10, block_ms=100)  # then it dies: no ack
    assert len(taken) == 4
    assert redis_stream.claim("alive", min_idle_ms=60_000, count=10) == []  # not idle long
    claimed = redis_stream.claim("alive", min_idle_ms=0, count=10)
    assert [d.event for d in claimed] == events
    pending = {c["name"]: c["pending"] for c in redis_stream.consumers()}
    assert pending == {"dead": 0, "alive": 4}
    # A restart under the dead worker's own name would have resumed them the same way.
    assert redis_stream.own_pending("alive", count=10)[0].event == events[0]


@pytest.mark.redis
def test_events_published_before_any_worker_joined_are_not_skipped(redis_url, redis_prefix):
    producer = RedisEventStream.from_url(redis_url, stream=f"{redis_prefix}s", group="g")
    producer._client.xadd(f"{redis_prefix}s", make_event().to_fields())  # before the group
    consumer = RedisEventStream.from_url(redis_url, stream=f"{redis_prefix}s", group="g")
    assert len(consumer.read("w", count=10, block_ms=100)) == 1


@pytest.mark.redis
def test_malformed_messages_go_to_the_dead_letter_stream(redis_stream):
    redis_stream._client.xgroup_create(redis_stream.stream, "workers", id="0", mkstream=True)
    redis_stream._client.xadd(redis_stream.stream, {"garbage": "1"})
    (delivery,) = redis_stream.read("w", count=10, block_ms=100)
    assert delivery.event is None
    redis_stream.dead_letter(delivery, "malformed payload")
    assert redis_stream.pending_count() == 0
    (entry,) = redis_stream._client.xrange(f"{redis_stream.stream}:dead")
    assert entry[1]["reason"] == "malformed payload"


def test_publishing_while_redis_is_down_buffers_and_resends():
    client = redis.Redis(
        host="127.0.0.1",
        port=1,
        socket_connect_timeout=0.2,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )
    clock = [0.0]
    stream = RedisEventStream(
        client, stream="s", group="g", retry_after_seconds=1.0, clock=lambda: clock[0]
    )
    stream.publish([make_event(), make_event()])
    assert stream.buffered == 2
    status = stream.status()
    assert status.status == "degraded" and "2 message(s) buffered" in status.detail
    sent = []

    class Pipe:
        def xadd(self, name, fields, **_):
            sent.append(fields)

        def execute(self):
            return None

    stream._client = type(
        "Up",
        (),
        {
            "pipeline": lambda self, transaction: Pipe(),
            "xgroup_create": lambda *a, **k: True,
            "set": lambda *a, **k: True,  # the new group's generation mark
        },
    )()
    stream.publish([make_event()])  # still backing off: kept
    assert stream.buffered == 3 and not sent
    clock[0] = 2.0
    stream.publish([make_event()])
    assert stream.buffered == 0 and len(sent) == 4


@pytest.mark.redis
def test_redis_lag_covers_undelivered_then_pending_messages(redis_stream):
    assert redis_stream.lag_seconds() == 0.0
    redis_stream.publish([make_event(), make_event()])
    time.sleep(0.3)
    assert redis_stream.lag_seconds() >= 0.3  # not yet delivered to any worker
    first = redis_stream.read("w1", count=1, block_ms=100)
    redis_stream.ack([d.message_id for d in first])
    assert redis_stream.lag_seconds() >= 0.3  # the second, still undelivered
    second = redis_stream.read("w1", count=1, block_ms=100)
    assert redis_stream.lag_seconds() >= 0.3  # delivered but not acked: pending
    redis_stream.ack([d.message_id for d in second])
    assert redis_stream.lag_seconds() == 0.0
