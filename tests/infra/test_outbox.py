"""The event outbox: an event stored by a process that died before publishing it is still
announced to the worker, once, by the sweep."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, func, select

from backend.db import crud
from backend.db.models import ProcessedEvent
from backend.infra.cache import MemoryCache
from backend.infra.outbox import OutboxSweeper
from backend.infra.stream import InProcessEventStream, StreamEvent
from backend.services.track import TrackingService


class DiesBeforePublishing:
    """The publish that never happens: the process is gone right after the commit."""

    durable = True

    def publish(self, events: Sequence[StreamEvent]) -> bool:
        raise SystemExit("killed between commit and publish")


class RecordingStream:
    """A durable stream (Redis-like) that remembers what it was given."""

    durable = True

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.sent: list[StreamEvent] = []

    def publish(self, events: Sequence[StreamEvent]) -> bool:
        if not self.up:
            return False
        self.sent.extend(events)
        return True


def outbox(db) -> int:
    with Session(db) as s:
        return crud.outbox_size(session=s)


def view(shop, user="bob", product="Desk Lamp"):
    return {
        "user_id": str(shop.users[user].id),
        "action": "view",
        "product_id": str(shop.products[product].id),
    }


def store_and_die(db, snapshots, shop, n=1):
    """Track events with a process that dies between the commit and the publish."""
    tracker = TrackingService(
        db=db, snapshots=snapshots, cache=MemoryCache(), stream=DiesBeforePublishing()
    )
    try:
        tracker.track_many([view(shop) for _ in range(n)])
    except SystemExit:
        pass
    else:
        raise AssertionError("the publish should have killed the tracker")


def test_an_event_whose_publish_died_is_swept_to_the_stream_exactly_once(db, snapshots, shop):
    store_and_die(db, snapshots, shop, n=3)
    assert outbox(db) == 3  # committed with the events, never cleared
    stream = RecordingStream()
    sweeper = OutboxSweeper(db=db, stream=stream, grace_seconds=0, batch_size=2)
    assert sweeper.sweep() == 3  # two pages
    assert sweeper.sweep() == 0
    assert len(stream.sent) == 3 and len({e.interaction_id for e in stream.sent}) == 3
    assert {e.user_id for e in stream.sent} == {shop.users["bob"].id}
    assert outbox(db) == 0


def test_young_rows_wait_for_the_grace_period(db, snapshots, shop):
    store_and_die(db, snapshots, shop)
    now = [datetime.now(UTC)]
    stream = RecordingStream()
    sweeper = OutboxSweeper(db=db, stream=stream, grace_seconds=10, clock=lambda: now[0])
    assert sweeper.sweep() == 0  # its publisher may still be about to send it
    now[0] += timedelta(seconds=11)
    assert sweeper.sweep() == 1 and outbox(db) == 0


def test_an_unreachable_stream_leaves_the_rows_for_the_next_sweep(db, snapshots, shop):
    store_and_die(db, snapshots, shop)
    stream = RecordingStream(up=False)
    sweeper = OutboxSweeper(db=db, stream=stream, grace_seconds=0)
    assert sweeper.sweep() == 0 and outbox(db) == 1
    stream.up = True
    assert sweeper.sweep() == 1 and outbox(db) == 0


def test_a_durable_publish_clears_the_row_at_once(db, snapshots, shop):
    stream = RecordingStream()
    tracker = TrackingService(db=db, snapshots=snapshots, cache=MemoryCache(), stream=stream)
    tracker.track_many([view(shop), view(shop, "alice")])
    assert len(stream.sent) == 2 and outbox(db) == 0


def test_in_process_queue_rows_go_when_processed_and_are_never_queued_twice(
    components, shop, snapshots
):
    db = components.db
    store_and_die(db, snapshots, shop)
    queue = InProcessEventStream()
    sweeper = OutboxSweeper(db=db, stream=queue, grace_seconds=0, skip=queue.in_flight)
    assert sweeper.sweep() == 1
    assert sweeper.sweep() == 0  # still queued in this process: not sent again
    assert outbox(db) == 1  # a queue in memory is not safe: the row stays until processed
    events = queue.take(10, timeout=0)
    assert len(events) == 1
    assert components.processor is not None
    components.processor.process(events)
    queue.finished(events)
    assert outbox(db) == 0 and sweeper.sweep() == 0
    with Session(db) as s:
        assert s.exec(select(func.count()).select_from(ProcessedEvent)).one() == 1


def test_the_in_process_worker_sweeps_at_start(components, shop, snapshots):
    """The API restarted after dying between commit and publish: its worker thread announces
    the event, which is then processed into the results."""
    db = components.db
    store_and_die(db, snapshots, shop)
    worker = components.background_worker
    assert worker is not None and worker.sweeper is not None
    worker.sweeper.grace = timedelta(0)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while worker.sweeper.published == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # the thread sweeps first thing
        worker.stream.join()
        assert worker.processed == 1
    finally:
        worker.stop()
    assert outbox(db) == 0
