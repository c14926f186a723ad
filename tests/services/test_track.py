"""Batch tracking: per-event reasons, idempotent event ids, all-or-nothing writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, func, select

from backend.db import crud
from backend.db.models import CartItem, Interaction, UserPreferences
from backend.errors import InvalidInputError
from backend.infra.cache import recommendations_key
from backend.services.track import MAX_BATCH, EventIn


def count(db, model=Interaction) -> int:
    with Session(db) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def ev(shop, user="bob", product="Desk Lamp", action="view", **extra):
    body = {"user_id": str(shop.users[user].id), "action": action}
    if product:
        body["product_id"] = str(shop.products[product].id)
    return body | extra


def test_a_batch_reports_each_event_and_stores_only_the_good_ones(tracker, shop, db, queue):
    before = count(db)
    result = tracker.track_many(
        [
            ev(shop, event_id="b-1"),
            ev(shop, user_id=str(uuid.uuid4())),
            ev(shop, product_id=str(uuid.uuid4())),
            ev(shop, action="teleport"),
            ev(shop, action="search", product=None),
            ev(shop, action="search", product=None, query="lamp"),
            ev(shop, timestamp=(datetime.now(UTC) + timedelta(days=1)).isoformat()),
            ev(shop, timestamp="2026-01-01T10:00:00"),
            ev(shop, event_id="b-1"),  # a repeat inside the same batch
        ]
    )
    statuses = [r.status for r in result.results]
    assert statuses == ["accepted"] + ["rejected"] * 4 + ["accepted"] + ["rejected"] * 2 + [
        "duplicate"
    ]
    reasons = [r.reason or "" for r in result.results]
    assert "user" in reasons[1] and "does not exist" in reasons[1]
    assert "product" in reasons[2] and "does not exist" in reasons[2]
    assert reasons[3].startswith("action:")
    assert "needs a non-empty 'query'" in reasons[4]
    assert "future" in reasons[6] and "timezone" in reasons[7]
    assert result.results[8].interaction_id == result.results[0].interaction_id
    assert (result.accepted, result.duplicates, result.rejected) == (2, 1, 6)
    assert count(db) == before + 2
    assert queue.depth == 2  # only new events reach the worker


def lamp_views(db, shop) -> int:
    with Session(db) as s:
        return crud.get_product(session=s, product_id=shop.products["Desk Lamp"].id).views


def test_retried_batch_is_stored_once(tracker, shop, db):
    views = lamp_views(db, shop)
    batch = [ev(shop, event_id=f"r-{i}") for i in range(5)]
    first = tracker.track_many(batch)
    second = tracker.track_many(batch)
    assert first.accepted == 5 and second.duplicates == 5
    assert [r.interaction_id for r in first.results] == [r.interaction_id for r in second.results]
    with Session(db) as s:
        prefs = s.get(UserPreferences, shop.users["bob"].id)
        assert prefs.event_count == 5
    assert lamp_views(db, shop) == views + 5  # counted from the view events


def test_nothing_is_half_written_when_the_database_fails_mid_batch(
    tracker, shop, db, queue, monkeypatch
):
    real = crud.apply_cart_and_wishlist

    def failing(*, session, events):
        real(session=session, events=events)  # the rows are in, the commit is not
        raise RuntimeError("disk full")

    monkeypatch.setattr(crud, "apply_cart_and_wishlist", failing)
    before, views = count(db), lamp_views(db, shop)
    batch = [
        ev(shop, action="add_to_cart", event_id="h-1"),
        ev(shop, product="Cast Iron Skillet", event_id="h-2"),
        ev(shop, product="Electric Kettle", event_id="h-3"),
    ]
    with pytest.raises(RuntimeError):
        tracker.track_many(batch)
    assert count(db) == before
    assert count(db, UserPreferences) == 0
    with Session(db) as s:
        assert s.get(CartItem, (shop.users["bob"].id, shop.products["Desk Lamp"].id)) is None
    assert lamp_views(db, shop) == views
    assert queue.depth == 0
    monkeypatch.setattr(crud, "apply_cart_and_wishlist", real)
    assert tracker.track_many(batch).accepted == 3  # the client's retry goes through whole


def test_profiles_follow_events_and_the_cache_is_invalidated(tracker, shop, db):
    bob = shop.users["bob"].id
    tracker.cache.set(recommendations_key(bob), "weighted:5", "old", ttl_seconds=60)
    tracker.cache.set(f"rec:explanations:{bob}", "x", "old", ttl_seconds=60)
    tracker.track_many(
        [
            ev(shop, product="Cast Iron Skillet", action="purchase"),
            ev(shop, product="Desk Lamp", action="wishlist"),
            ev(shop, product=None, action="search", query="kitchen knife"),
        ]
    )
    assert tracker.cache.get(recommendations_key(bob), "weighted:5") is None
    assert tracker.cache.get(f"rec:explanations:{bob}", "x") is None
    with Session(db) as s:
        prefs = s.get(UserPreferences, bob)
    assert prefs.category_affinity == {"Kitchen": 6.0, "Home": 3.0}
    assert prefs.tag_affinity["cookware"] == 6.0
    assert prefs.tag_affinity["kitchen"] == 7.0  # 6 from the purchase, 1 from the search word
    assert prefs.recent_items[:2] == [
        str(shop.products["Desk Lamp"].id),
        str(shop.products["Cast Iron Skillet"].id),
    ]
    assert prefs.recent_searches == ["kitchen knife"]
    assert prefs.event_count == 3


def test_single_event_keeps_its_errors(tracker, shop):
    with pytest.raises(InvalidInputError, match="does not exist"):
        tracker.track(EventIn.model_validate(ev(shop, product_id=str(uuid.uuid4()))))
    first = tracker.track(EventIn.model_validate(ev(shop, event_id="one")))
    again = tracker.track(EventIn.model_validate(ev(shop, event_id="one")))
    assert not first.duplicate and again.duplicate
    assert first.interaction_id == again.interaction_id


def test_batches_are_bounded(tracker, shop):
    with pytest.raises(InvalidInputError, match="at most"):
        tracker.track_many([ev(shop)] * (MAX_BATCH + 1))
