"""Stored events: the checks before a write, the write itself, and what follows from it.

A group of events is written with one ``INSERT … ON CONFLICT DO NOTHING RETURNING``: an event
whose (sender, event id) is already stored is skipped by the database itself, so two processes
racing on the same id can never both store it, and neither fails. On PostgreSQL the rows travel
as one array per column (``unnest``): the same short statement whatever the group's size, which
the server prepares once per connection, instead of a multi-row VALUES it parses every time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from backend.db.models import (
    Action,
    CartItem,
    Interaction,
    Product,
    User,
    WishlistItem,
    as_utc,
)

_INTERACTION: sa.Table = Interaction.__table__  # type: ignore[attr-defined]
_CART: sa.Table = CartItem.__table__  # type: ignore[attr-defined]
_WISHLIST: sa.Table = WishlistItem.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class NewEvent:
    """An event to store, as plain fields: building a SQLModel object per event cost more
    than inserting it."""

    id: uuid.UUID
    user_id: uuid.UUID
    product_id: uuid.UUID | None
    action: str
    query: str | None
    event_id: str | None
    event_source: str
    created_at: datetime


_EVENT_FIELDS = tuple(f.name for f in fields(NewEvent))
# An event either about to be stored or read back: both carry the same fields.
AnyEvent = Interaction | NewEvent
_CART_ACTIONS = frozenset(
    a.value for a in (Action.ADD_TO_CART, Action.REMOVE_FROM_CART, Action.PURCHASE, Action.WISHLIST)
)


# The statements every POST /events runs, built once: building one (SQLAlchemy's coercions,
# its cache key) cost about as much CPU as running it, on the API's GIL.
_EXISTING = sa.union_all(
    sa.select(col(User.id), sa.literal("u").label("kind")).where(
        col(User.id).in_(sa.bindparam("users", expanding=True))
    ),
    sa.select(col(Product.id), sa.literal("p")).where(
        col(Product.id).in_(sa.bindparam("products", expanding=True))
    ),
)


def existing_users_and_products(
    *, session: Session, user_ids: Sequence[uuid.UUID], product_ids: Sequence[uuid.UUID]
) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Which of these users and products exist, in one round trip."""
    found: tuple[set[uuid.UUID], set[uuid.UUID]] = (set(), set())
    params = {"users": list(user_ids), "products": list(product_ids)}
    for row_id, kind in session.execute(_EXISTING, params).all():
        found[0 if kind == "u" else 1].add(_uuid(row_id))
    return found


def _uuid(value: object) -> uuid.UUID:
    # A UNION's column takes its type from the first SELECT; a driver may still hand back text.
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def find_events(
    *, session: Session, sources: Sequence[str], event_ids: Sequence[str]
) -> dict[tuple[str, str], Interaction]:
    """Stored events by (sender, event id), for the given senders' ids."""
    if not event_ids or not sources:
        return {}
    rows = session.exec(
        select(Interaction).where(
            col(Interaction.event_source).in_(list(set(sources))),
            col(Interaction.event_id).in_(list(set(event_ids))),
        )
    ).all()
    return {
        (row.event_source, row.event_id): row
        for row in rows
        if row.event_id is not None and row.event_source is not None
    }


def has_event_ids_of(*, session: Session, source: str) -> bool:
    """Whether any stored event of this sender carries an event id."""
    query = select(Interaction.id).where(
        Interaction.event_source == source, col(Interaction.event_id).is_not(None)
    )
    return session.exec(query.limit(1)).first() is not None


# Column order of _EVENT_FIELDS; the casts give every array its type even when all its
# elements are NULL.
_PG_ARRAYS = ("uuid", "uuid", "uuid", "text", "text", "text", "text", "timestamptz")
_PG_INSERT = sa.text(
    f"INSERT INTO {_INTERACTION.name} ({', '.join(_EVENT_FIELDS)}) "
    "SELECT * FROM unnest("
    + ", ".join(f"CAST(:{n} AS {t}[])" for n, t in zip(_EVENT_FIELDS, _PG_ARRAYS, strict=True))
    + ") ON CONFLICT (event_source, event_id) DO NOTHING RETURNING id"
)
_SQLITE_INSERT = (
    sqlite.insert(_INTERACTION)
    .on_conflict_do_nothing(index_elements=["event_source", "event_id"])
    .returning(_INTERACTION.c.id)
)


def insert_new_events(*, session: Session, rows: Sequence[NewEvent]) -> set[uuid.UUID]:
    """Insert the events whose (sender, event id) is not stored yet; returns the ids of the
    rows inserted. PostgreSQL gets one statement with an array per column; SQLite gets
    SQLAlchemy's multi-row INSERTs (about 1,000 rows a statement)."""
    if not rows:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        arrays = {name: [getattr(row, name) for row in rows] for name in _EVENT_FIELDS}
        arrays["created_at"] = [as_utc(at) for at in arrays["created_at"]]
        return {_uuid(i) for i in session.execute(_PG_INSERT, arrays).scalars()}
    params = [{name: getattr(row, name) for name in _EVENT_FIELDS} for row in rows]
    return {_uuid(i) for i in session.execute(_SQLITE_INSERT, params).scalars()}


def apply_cart_and_wishlist(*, session: Session, events: Sequence[AnyEvent]) -> None:
    """Carts and wishlists follow the events, in the order given, without reading them first:
    each (user, product) of the group is reduced to one upsert or delete, so the write costs
    a few statements whatever the carts hold (and a concurrent group adds, not overwrites)."""
    relevant = [e for e in events if e.product_id is not None and e.action in _CART_ACTIONS]
    if not relevant:
        return
    cart: dict[tuple[uuid.UUID, uuid.UUID], _CartChange] = {}
    wished: dict[tuple[uuid.UUID, uuid.UUID], datetime] = {}
    for event in relevant:
        assert event.product_id is not None
        key = (event.user_id, event.product_id)
        if event.action == Action.WISHLIST.value:
            wished.setdefault(key, event.created_at)
            continue
        change = cart.setdefault(key, _CartChange())
        if event.action == Action.ADD_TO_CART.value:
            change.added += 1
            change.first_added = change.first_added or event.created_at
        else:  # removed or bought: the row goes, a later add of the group starts a new one
            change.emptied, change.added, change.first_added = True, 0, None
    insert: Any = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    keys = sorted(cart)  # one order in every process: concurrent groups cannot deadlock
    gone = [k for k in keys if cart[k].emptied and not cart[k].added]
    if gone:
        session.execute(
            sa.delete(_CART).where(sa.tuple_(_CART.c.user_id, _CART.c.product_id).in_(gone))
        )
    for emptied in (False, True):
        rows = [
            {"user_id": k[0], "product_id": k[1], "quantity": c.added, "added_at": c.first_added}
            for k in keys
            if (c := cart[k]).added and c.emptied is emptied
        ]
        if not rows:
            continue
        statement = insert(_CART)
        kept = {"quantity": _CART.c.quantity + statement.excluded.quantity}
        fresh = {"quantity": statement.excluded.quantity, "added_at": statement.excluded.added_at}
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id", "product_id"], set_=fresh if emptied else kept
            ),
            rows,
        )
    if wished:
        session.execute(
            insert(_WISHLIST).on_conflict_do_nothing(index_elements=["user_id", "product_id"]),
            [
                {"user_id": k[0], "product_id": k[1], "added_at": at}
                for k, at in sorted(wished.items())
            ],
        )


@dataclass(slots=True)
class _CartChange:
    """What a group does to one cart row: emptied it (removed or bought), then added n."""

    emptied: bool = False
    added: int = 0
    first_added: datetime | None = None
