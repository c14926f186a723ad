"""The worker's bookkeeping: processed events, co-interaction counters, named counters."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
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
# Every named counter of a batch in one round trip, with its new value (RETURNING: SQLite
# 3.35+, PostgreSQL).
# (On the table, not the ORM class: the ORM's update also matched the rows against the
# session's objects, which the worker never loads.)
_COUNTERS: sa.Table = WorkerCounter.__table__  # type: ignore[attr-defined]
_BUMP = (
    sa.update(_COUNTERS)
    .where(_COUNTERS.c.name.in_(sa.bindparam("names", expanding=True)))
    .values(value=_COUNTERS.c.value + sa.bindparam("by"), updated_at=sa.bindparam("at"))
    .returning(_COUNTERS.c.name, _COUNTERS.c.value)
)
_COUNTER = select(WorkerCounter.value).where(col(WorkerCounter.name) == sa.bindparam("counter"))
# Which of a batch's events still exist, and which of those the ledger holds: one round trip
# (a ledger row cannot outlive its event: its foreign key cascades).
_LEDGER = (
    sa.select(col(Interaction.id), col(ProcessedEvent.interaction_id))
    .outerjoin(ProcessedEvent, col(ProcessedEvent.interaction_id) == col(Interaction.id))
    .where(col(Interaction.id).in_(sa.bindparam("ids", expanding=True)))
)


def _earlier_purchases_statement() -> sa.Select[uuid.UUID | None, datetime]:
    at: sa.BindParameter[datetime] = sa.bindparam("at")
    newest = func.max(Interaction.created_at)
    return (
        sa.select(col(Interaction.product_id), newest)
        .where(
            col(Interaction.user_id) == sa.bindparam("user_id"),
            col(Interaction.action) == Action.PURCHASE.value,
            col(Interaction.product_id).is_not(None),
            sa.or_(
                col(Interaction.created_at) < at,
                sa.and_(
                    col(Interaction.created_at) == at,
                    col(Interaction.id) < sa.bindparam("interaction_id"),
                ),
            ),
        )
        .group_by(col(Interaction.product_id))
        .order_by(newest.desc(), col(Interaction.product_id))
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


_EARLIER_PURCHASES = _earlier_purchases_statement()


def _co_upsert(insert: Callable[[sa.Table], Any]) -> Any:
    """Add to a pair's count, or start it: one statement per pair whether it exists or not,
    and an increment in SQL, so concurrent workers never lose an update."""
    table: sa.Table = CoInteraction.__table__  # type: ignore[attr-defined]
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=["product_id", "other_product_id", "kind"],
        set_={
            "count": table.c.count + statement.excluded.count,
            "updated_at": statement.excluded.updated_at,
        },
    )


_CO_UPSERT = {"postgresql": _co_upsert(postgresql.insert), "sqlite": _co_upsert(sqlite.insert)}


def ledger(*, session: Session, ids: Sequence[uuid.UUID]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Of these events: (the ones still stored, the ones already counted)."""
    if not ids:
        return set(), set()
    alive: set[uuid.UUID] = set()
    done: set[uuid.UUID] = set()
    for event_id, counted in session.execute(_LEDGER, {"ids": list(ids)}):
        alive.add(event_id)
        if counted is not None:
            done.add(event_id)
    return alive, done


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
    params = {
        "user_id": user_id,
        "at": as_utc(before),
        "interaction_id": interaction_id,
        "limit": limit,
    }
    rows = session.execute(_EARLIER_PURCHASES, params).all()
    return [pid for pid, _ in rows if pid is not None]


def bump_co_interactions(
    *, session: Session, counts: Mapping[tuple[uuid.UUID, uuid.UUID, str], int], at: datetime
) -> None:
    """Add to pair counters with SQL increments, so concurrent workers never lose an update
    (in one order in every worker: two of them cannot deadlock on each other's rows)."""
    if not counts:
        return
    rows = [
        {"product_id": p, "other_product_id": o, "kind": k, "count": n, "updated_at": at}
        for (p, o, k), n in sorted(counts.items(), key=lambda kv: str(kv[0]))
    ]
    session.execute(_CO_UPSERT[session.get_bind().dialect.name], rows)


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
    return bump_counters(session=session, names=[name], by=by, at=at)[name]


def bump_counters(
    *, session: Session, names: Sequence[str], by: int, at: datetime
) -> dict[str, int]:
    """Add ``by`` to each named counter (a missing one starts at ``by``); their new values."""
    ordered = sorted(set(names))  # one lock order in every worker
    rows = session.execute(_BUMP, {"names": ordered, "by": by, "at": at})
    values = {name: int(value) for name, value in rows}
    missing = [name for name in ordered if name not in values]
    if missing:
        session.add_all(WorkerCounter(name=name, value=by, updated_at=at) for name in missing)
        session.flush()
        values |= dict.fromkeys(missing, by)
    return values


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
