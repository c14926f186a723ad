"""Data-access functions: every query lives here, keyword-only, session passed explicitly."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from backend.db.models import (
    Action,
    CartItem,
    CoInteraction,
    EventOutbox,
    IndexState,
    Interaction,
    ProcessedEvent,
    Product,
    User,
    UserPreferences,
    UserRecommendation,
    WishlistItem,
    WorkerCounter,
    as_utc,
)
from backend.pagination import Page
from backend.recommender.snapshot import ProductRecord

# --- catalog -------------------------------------------------------------------------------


def catalog_version(*, session: Session) -> str:
    """Changes whenever a product is added, removed or updated: the snapshot's staleness key."""
    count, latest = session.exec(select(func.count(), func.max(Product.updated_at))).one()
    return f"{count}:{latest.isoformat() if latest else '-'}"


def last_index_run(*, session: Session, collection: str) -> datetime | None:
    """When the vector index was last (re)built: part of the snapshot's staleness key."""
    state = session.get(IndexState, collection)
    return state.last_run_at if state is not None else None


def load_catalog(*, session: Session) -> list[ProductRecord]:
    fields = (
        "id", "name", "category", "price", "quantity", "tags", "image_url", "description",
        "latitude", "longitude",
    )  # fmt: skip
    # Plain columns, not ORM objects: at 100k products this is several times faster.
    rows = session.execute(
        sa.select(*(col(getattr(Product, f)) for f in fields)).order_by(
            col(Product.created_at), col(Product.id)
        )
    ).all()
    return [
        ProductRecord(
            id=r[0],
            name=r[1],
            category=r[2],
            price=r[3],
            quantity=r[4],
            tags=tuple(r[5] or ()),
            image_url=r[6],
            description=r[7] or "",
            latitude=r[8],
            longitude=r[9],
        )
        for r in rows
    ]


def interaction_counts(*, session: Session) -> dict[uuid.UUID, int]:
    """Interactions per product: the popularity the cold-start answer ranks by."""
    rows = session.exec(
        select(Interaction.product_id, func.count())
        .where(col(Interaction.product_id).is_not(None))
        .group_by(col(Interaction.product_id))
    ).all()
    return {pid: int(n) for pid, n in rows if pid is not None}


def list_products(
    *,
    session: Session,
    limit: int,
    offset: int,
    category: str | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    in_stock: bool | None = None,
    q: str | None = None,
) -> Page[Product]:
    conditions: list[sa.ColumnElement[bool]] = []
    if category is not None:
        conditions.append(col(Product.category) == category)
    if min_price is not None:
        conditions.append(col(Product.price) >= min_price)
    if max_price is not None:
        conditions.append(col(Product.price) <= max_price)
    if in_stock is True:
        conditions.append(col(Product.quantity) > 0)
    elif in_stock is False:
        conditions.append(col(Product.quantity) == 0)
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        conditions.append(
            sa.or_(
                func.lower(Product.name).like(pattern, escape="\\"),
                func.lower(Product.description).like(pattern, escape="\\"),
            )
        )
    total = session.exec(select(func.count()).select_from(Product).where(*conditions)).one()
    items = session.exec(
        select(Product)
        .where(*conditions)
        .order_by(col(Product.name), col(Product.id))
        .limit(limit)
        .offset(offset)
    ).all()
    return Page(items=list(items), total=int(total), limit=limit, offset=offset)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_product(*, session: Session, product_id: uuid.UUID) -> Product | None:
    return session.get(Product, product_id)


def list_categories(*, session: Session) -> list[tuple[str, int]]:
    rows = session.exec(
        select(Product.category, func.count())
        .group_by(col(Product.category))
        .order_by(col(Product.category))
    ).all()
    return [(name, int(n)) for name, n in rows]


def existing_product_ids(*, session: Session, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    return set(session.exec(select(Product.id).where(col(Product.id).in_(ids))).all())


# --- users ---------------------------------------------------------------------------------


def list_users(*, session: Session, limit: int, offset: int, q: str | None = None) -> Page[User]:
    conditions: list[sa.ColumnElement[bool]] = []
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        conditions.append(
            sa.or_(
                func.lower(User.username).like(pattern, escape="\\"),
                func.lower(func.coalesce(User.full_name, "")).like(pattern, escape="\\"),
            )
        )
    total = session.exec(select(func.count()).select_from(User).where(*conditions)).one()
    items = session.exec(
        select(User).where(*conditions).order_by(col(User.username)).limit(limit).offset(offset)
    ).all()
    return Page(items=list(items), total=int(total), limit=limit, offset=offset)


def get_user(*, session: Session, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def existing_user_ids(*, session: Session, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    return set(session.exec(select(User.id).where(col(User.id).in_(ids))).all())


# --- interactions and derived histories ----------------------------------------------------


def recent_interactions(
    *, session: Session, user_id: uuid.UUID, limit: int = 500
) -> list[Interaction]:
    """The user's newest interactions first (bounded: a profile needs recent history only)."""
    return list(
        session.exec(
            select(Interaction)
            .where(Interaction.user_id == user_id)
            .order_by(col(Interaction.created_at).desc(), col(Interaction.id))
            .limit(limit)
        ).all()
    )


def search_history(*, session: Session, user_id: uuid.UUID, limit: int = 20) -> list[str]:
    rows = session.exec(
        select(Interaction.query)
        .where(Interaction.user_id == user_id, Interaction.action == Action.SEARCH)
        .order_by(col(Interaction.created_at).desc())
        .limit(limit)
    ).all()
    return [q for q in rows if q]


def products_by_action(
    *, session: Session, user_id: uuid.UUID, action: Action, limit: int = 20
) -> list[Product]:
    """Distinct products the user acted on, newest first (purchase history, views…)."""
    latest = (
        select(Interaction.product_id, func.max(Interaction.created_at).label("at"))
        .where(Interaction.user_id == user_id, Interaction.action == action)
        .group_by(col(Interaction.product_id))
        .subquery()
    )
    rows = session.exec(
        select(Product)
        .join(latest, latest.c.product_id == Product.id)
        .order_by(latest.c.at.desc())
        .limit(limit)
    ).all()
    return list(rows)


def cart(*, session: Session, user_id: uuid.UUID) -> list[tuple[Product, int]]:
    rows = session.exec(
        select(Product, CartItem.quantity)
        .join(CartItem, col(CartItem.product_id) == Product.id)
        .where(CartItem.user_id == user_id)
        .order_by(col(CartItem.added_at).desc())
    ).all()
    return [(p, int(q)) for p, q in rows]


def wishlist(*, session: Session, user_id: uuid.UUID) -> list[Product]:
    rows = session.exec(
        select(Product)
        .join(WishlistItem, col(WishlistItem.product_id) == Product.id)
        .where(WishlistItem.user_id == user_id)
        .order_by(col(WishlistItem.added_at).desc())
    ).all()
    return list(rows)


def _apply_side_effects(session: Session, event: Interaction, action: Action) -> None:
    if event.product_id is None:
        return
    key = (event.user_id, event.product_id)
    if action is Action.VIEW:
        session.execute(
            sa.update(Product)
            .where(col(Product.id) == event.product_id)
            .values(views=col(Product.views) + 1)
        )
    elif action is Action.ADD_TO_CART:
        item = session.get(CartItem, key)
        if item is None:
            session.add(CartItem(user_id=key[0], product_id=key[1], added_at=event.created_at))
        else:
            item.quantity += 1
    elif action in (Action.REMOVE_FROM_CART, Action.PURCHASE):
        item = session.get(CartItem, key)
        if item is not None:
            session.delete(item)
    elif action is Action.WISHLIST and session.get(WishlistItem, key) is None:
        session.add(WishlistItem(user_id=key[0], product_id=key[1], added_at=event.created_at))
    session.flush()


# --- live profiles, precomputed recommendations, worker statistics --------------------------


def find_events(
    *, session: Session, sources: Sequence[str], event_ids: Sequence[str]
) -> dict[tuple[str, str], Interaction]:
    """Stored events by (sender, event id), for the given senders' ids."""
    if not event_ids or not sources:
        return {}
    rows = session.exec(
        select(Interaction).where(
            col(Interaction.event_source).in_(sources), col(Interaction.event_id).in_(event_ids)
        )
    ).all()
    return {
        (row.event_source, row.event_id): row
        for row in rows
        if row.event_id is not None and row.event_source is not None
    }


def store_interaction(*, session: Session, interaction: Interaction) -> None:
    """Add a new event and its side effects; the caller owns the (batch) transaction."""
    session.add(interaction)
    _apply_side_effects(session, interaction, Action(interaction.action))
    session.flush()


def product_facets(
    *, session: Session, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, list[str]]]:
    """Category and tags per product: what a profile update needs to know about it."""
    if not ids:
        return {}
    rows = session.execute(
        sa.select(col(Product.id), col(Product.category), col(Product.tags)).where(
            col(Product.id).in_(ids)
        )
    ).all()
    return {r[0]: (r[1], list(r[2] or ())) for r in rows}


def preferences_for_update(
    *, session: Session, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, UserPreferences]:
    """Lock the users' profile rows (in id order, so concurrent batches cannot deadlock)."""
    if not user_ids:
        return {}
    rows = session.exec(
        select(UserPreferences)
        .where(col(UserPreferences.user_id).in_(sorted(set(user_ids))))
        .order_by(col(UserPreferences.user_id))
        .with_for_update()
    ).all()
    return {row.user_id: row for row in rows}


def profile_version(*, session: Session, user_id: uuid.UUID) -> int:
    value = session.exec(
        select(UserPreferences.event_count).where(UserPreferences.user_id == user_id)
    ).first()
    return int(value or 0)


def replace_user_recommendations(
    *, session: Session, user_id: uuid.UUID, rows: Sequence[UserRecommendation]
) -> None:
    session.execute(sa.delete(UserRecommendation).where(col(UserRecommendation.user_id) == user_id))
    session.add_all(rows)
    session.flush()


def fresh_user_recommendations(
    *,
    session: Session,
    user_id: uuid.UUID,
    strategy: str,
    top_n: int,
    catalog_version: str,
    not_before: datetime,
) -> list[UserRecommendation] | None:
    """The precomputed list when it answers this request and reflects every event; else None."""
    rows = list(
        session.exec(
            select(UserRecommendation)
            .where(UserRecommendation.user_id == user_id)
            .order_by(col(UserRecommendation.rank))
        ).all()
    )
    if not rows:
        return None
    first = rows[0]
    if (
        first.strategy != strategy
        or first.top_n != top_n
        or first.catalog_version != catalog_version
        or as_utc(first.updated_at) < not_before
        or first.profile_version != profile_version(session=session, user_id=user_id)
    ):
        return None
    return rows


def processed_interaction_ids(*, session: Session, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    return set(
        session.exec(
            select(ProcessedEvent.interaction_id).where(col(ProcessedEvent.interaction_id).in_(ids))
        ).all()
    )


def mark_processed(*, session: Session, ids: Sequence[uuid.UUID], at: datetime) -> None:
    session.add_all(ProcessedEvent(interaction_id=i, processed_at=at) for i in ids)
    session.flush()


# --- the event outbox ------------------------------------------------------------------------


def add_to_outbox(*, session: Session, ids: Sequence[uuid.UUID], at: datetime) -> None:
    session.add_all(EventOutbox(interaction_id=i, stored_at=at) for i in ids)
    session.flush()


def remove_from_outbox(
    *, session: Session, ids: Sequence[uuid.UUID], wait_for_disk: bool = True
) -> None:
    """``wait_for_disk=False``: on PostgreSQL the commit does not wait for the WAL flush (a
    row lost to a crash only makes the sweep announce its event once more)."""
    if not ids:
        return
    if not wait_for_disk and session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
    session.execute(sa.delete(EventOutbox).where(col(EventOutbox.interaction_id).in_(ids)))


def claim_outbox(
    *,
    session: Session,
    before: datetime,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[tuple[EventOutbox, Interaction]]:
    """The oldest outbox rows stored before ``before`` (and after the cursor ``after``), with
    their events. On PostgreSQL the rows stay locked until the transaction ends, and rows
    another sweeper holds are skipped, so two sweepers never publish the same row at once."""
    query = (
        select(EventOutbox, Interaction)
        .join(Interaction, col(Interaction.id) == col(EventOutbox.interaction_id))
        .where(col(EventOutbox.stored_at) < before)
    )
    if after is not None:
        at, last = after
        stored_at, interaction_id = col(EventOutbox.stored_at), col(EventOutbox.interaction_id)
        query = query.where(sa.or_(stored_at > at, sa.and_(stored_at == at, interaction_id > last)))
    query = (
        query.order_by(col(EventOutbox.stored_at), col(EventOutbox.interaction_id))
        .limit(limit)
        .with_for_update(of=EventOutbox, skip_locked=True)
    )
    return [(row[0], row[1]) for row in session.exec(query).all()]


def outbox_size(*, session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(EventOutbox)).one())


def existing_interaction_ids(*, session: Session, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    return set(session.exec(select(Interaction.id).where(col(Interaction.id).in_(ids))).all())


def earlier_purchases(
    *,
    session: Session,
    user_id: uuid.UUID,
    before: datetime,
    interaction_id: uuid.UUID,
    limit: int = 50,
) -> list[uuid.UUID]:
    """Distinct products the user bought strictly before this event (by time, then id).

    Pairing each purchase only with earlier ones counts every pair once, whatever order
    the worker sees the events in.
    """
    at = as_utc(before)
    rows = session.exec(
        select(Interaction.product_id, func.max(Interaction.created_at))
        .where(
            Interaction.user_id == user_id,
            Interaction.action == Action.PURCHASE.value,
            col(Interaction.product_id).is_not(None),
            sa.or_(
                col(Interaction.created_at) < at,
                sa.and_(col(Interaction.created_at) == at, col(Interaction.id) < interaction_id),
            ),
        )
        .group_by(col(Interaction.product_id))
        .order_by(func.max(Interaction.created_at).desc(), col(Interaction.product_id))
        .limit(limit)
    ).all()
    return [pid for pid, _ in rows if pid is not None]


def bump_co_interactions(
    *, session: Session, counts: Mapping[tuple[uuid.UUID, uuid.UUID, str], int], at: datetime
) -> None:
    """Add to pair counters with SQL increments, so concurrent workers never lose an update."""
    for (product_id, other_id, kind), n in sorted(counts.items(), key=lambda kv: str(kv[0])):
        result = session.execute(
            sa.update(CoInteraction)
            .where(
                col(CoInteraction.product_id) == product_id,
                col(CoInteraction.other_product_id) == other_id,
                col(CoInteraction.kind) == kind,
            )
            .values(count=col(CoInteraction.count) + n, updated_at=at)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            session.add(
                CoInteraction(
                    product_id=product_id,
                    other_product_id=other_id,
                    kind=kind,
                    count=n,
                    updated_at=at,
                )
            )
            session.flush()


def co_interactions(
    *, session: Session, product_id: uuid.UUID, kind: str = "bought_together", limit: int = 10
) -> list[tuple[uuid.UUID, int]]:
    """Products most often acted on together with this one (e.g. frequently bought together)."""
    rows = session.exec(
        select(CoInteraction.other_product_id, CoInteraction.count)
        .where(CoInteraction.product_id == product_id, CoInteraction.kind == kind)
        .order_by(col(CoInteraction.count).desc(), col(CoInteraction.other_product_id))
        .limit(limit)
    ).all()
    return [(pid, int(n)) for pid, n in rows]


def bump_counter(*, session: Session, name: str, by: int, at: datetime) -> int:
    result = session.execute(
        sa.update(WorkerCounter)
        .where(col(WorkerCounter.name) == name)
        .values(value=col(WorkerCounter.value) + by, updated_at=at)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(WorkerCounter(name=name, value=by, updated_at=at))
        session.flush()
    return get_counter(session=session, name=name)


def set_counter(*, session: Session, name: str, value: int, at: datetime) -> None:
    row = session.get(WorkerCounter, name)
    if row is None:
        session.add(WorkerCounter(name=name, value=value, updated_at=at))
    else:
        row.value, row.updated_at = value, at
    session.flush()


def get_counter(*, session: Session, name: str) -> int:
    value = session.exec(select(WorkerCounter.value).where(WorkerCounter.name == name)).first()
    return int(value or 0)
