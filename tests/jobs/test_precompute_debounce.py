"""The worker refreshes a shopper's precomputed list at most once per debounce window, and the
last event of a burst always gets its list (the clock is a fake: no waiting)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from backend.db.models import UserRecommendation
from backend.infra.stream import InProcessEventStream
from backend.jobs.events import EventProcessor
from backend.jobs.worker import InProcessWorker
from tests.factories import Shop, build_shop

T0 = datetime.now(UTC) - timedelta(hours=1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def shop(db) -> Shop:
    return build_shop(db)


@pytest.fixture
def stream(components) -> InProcessEventStream:
    assert isinstance(components.stream, InProcessEventStream)
    return components.stream


def processor(components, clock, debounce: float = 2.0) -> EventProcessor:
    return EventProcessor(
        db=components.db,
        recommender=components.recommender,
        top_n=components.settings.default_top_n,
        retrain_threshold=0,
        precompute_debounce_seconds=debounce,
        monotonic=clock,
    )


def deliver(components, shop, stream, *events, start: int = 0):
    track(components, shop, *events, start=start)
    return stream.take(100, timeout=0)


def track(components, shop, *events, start: int = 0) -> None:
    body = [
        {
            "user_id": str(shop.users[u].id),
            "action": a,
            "product_id": str(shop.products[p].id),
            "timestamp": (T0 + timedelta(seconds=start + i)).isoformat(),
        }
        for i, (u, a, p) in enumerate(events)
    ]
    assert components.tracker.track_many(body).accepted == len(events)


def stored_version(db, user_id) -> int | None:
    with Session(db) as s:
        rows = s.exec(select(UserRecommendation).where(UserRecommendation.user_id == user_id))
        versions = {r.profile_version for r in rows}
    assert len(versions) <= 1
    return versions.pop() if versions else None


BURST = [
    ("bob", "view", "Desk Lamp"),
    ("bob", "view", "Phone Case"),
    ("bob", "add_to_cart", "Phone Case"),
    ("bob", "purchase", "Phone Case"),
    ("bob", "view", "Electric Kettle"),
]


def test_a_burst_costs_two_precomputes_and_the_last_event_gets_its_list(
    components, shop, stream, clock
):
    proc = processor(components, clock)
    bob = shop.users["bob"].id
    reports = []
    for i, event in enumerate(BURST):  # one delivery per event, 0.3 s apart
        reports.append(proc.process(deliver(components, shop, stream, event, start=i)))
        clock.now += 0.3
    assert [r.precomputed for r in reports] == [1, 0, 0, 0, 0]
    assert stored_version(components.db, bob) == 1  # the first event's list: stale, not served
    assert proc.deferred == 1
    assert proc.flush_due() == 0  # the window (2 s from the first refresh) has not ended
    clock.now = 102.0
    assert proc.flush_due() == 1
    assert stored_version(components.db, bob) == len(BURST)  # reflects the last event
    assert proc.deferred == 0
    assert proc.flush_due() == 0  # nothing left to do


def test_another_shopper_is_not_held_back(components, shop, stream, clock):
    proc = processor(components, clock)
    proc.process(deliver(components, shop, stream, ("bob", "view", "Desk Lamp")))
    clock.now += 0.5
    second = deliver(
        components, shop, stream,
        ("bob", "view", "Phone Case"), ("dave", "view", "Desk Lamp"), start=1,
    )  # fmt: skip
    report = proc.process(second)
    assert report.precomputed == 1  # dave's, at once; bob's waits for his window
    assert stored_version(components.db, shop.users["dave"].id) == 1
    assert stored_version(components.db, shop.users["bob"].id) == 1
    assert proc.deferred == 1


def test_after_a_quiet_spell_an_event_refreshes_at_once(components, shop, stream, clock):
    proc = processor(components, clock)
    proc.process(deliver(components, shop, stream, ("bob", "view", "Desk Lamp")))
    clock.now += 2.5
    report = proc.process(deliver(components, shop, stream, ("bob", "view", "Phone Case"), start=1))
    assert report.precomputed == 1 and proc.deferred == 0
    assert stored_version(components.db, shop.users["bob"].id) == 2


def test_a_later_batch_refreshes_what_has_become_due(components, shop, stream, clock):
    proc = processor(components, clock)
    proc.process(deliver(components, shop, stream, ("bob", "view", "Desk Lamp")))
    clock.now += 1.0
    proc.process(deliver(components, shop, stream, ("bob", "view", "Phone Case"), start=1))
    clock.now += 1.5  # bob's window has ended; dave's event brings the worker round
    report = proc.process(deliver(components, shop, stream, ("dave", "view", "Desk Lamp"), start=2))
    assert report.precomputed == 2
    assert stored_version(components.db, shop.users["bob"].id) == 2


def test_without_a_window_every_delivery_refreshes(components, shop, stream, clock):
    proc = processor(components, clock, debounce=0)
    counts = [
        proc.process(deliver(components, shop, stream, event, start=i)).precomputed
        for i, event in enumerate(BURST[:3])
    ]
    assert counts == [1, 1, 1] and proc.deferred == 0


def test_the_in_process_worker_refreshes_deferred_lists_when_it_stops(
    components, shop, stream, clock
):
    proc = processor(components, clock, debounce=60)
    worker = InProcessWorker(stream=stream, processor=proc)
    worker.start()
    try:
        for i, event in enumerate(BURST[:3]):
            track(components, shop, event, start=i)
            stream.join()
        assert proc.deferred == 1  # bob's second and third events wait for the window
    finally:
        worker.stop()
    assert worker.processed == 3 and proc.deferred == 0
    assert stored_version(components.db, shop.users["bob"].id) == 3
