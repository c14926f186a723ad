"""Data access for shopper segments: the activity they are computed from, and their storage.

Only the newest run is kept: a recompute replaces the run, its segments and every user's
assignment in one transaction, so readers see the old segments or the new ones, never a mix.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, delete, func, select

from backend.db.models import Interaction, SegmentRow, SegmentRun, UserSegment

ActivityRow = tuple[uuid.UUID, uuid.UUID | None, str, str | None, int]


def activity_rows(*, session: Session) -> list[ActivityRow]:
    """(user, product, action, query, count) for every distinct interaction kind of every user."""
    rows = session.execute(
        sa.select(
            col(Interaction.user_id),
            col(Interaction.product_id),
            col(Interaction.action),
            col(Interaction.query),
            func.count(),
        ).group_by(
            col(Interaction.user_id),
            col(Interaction.product_id),
            col(Interaction.action),
            col(Interaction.query),
        )
    ).all()
    return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]


def replace_segments(
    *,
    session: Session,
    run: SegmentRun,
    segments: Sequence[SegmentRow],
    assignments: Mapping[uuid.UUID, int],
) -> SegmentRun:
    """Store a new run in place of the old one (the caller's transaction commits)."""
    session.execute(delete(UserSegment))
    session.execute(delete(SegmentRow))
    session.execute(delete(SegmentRun))
    session.add(run)
    session.flush()
    assert run.id is not None
    for row in segments:
        row.run_id = run.id
        session.add(row)
    session.add_all(
        UserSegment(user_id=user_id, run_id=run.id, segment=segment)
        for user_id, segment in assignments.items()
    )
    return run


def latest_run(*, session: Session) -> SegmentRun | None:
    return session.exec(select(SegmentRun).order_by(col(SegmentRun.id).desc()).limit(1)).first()


def latest_run_id(*, session: Session) -> int | None:
    return session.exec(select(func.max(SegmentRun.id))).one()


def segments_of(*, session: Session, run_id: int) -> list[SegmentRow]:
    return list(
        session.exec(
            select(SegmentRow)
            .where(col(SegmentRow.run_id) == run_id)
            .order_by(col(SegmentRow.segment))
        ).all()
    )


def user_segment(*, session: Session, user_id: uuid.UUID) -> UserSegment | None:
    return session.get(UserSegment, user_id)
