"""Event ids are scoped to their sender: a duplicate only within one sender, and a conflict
(never a silent duplicate) when the sender reuses an id for another event."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from backend.db.engine import session_scope
from backend.db.models import Interaction
from backend.services.track import LEGACY_SOURCE, EventConflict, EventIn
from tests.services.test_track import count, ev


def test_two_senders_may_use_the_same_event_id(tracker, shop, db):
    first = tracker.track_many([ev(shop, user="bob", event_id="o-1")], source="shopper:bob")
    second = tracker.track_many(
        [ev(shop, user="alice", action="purchase", event_id="o-1")], source="key:shop"
    )
    assert (first.accepted, second.accepted) == (1, 1)
    with Session(db) as session:
        rows = session.exec(select(Interaction).where(Interaction.event_id == "o-1")).all()
    assert {(r.event_source, r.action) for r in rows} == {
        ("shopper:bob", "view"),
        ("key:shop", "purchase"),
    }


def test_within_one_sender_a_retry_is_a_duplicate_and_another_event_a_conflict(tracker, shop, db):
    event = EventIn.model_validate(ev(shop, event_id="o-2", query=None))
    first = tracker.track(event, source="key:shop")
    assert tracker.track(event, source="key:shop").interaction_id == first.interaction_id
    before = count(db)
    with pytest.raises(EventConflict, match="o-2"):
        tracker.track(EventIn.model_validate(ev(shop, event_id="o-2", action="click")),
                      source="key:shop")  # fmt: skip
    in_one_batch = tracker.track_many(
        [ev(shop, event_id="o-3"), ev(shop, event_id="o-3"), ev(shop, event_id="o-3",
                                                               product="Phone Case")],
        source="key:shop",
    )  # fmt: skip
    assert [r.status for r in in_one_batch.results] == ["accepted", "duplicate", "conflict"]
    assert count(db) == before + 1


def test_a_retry_straddling_the_upgrade_still_finds_its_legacy_event(tracker, shop, db):
    """Events stored before senders were recorded are 'legacy': the same event sent again
    stays a duplicate, but a legacy id never blocks another event of a sender."""
    with session_scope(db) as session:
        legacy = Interaction(
            user_id=shop.users["bob"].id,
            product_id=shop.products["Desk Lamp"].id,
            action="view",
            event_id="old-1",
            event_source=LEGACY_SOURCE,
        )
        session.add(legacy)
    again = tracker.track_many([ev(shop, event_id="old-1")], source="key:shop")
    assert again.results[0].status == "duplicate"
    assert again.results[0].interaction_id == legacy.id
    other = tracker.track_many(
        [ev(shop, user="alice", action="purchase", event_id="old-1")], source="key:shop"
    )
    assert other.results[0].status == "accepted"
