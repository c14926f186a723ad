"""In the API's own process the worker refreshes lists between requests, never during them,
and gives up a list that found no such moment within ``precompute_max_wait_seconds`` (the
shopper's next request ranks it live); a shopper a request has already ranked and cached since
their last event is not precomputed at all (the clock is a fake)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import get_tracker
from backend.jobs.events import EventProcessor
from backend.main import create_app
from tests.jobs.test_precompute_debounce import FakeClock, deliver, stored_version


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def shop(db):
    from tests.factories import build_shop

    return build_shop(db)


@pytest.fixture
def stream(components):
    return components.stream


class Requests:
    """Stands in for the admission middleware's count of requests in flight; ``arrive_after``
    quiet answers, a request comes in."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.arrive_after: int | None = None

    def quiet(self) -> bool:
        if self.arrive_after is not None:
            if self.arrive_after == 0:
                self.in_flight, self.arrive_after = self.in_flight + 1, None
            else:
                self.arrive_after -= 1
        return self.in_flight == 0


def processor(components, clock, requests: Requests, max_wait: float = 2.0) -> EventProcessor:
    return EventProcessor(
        db=components.db,
        recommender=components.recommender,
        top_n=components.settings.default_top_n,
        retrain_threshold=0,
        monotonic=clock,
        quiet=requests.quiet,
        precompute_max_wait_seconds=max_wait,
        precompute_debounce_seconds=0,  # due at once: what is tested here is the waiting
    )


def test_a_list_waits_while_requests_are_in_flight(components, shop, stream, clock):
    requests = Requests()
    proc = processor(components, clock, requests)
    bob = shop.users["bob"].id
    requests.in_flight = 3
    report = proc.process(deliver(components, shop, stream, ("bob", "view", "Desk Lamp")))
    assert report.processed == 1 and report.precomputed == 0  # counted, not yet ranked
    assert stored_version(components.db, bob) is None and proc.deferred == 1
    assert proc.next_due_in() == 0.0
    clock.now += 0.5
    assert proc.flush_due() == 0  # still busy
    requests.in_flight = 0
    assert proc.flush_due() == 1
    assert stored_version(components.db, bob) == 1 and proc.deferred == 0
    assert proc.next_due_in() is None


def test_a_quiet_process_refreshes_at_once(components, shop, stream, clock):
    proc = processor(components, clock, Requests())
    report = proc.process(deliver(components, shop, stream, ("bob", "view", "Desk Lamp")))
    assert report.precomputed == 1 and proc.deferred == 0


def test_a_list_that_finds_no_quiet_moment_in_time_is_given_up(components, shop, stream, clock):
    requests = Requests()
    requests.in_flight = 1  # busy
    proc = processor(components, clock, requests, max_wait=2.0)
    proc.process(deliver(components, shop, stream, ("bob", "view", "Desk Lamp")))
    clock.now += 1.5
    proc.process(deliver(components, shop, stream, ("dave", "view", "Desk Lamp"), start=1))
    clock.now += 1.0  # bob has waited 2.5 s, dave 1 s
    assert proc.flush_due() == 0  # never during a request
    assert (proc.dropped_precomputes, proc.deferred) == (1, 1)
    requests.in_flight = 0
    assert proc.flush_due() == 1
    assert stored_version(components.db, shop.users["bob"].id) is None  # ranked live instead
    assert stored_version(components.db, shop.users["dave"].id) == 1
    assert proc.precompute_status() == (
        "1 list(s) precomputed, 0 already answered by a request, 1 given up while busy, 0 waiting"
    )


def test_a_backlog_is_refreshed_until_a_request_comes_in(components, shop, stream, clock):
    requests = Requests()
    requests.in_flight = 1
    proc = processor(components, clock, requests, max_wait=2.0)
    events = [("bob", "view", "Desk Lamp"), ("dave", "view", "Desk Lamp"),
              ("carol", "view", "Desk Lamp")]  # fmt: skip
    proc.process(deliver(components, shop, stream, *events))
    requests.in_flight = 0
    requests.arrive_after = 1  # quiet for the first list, then a request arrives
    assert proc.flush_due() == 1 and proc.deferred == 2
    assert stored_version(components.db, shop.users["bob"].id) == 1  # the longest waiting
    requests.in_flight = 0
    assert proc.flush_due() == 2 and proc.deferred == 0


def test_a_shopper_answered_from_the_cache_since_the_event_is_not_precomputed(
    components, shop, stream, clock
):
    requests = Requests()
    proc = processor(components, clock, requests)
    bob = shop.users["bob"].id
    top_n = components.settings.default_top_n
    requests.in_flight = 1
    proc.process(deliver(components, shop, stream, ("bob", "view", "Desk Lamp")))
    # The storefront asks while the list waits: the request ranks it and caches the answer.
    live = components.recommender.recommend(bob, top_n=top_n)
    requests.in_flight = 0
    assert proc.flush_due() == 0 and proc.skipped_precomputes == 1
    assert stored_version(components.db, bob) is None
    again = components.recommender.recommend(bob, top_n=top_n)
    assert again.cached and again.recommended_products == live.recommended_products

    # Only the default answer counts: another size is cached under another field.
    requests.in_flight = 1
    proc.process(deliver(components, shop, stream, ("bob", "view", "Phone Case"), start=1))
    components.recommender.recommend(bob, top_n=2)
    requests.in_flight = 0
    assert proc.flush_due() == 1 and proc.skipped_precomputes == 1
    assert stored_version(components.db, bob) == 2


def test_requests_in_flight_are_counted_for_the_worker(components, shop):
    """The admission middleware's count is what the worker reads: one while a request is
    inside the app, none after."""
    app = create_app(components=components)
    seen: list[int] = []

    class Watching:
        def track(self, event, *, source):
            seen.append(components.load.in_flight)
            return components.tracker.track(event, source=source)

    app.dependency_overrides[get_tracker] = lambda: Watching()
    with TestClient(app) as client:
        body = {
            "user_id": str(shop.users["bob"].id),
            "action": "view",
            "product_id": str(shop.products["Desk Lamp"].id),
        }
        assert client.post("/events", json=body).status_code == 201
        assert client.get("/health").status_code == 200
    assert seen == [1]
    assert components.load.in_flight == 0 and components.load.quiet()
