"""The event outbox: a row per stored event until the stream has heard of it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from backend.db.models import EventOutbox, Interaction

# Every event's transaction adds its row and the worker's removes it: built once, and plain
# table statements (the ORM's delete also looked for the rows among the session's objects).
_OUTBOX: sa.Table = EventOutbox.__table__  # type: ignore[attr-defined]
_ADD = sa.insert(_OUTBOX)
_REMOVE = sa.delete(_OUTBOX).where(
    _OUTBOX.c.interaction_id.in_(sa.bindparam("ids", expanding=True))
)


def add_to_outbox(*, session: Session, ids: Sequence[uuid.UUID], at: datetime) -> None:
    """Plain rows in multi-row INSERTs: no ORM object per event."""
    if ids:
        session.execute(_ADD, [{"interaction_id": i, "stored_at": at} for i in ids])


def remove_from_outbox(
    *, session: Session, ids: Sequence[uuid.UUID], wait_for_disk: bool = True
) -> None:
    """``wait_for_disk=False``: on PostgreSQL the commit does not wait for the WAL flush (a
    row lost to a crash only makes the sweep announce its event once more)."""
    if not ids:
        return
    if not wait_for_disk and session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
    session.execute(_REMOVE, {"ids": list(ids)})


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
