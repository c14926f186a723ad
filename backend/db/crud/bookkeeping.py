"""The worker's bookkeeping: processed events, co-interaction counters, named counters."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from backend.db.models import (
    Action,
    CoInteraction,
    Interaction,
    ProcessedEvent,
    WorkerCounter,
    as_utc,
)

# Statements every worker batch runs, built once (building cost about as much as running).
_MARK = sa.insert(ProcessedEvent.__table__)  # type: ignore[attr-defined]
_BUMP = (
    sa.update(WorkerCounter)
    .where(col(WorkerCounter.name) == sa.bindparam("counter"))
    .values(value=col(WorkerCounter.value) + sa.bindparam("by"), updated_at=sa.bindparam("at"))
)
_COUNTER = select(WorkerCounter.value).where(col(WorkerCounter.name) == sa.bindparam("counter"))


def processed_interaction_ids(*, session: Session, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    return set(
        session.exec(
            select(ProcessedEvent.interaction_id).where(col(ProcessedEvent.interaction_id).in_(ids))
        ).all()
    )


def mark_processed(*, session: Session, ids: Sequence[uuid.UUID], at: datetime) -> None:
    if ids:  # one multi-row INSERT, not the ORM's unit of work (every worker batch runs it)
        session.execute(_MARK, [{"interaction_id": i, "processed_at": at} for i in ids])


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
    result = session.execute(_BUMP, {"counter": name, "by": by, "at": at})
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
    value = session.exec(_COUNTER, params={"counter": name}).first()
    return int(value or 0)
