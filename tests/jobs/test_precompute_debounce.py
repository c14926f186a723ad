"""The worker refreshes a shopper's precomputed list once their events have paused for the
debounce window: a burst costs one precompute, for the newest profile; a shopper a request has
ranked since their last event costs none (the clock is a fake: no waiting)."""

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


def test_a_burst_costs_one_precompute_for_its_last_event(components, shop, stream, clock):
    proc = processor(components, clock)
    bob = shop.users["bob"].id
    reports = []
    for i, event in enumerate(BURST):  # one delivery per event, 0.3 s apart
        reports.append(proc.process(deliver(components, shop, stream, event, start=i)))
        clock.now += 0.3
    assert [r.precomputed for r in reports] == [0, 0, 0, 0, 0]
    assert stored_version(components.db, bob) is None and proc.deferred == 1
    clock.now = 100.0 + 4 * 0.3 + 1.9  # 1.9 s after the last event
    assert proc.flush_due() == 0
    assert proc.next_due_in() == pytest.approx(0.1)
    clock.now += 0.1
    assert proc.flush_due() == 1
    assert stored_version(components.db, bob) == len(BURST)  # reflects the last event
    assert proc.deferred == 0 and proc.next_due_in() is None
    assert proc.flush_due() == 0  # nothing left to do
    assert proc.precomputed == 1


def test_each_shopper_has_their_own_moment(components, shop, stream, clock):
    proc = processor(components, clock)
    proc.process(deliver(components, shop, stream, ("bob", "view", "Desk Lamp")))
    clock.now += 0.5
    second = deliver(
        components, shop, stream,
        ("bob", "view", "Phone Case"), ("dave", "view", "Desk Lamp"), start=1,
    )  # fmt: skip
    assert proc.process(second).precomputed == 0
    clock.now += 2.0  # both due: bob and dave's events paused at the same moment
    bob, dave = shop.users["bob"].id, shop.users["dave"].id
    third = deliver(components, shop, stream, ("bob", "view", "Travel Charger"), start=3)
    assert proc.process(third).precomputed == 1  # dave's; bob's moved on with his new event
    assert stored_version(components.db, dave) == 1
    assert stored_version(components.db, bob) is None
    clock.now += 2.0
    assert proc.flush_due() == 1 and stored_version(components.db, bob) == 3


def test_a_later_batch_refreshes_what_has_come_due(components, shop, stream, clock):
    proc = processor(components, clock)
    proc.process(deliver(components, shop, stream, ("bob", "view", "Desk Lamp")))
    clock.now += 2.5  # bob's events have paused; dave's event brings the worker round
    report = proc.process(deliver(components, shop, stream, ("dave", "view", "Desk Lamp"), start=1))
    assert report.precomputed == 1 and proc.deferred == 1
    assert stored_version(components.db, shop.users["bob"].id) == 1
    assert stored_version(components.db, shop.users["dave"].id) is None


def test_a_shopper_who_asks_right_after_the_event_is_not_ranked_twice(
    components, shop, stream, clock
):
    proc = processor(components, clock)
    bob = shop.users["bob"].id
    proc.process(deliver(components, shop, stream, ("bob", "view", "Desk Lamp")))
    live = components.recommender.recommend(bob, top_n=components.settings.default_top_n)
    assert not live.cached  # ranked by the request, and cached
    clock.now += 2.0
    assert proc.flush_due() == 0
    assert (proc.precomputed, proc.skipped_precomputes) == (0, 1)
    assert stored_version(components.db, bob) is None and proc.deferred == 0


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
        assert proc.deferred == 1  # bob's list waits for his events to pause
    finally:
        worker.stop()
    assert worker.processed == 3 and proc.deferred == 0
    assert stored_version(components.db, shop.users["bob"].id) == 3
