"""Products: the catalog the engine snapshot loads, browsing, existence checks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from backend.db.crud.common import escape_like
from backend.db.models import (
    Action,
    IndexState,
    Interaction,
    Product,
)
from backend.pagination import Page
from backend.recommender.snapshot import ProductRecord


@dataclass(frozen=True, slots=True)
class ViewedProduct:
    """A product as the catalog shows it, with its views counted from the view events
    (``view_counts``): no column holds them, so no event ever rewrites the product row."""

    product: Product
    views: int


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
) -> Page[ViewedProduct]:
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
        pattern = f"%{escape_like(q.lower())}%"
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
    views = view_counts(session=session, ids=[p.id for p in items])
    return Page(
        items=[ViewedProduct(p, views.get(p.id, 0)) for p in items],
        total=int(total),
        limit=limit,
        offset=offset,
    )


def get_product(*, session: Session, product_id: uuid.UUID) -> ViewedProduct | None:
    product = session.get(Product, product_id)
    if product is None:
        return None
    return ViewedProduct(product, view_counts(session=session, ids=[product.id]).get(product.id, 0))


def view_counts(*, session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """A product's views: its view events, counted when read (a product without any is
    missing from the answer). Counting on read keeps a burst of views of one product from
    queueing on its row, which a per-view ``views = views + 1`` did."""
    if not ids:
        return {}
    rows = session.exec(
        select(Interaction.product_id, func.count())
        .where(
            col(Interaction.product_id).in_(ids),
            Interaction.action == Action.VIEW.value,
        )
        .group_by(col(Interaction.product_id))
    ).all()
    return {pid: int(n) for pid, n in rows if pid is not None}


def list_categories(*, session: Session) -> list[tuple[str, int]]:
    rows = session.exec(
        select(Product.category, func.count())
        .group_by(col(Product.category))
        .order_by(col(Product.category))
    ).all()
    return [(name, int(n)) for name, n in rows]


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
