"""The worker's bookkeeping statements (built once, run for every batch) on SQLite and
PostgreSQL: the ledger's two answers in one query, co-purchase counters that add up across
transactions, earlier purchases ordered by time then id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.db import crud
from backend.db.engine import session_scope
from backend.db.models import CoInteraction, Interaction
from tests.factories import build_shop

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def add_events(db, *events) -> list[uuid.UUID]:
    rows = [
        Interaction(user_id=u.id, product_id=p.id, action=a, created_at=at)
        for u, p, a, at in events
    ]
    with session_scope(db) as s:
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def test_the_ledger_tells_stored_from_counted_in_one_answer(db):
    shop = build_shop(db)
    bob, lamp = shop.users["bob"], shop.products["Desk Lamp"]
    counted, waiting, deleted = add_events(
        db, *[(bob, lamp, "view", T0 + timedelta(seconds=i)) for i in range(3)]
    )
    with session_scope(db) as s:
        crud.mark_processed(session=s, ids=[counted], at=T0)
        s.execute(sa.delete(Interaction).where(Interaction.id == deleted))
    never = uuid.uuid4()
    with Session(db) as s:
        alive, done = crud.ledger(session=s, ids=[counted, waiting, deleted, never])
        assert crud.ledger(session=s, ids=[]) == (set(), set())
    assert alive == {counted, waiting}
    assert done == {counted}


def test_co_purchase_counters_add_up_across_transactions(db):
    shop = build_shop(db)
    lamp, kettle = shop.products["Desk Lamp"].id, shop.products["Electric Kettle"].id
    skillet = shop.products["Cast Iron Skillet"].id
    kind = "bought_together"
    with session_scope(db) as s:
        crud.bump_co_interactions(
            session=s, counts={(lamp, kettle, kind): 2, (kettle, lamp, kind): 2}, at=T0
        )
    later = T0 + timedelta(minutes=1)
    with session_scope(db) as s:  # one pair exists (an increment), one is new (an insert)
        crud.bump_co_interactions(
            session=s, counts={(lamp, kettle, kind): 3, (lamp, skillet, kind): 1}, at=later
        )
        crud.bump_co_interactions(session=s, counts={}, at=later)  # nothing to do
    with Session(db) as s:
        rows = s.exec(select(CoInteraction)).all()
        found = {(r.product_id, r.other_product_id): (r.count, r.updated_at) for r in rows}
    assert {k: n for k, (n, _) in found.items()} == {
        (lamp, kettle): 5,
        (kettle, lamp): 2,
        (lamp, skillet): 1,
    }
    assert found[(lamp, kettle)][1].replace(tzinfo=UTC) == later
    assert found[(kettle, lamp)][1].replace(tzinfo=UTC) == T0


def test_earlier_purchases_are_the_ones_before_by_time_then_id(db):
    shop = build_shop(db)
    carol, p = shop.users["carol"], shop.products
    ids = add_events(
        db,
        (carol, p["Desk Lamp"], "purchase", T0),
        (carol, p["Phone Case"], "purchase", T0 + timedelta(seconds=1)),
        (carol, p["Travel Charger"], "view", T0 + timedelta(seconds=1)),  # not a purchase
        (carol, p["Pocket Speaker"], "purchase", T0 + timedelta(seconds=2)),
        (carol, p["Cast Iron Skillet"], "purchase", T0 + timedelta(seconds=2)),
        (carol, p["Desk Lamp"], "purchase", T0 + timedelta(seconds=3)),
    )
    speaker, skillet, last = ids[3], ids[4], ids[5]
    # Two purchases at the same moment: only the one with the smaller id is "before".
    first, second = sorted([(speaker, "Pocket Speaker"), (skillet, "Cast Iron Skillet")])
    with Session(db) as s:

        def before(event_id: uuid.UUID, at: datetime, limit: int = 50) -> list[uuid.UUID]:
            return crud.earlier_purchases(
                session=s, user_id=carol.id, before=at, interaction_id=event_id, limit=limit
            )

        at2 = T0 + timedelta(seconds=2)
        assert before(first[0], at2) == [p["Phone Case"].id, p["Desk Lamp"].id]
        assert before(second[0], at2) == [
            p[first[1]].id, p["Phone Case"].id, p["Desk Lamp"].id
        ]  # fmt: skip
        newest_two = before(last, T0 + timedelta(seconds=3), limit=2)
        assert newest_two == sorted([p["Pocket Speaker"].id, p["Cast Iron Skillet"].id])
        assert before(ids[0], T0) == []
        assert before(last, T0 + timedelta(seconds=3), limit=50)[-1] == p["Desk Lamp"].id


def test_counters_are_bumped_together_and_started_when_missing(db):
    with session_scope(db) as s:
        assert crud.bump_counters(session=s, names=["a", "b"], by=3, at=T0) == {"a": 3, "b": 3}
    with session_scope(db) as s:
        crud.set_counter(session=s, name="b", value=0, at=T0)
        assert crud.bump_counters(session=s, names=["b", "a", "c"], by=2, at=T0) == {
            "a": 5, "b": 2, "c": 2
        }  # fmt: skip
        assert crud.bump_counter(session=s, name="a", by=1, at=T0) == 6
    with Session(db) as s:
        assert [crud.get_counter(session=s, name=n) for n in "abcd"] == [6, 2, 2, 0]
