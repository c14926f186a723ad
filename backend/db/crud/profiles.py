"""Live profiles and the precomputed recommendation lists that follow them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from backend.db.models import (
    UserPreferences,
    UserRecommendation,
    as_utc,
)

_PROFILE: sa.Table = UserPreferences.__table__  # type: ignore[attr-defined]
# Every accepted event's transaction runs these: built once (building cost about as much CPU
# as running them).
_LOCK = (
    sa.select(_PROFILE)
    .where(_PROFILE.c.user_id.in_(sa.bindparam("users", expanding=True)))
    .order_by(_PROFILE.c.user_id)
    .with_for_update()
)
_INSERT_PROFILES = sa.insert(_PROFILE)
_UPDATE_PROFILES = (
    sa.update(_PROFILE)
    .where(_PROFILE.c.user_id == sa.bindparam("key"))
    .values({c.name: sa.bindparam(c.name) for c in _PROFILE.columns if c.name != "user_id"})
)


def lock_profiles(
    *, session: Session, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The users' profile rows as plain fields, locked (in id order, so concurrent groups
    cannot deadlock) until the transaction ends."""
    if not user_ids:
        return {}
    rows = session.execute(_LOCK, {"users": sorted(set(user_ids))}).mappings()
    return {row["user_id"]: dict(row) for row in rows}


def save_profiles(
    *, session: Session, new: Sequence[dict[str, Any]], changed: Sequence[dict[str, Any]]
) -> None:
    """Insert the new profiles and update the changed ones, a statement each for all."""
    if new:
        session.execute(_INSERT_PROFILES, list(new))
    if changed:
        session.execute(_UPDATE_PROFILES, [{**row, "key": row["user_id"]} for row in changed])


# The worker's precompute runs these for every shopper after their events (in the embedded
# default, on the API's own cores): statements built once, and the list written as one
# multi-row INSERT instead of through the ORM's unit of work (which was 6% of the storefront
# mix's server samples, more than the ranking it stores).
_RECOMMENDATIONS: sa.Table = UserRecommendation.__table__  # type: ignore[attr-defined]
_EVENT_COUNT = select(UserPreferences.event_count).where(
    col(UserPreferences.user_id) == sa.bindparam("user_id")
)
_DROP_LIST = sa.delete(_RECOMMENDATIONS).where(_RECOMMENDATIONS.c.user_id == sa.bindparam("key"))
_ADD_LIST = sa.insert(_RECOMMENDATIONS)


def profile_version(*, session: Session, user_id: uuid.UUID) -> int:
    value = session.exec(_EVENT_COUNT, params={"user_id": user_id}).first()
    return int(value or 0)


def replace_user_recommendations(
    *, session: Session, user_id: uuid.UUID, rows: Sequence[UserRecommendation]
) -> None:
    session.execute(_DROP_LIST, {"key": user_id})
    if rows:
        names = [column.name for column in _RECOMMENDATIONS.columns]
        session.execute(_ADD_LIST, [{name: getattr(row, name) for name in names} for row in rows])


def _stored_list_statement() -> Any:
    user: sa.BindParameter[uuid.UUID] = sa.bindparam("user_id")
    version = (
        select(UserPreferences.event_count).where(UserPreferences.user_id == user).scalar_subquery()
    )
    r = _RECOMMENDATIONS.c
    return (
        sa.select(
            r.product_id,
            r.score,
            r.evidence,
            r.strategy,
            r.top_n,
            r.catalog_version,
            r.updated_at,
            r.profile_version,
            version,
        )
        .where(r.user_id == user)
        .order_by(r.rank)
    )


# Built once (every uncached GET /recommend reads it): building cost more than running it.
_STORED_LIST = _stored_list_statement()


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One item of a precomputed list, as the recommendation serves it."""

    product_id: uuid.UUID
    score: float
    evidence: dict[str, Any]


def fresh_user_recommendations(
    *,
    session: Session,
    user_id: uuid.UUID,
    strategy: str,
    top_n: int,
    catalog_version: str,
    not_before: datetime,
) -> list[StoredItem] | None:
    """The precomputed list when it answers this request and reflects every event; else None.
    One round trip: the profile's version comes with the rows. Columns on the session's
    connection, not ORM rows: every uncached GET /recommend asks, and mostly finds none."""
    found = session.connection().execute(_STORED_LIST, {"user_id": user_id}).all()
    if not found:
        return None
    first = found[0]
    current = first[-1]
    if (
        first.strategy != strategy
        or first.top_n != top_n
        or first.catalog_version != catalog_version
        or as_utc(first.updated_at) < not_before
        or first.profile_version != int(current or 0)
    ):
        return None
    return [StoredItem(row.product_id, row.score, row.evidence) for row in found]
