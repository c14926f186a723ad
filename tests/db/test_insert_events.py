"""``insert_new_events`` on SQLite and on the real PostgreSQL (arrays through ``unnest``): the
rows stored as given, an event id already stored (or repeated in the group) skipped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from sqlmodel import Session, col, select

from backend.db import crud
from backend.db.crud.events import NewEvent
from backend.db.models import CartItem, Interaction, WishlistItem
from tests.factories import build_shop

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(user, product, *, event_id: str | None, source: str = "open", **kw) -> NewEvent:
    fields = {
        "id": uuid.uuid4(),
        "user_id": user,
        "product_id": product,
        "action": "view",
        "query": None,
        "event_id": event_id,
        "event_source": source,
        "created_at": T0,
    } | kw
    return NewEvent(**fields)


def test_rows_are_stored_as_given_and_known_ids_are_skipped(db):
    shop = build_shop(db)
    bob, lamp = shop.users["bob"].id, shop.products["Desk Lamp"].id
    first = [
        event(bob, lamp, event_id="e1"),
        event(bob, None, event_id=None, action="search", query="lamp"),  # NULLs in every array
        event(bob, lamp, event_id="e2", created_at=T0.astimezone(timezone(timedelta(hours=2)))),
        event(bob, lamp, event_id="e2"),  # the group's own repeat: the first one wins
        event(bob, lamp, event_id="e2", source="key:other"),  # another sender's namespace
    ]
    with Session(db) as session:
        inserted = crud.insert_new_events(session=session, rows=first)
        session.commit()
    assert inserted == {first[i].id for i in (0, 1, 2, 4)}

    again = [event(bob, lamp, event_id="e1"), event(bob, lamp, event_id="e3")]
    with Session(db) as session:
        assert crud.insert_new_events(session=session, rows=again) == {again[1].id}
        assert crud.insert_new_events(session=session, rows=[]) == set()
        session.commit()
        ours = [e.id for e in first + again]
        query = select(Interaction).where(col(Interaction.id).in_(ours))
        stored = {row.id: row for row in session.exec(query).all()}
    assert set(stored) == {first[i].id for i in (0, 1, 2, 4)} | {again[1].id}
    search = stored[first[1].id]
    assert (search.action, search.query, search.product_id, search.event_id) == (
        "search",
        "lamp",
        None,
        None,
    )
    moved = stored[first[2].id]
    assert moved.created_at == T0 and moved.created_at.tzinfo is not None
    assert (moved.user_id, moved.product_id, moved.event_source) == (bob, lamp, "open")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_carts_and_wishlists_follow_the_events_in_order(db):
    shop = build_shop(db)
    bob = shop.users["bob"].id
    lamp, case, kettle, speaker = (
        shop.products[name].id
        for name in ("Desk Lamp", "Phone Case", "Electric Kettle", "Pocket Speaker")
    )
    with Session(db) as session:
        session.add(CartItem(user_id=bob, product_id=lamp, quantity=2, added_at=at(-60)))
        session.add(CartItem(user_id=bob, product_id=case, quantity=1, added_at=at(-60)))
        session.add(WishlistItem(user_id=bob, product_id=lamp, added_at=at(-60)))
        session.commit()
    group = [
        event(bob, lamp, event_id=None, action="add_to_cart", created_at=at(1)),  # 2 -> 3
        event(bob, case, event_id=None, action="purchase", created_at=at(2)),  # bought: gone
        event(bob, case, event_id=None, action="add_to_cart", created_at=at(3)),  # a new row
        event(bob, kettle, event_id=None, action="add_to_cart", created_at=at(4)),
        event(bob, kettle, event_id=None, action="add_to_cart", created_at=at(5)),
        event(bob, speaker, event_id=None, action="add_to_cart", created_at=at(6)),
        event(bob, speaker, event_id=None, action="remove_from_cart", created_at=at(7)),
        event(bob, lamp, event_id=None, action="wishlist", created_at=at(8)),  # already there
        event(bob, kettle, event_id=None, action="wishlist", created_at=at(9)),
        event(bob, kettle, event_id=None, action="wishlist", created_at=at(10)),
        event(bob, speaker, event_id=None, action="view", created_at=at(11)),  # no effect
    ]
    with Session(db) as session:
        crud.insert_new_events(session=session, rows=group)
        crud.apply_cart_and_wishlist(session=session, events=group)
        session.commit()
        cart = {
            c.product_id: (c.quantity, c.added_at)
            for c in session.exec(select(CartItem).where(CartItem.user_id == bob)).all()
        }
        wishlist = {
            w.product_id: w.added_at
            for w in session.exec(select(WishlistItem).where(WishlistItem.user_id == bob)).all()
        }
    assert cart == {lamp: (3, at(-60)), case: (1, at(3)), kettle: (2, at(4))}
    assert wishlist == {lamp: at(-60), kettle: at(9)}
