"""Group commit of events on the real databases: requests written together keep their own
outcomes, exactly once per (sender, event id), and one request's failure is its own.

The first request's write is held (inside its transaction) until the others are queued
behind it, so they form the next group for certain."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from sqlmodel import Session, select

from backend.db import crud
from backend.db.models import Interaction
from backend.services.track import BatchResult, TrackingService
from tests.services.test_track import count, ev
from tests.waiting import wait_for


@contextmanager
def held_first_write(tracker: TrackingService, monkeypatch) -> Iterator[threading.Event]:
    """The first group waits inside its transaction until the event is set."""
    real = crud.existing_users_and_products
    entered, release = threading.Event(), threading.Event()

    def held(**kwargs):
        if not entered.is_set():
            entered.set()
            assert release.wait(20)
        return real(**kwargs)

    monkeypatch.setattr(crud, "existing_users_and_products", held)
    yield entered
    release.set()


def grouped(
    tracker: TrackingService, monkeypatch, requests: list[tuple[list[dict], str]]
) -> tuple[BatchResult, list[BatchResult]]:
    """The first request alone, then all the others in one group; their results in order."""
    with ThreadPoolExecutor(len(requests)) as pool:
        with held_first_write(tracker, monkeypatch) as entered:
            first_events, first_source = requests[0]
            first = pool.submit(tracker.track_many, first_events, source=first_source)
            assert entered.wait(20)
            rest: list[Future[BatchResult]] = []
            for n, (events, source) in enumerate(requests[1:], start=1):
                rest.append(pool.submit(tracker.track_many, events, source=source))
                wait_for(
                    lambda n=n: tracker.writes.waiting >= n,
                    f"{n} write(s) queued",
                    10,
                    interval=0.001,
                )
        return first.result(20), [f.result(20) for f in rest]


def test_a_group_keeps_each_requests_outcomes(tracker, shop, db, queue, monkeypatch):
    before = count(db)
    first, (a, b, c) = grouped(
        tracker,
        monkeypatch,
        [
            ([ev(shop, event_id="g-0")], "key:shop"),
            ([ev(shop, event_id="g-1"), ev(shop, product="Phone Case")], "key:shop"),
            ([ev(shop, user="alice", event_id="g-1")], "shopper:alice"),  # another sender's id
            ([ev(shop, event_id="g-0"), ev(shop, product_id=shop.users["bob"].id)], "key:shop"),
        ],
    )
    assert [r.status for r in first.results] == ["accepted"]
    assert [r.status for r in a.results] == ["accepted", "accepted"]
    assert [r.status for r in b.results] == ["accepted"]
    assert [r.status for r in c.results] == ["duplicate", "rejected"]
    assert c.results[0].interaction_id == first.results[0].interaction_id
    assert "does not exist" in (c.results[1].reason or "")
    assert count(db) == before + 4
    assert queue.depth == 4


def test_the_same_id_twice_in_one_group_is_stored_once(tracker, shop, db, monkeypatch):
    before = count(db)
    first, (same, retry, other) = grouped(
        tracker,
        monkeypatch,
        [
            ([ev(shop, event_id="warm-up")], "key:shop"),
            ([ev(shop, event_id="t-1")], "key:shop"),
            ([ev(shop, event_id="t-1")], "key:shop"),  # a retried delivery, same group
            ([ev(shop, event_id="t-1", action="purchase")], "key:shop"),  # another event
        ],
    )
    assert [same.results[0].status, retry.results[0].status] == ["accepted", "duplicate"]
    assert retry.results[0].interaction_id == same.results[0].interaction_id
    assert other.results[0].status == "conflict" and other.conflicts == 1
    assert count(db) == before + 2
    with Session(db) as s:
        rows = s.exec(select(Interaction).where(Interaction.event_id == "t-1")).all()
    assert [(r.event_source, r.action) for r in rows] == [("key:shop", "view")]


def test_a_failing_request_does_not_lose_the_others_of_its_group(
    tracker, shop, db, queue, monkeypatch
):
    real = crud.apply_cart_and_wishlist
    lamp = shop.products["Desk Lamp"].id

    def failing(*, session, events):
        if any(e.product_id == lamp and e.action == "wishlist" for e in events):
            raise RuntimeError("disk full")
        real(session=session, events=events)

    monkeypatch.setattr(crud, "apply_cart_and_wishlist", failing)
    before = count(db)
    with ThreadPoolExecutor(3) as pool:
        with held_first_write(tracker, monkeypatch) as entered:
            first = pool.submit(tracker.track_many, [ev(shop, event_id="f-0")])
            assert entered.wait(20)
            bad = pool.submit(
                tracker.track_many,
                [ev(shop, event_id="f-1"), ev(shop, action="wishlist", event_id="f-2")],
            )
            wait_for(
                lambda: tracker.writes.waiting >= 1, "the first write queued", 10, interval=0.001
            )
            good = pool.submit(tracker.track_many, [ev(shop, user="alice", event_id="f-3")])
            wait_for(
                lambda: tracker.writes.waiting >= 2, "the second write queued", 10, interval=0.001
            )
        assert first.result(20).accepted == 1
        with pytest.raises(RuntimeError, match="disk full"):
            bad.result(20)
        assert good.result(20).accepted == 1
    assert count(db) == before + 2  # f-0 and f-3; the failed request is not half-stored
    assert queue.depth == 2
    monkeypatch.setattr(crud, "apply_cart_and_wishlist", real)
    retried = tracker.track_many(
        [ev(shop, event_id="f-1"), ev(shop, action="wishlist", event_id="f-2")]
    )
    assert retried.accepted == 2


def test_concurrent_senders_store_every_event_once(tracker, shop, db, queue):
    before = count(db)
    users = list(shop.users)
    requests = [
        ([ev(shop, user=users[n % len(users)], event_id=f"c-{n}-{i}") for i in range(3)],
         f"key:{n % 2}")
        for n in range(24)
    ]  # fmt: skip
    requests += requests[:8]  # retried deliveries, racing the first ones
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda r: tracker.track_many(r[0], source=r[1]), requests))
    assert sum(r.accepted for r in results) == 72
    assert sum(r.duplicates for r in results) == 24
    assert count(db) == before + 72
    assert queue.depth == 72
