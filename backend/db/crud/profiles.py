"""Live profiles and the precomputed recommendation lists that follow them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from backend.db.models import (
    UserPreferences,
    UserRecommendation,
    as_utc,
)


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
