"""``insert_new_events`` on SQLite and on the real PostgreSQL (arrays through ``unnest``): the
rows stored as given, an event id already stored (or repeated in the group) skipped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from sqlmodel import Session, col, select

from backend.db import crud
from backend.db.crud.events import NewEvent
from backend.db.models import Interaction
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
