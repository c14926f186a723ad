"""GDPR-style requests: everything we hold about a shopper, and erasing it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.db.crud import segments as segments_store
from backend.db.engine import session_scope
from backend.db.models import (
    AuthToken,
    CartItem,
    Interaction,
    RecAnalytics,
    SegmentRow,
    User,
    UserPreferences,
    WishlistItem,
    utcnow,
)
from backend.errors import NotFoundError
from backend.infra.cache import Cache, invalidate_user


class UserExport(BaseModel):
    exported_at: datetime
    user: dict[str, Any]
    interactions: list[dict[str, Any]]
    cart: list[dict[str, Any]]
    wishlist: list[dict[str, Any]]
    preferences: dict[str, Any] | None
    impressions: list[dict[str, Any]] = []  # recommended products shown (rec_analytics)
    segment: dict[str, Any] | None = None  # the shopper segment we placed them in
    # Sign-in sessions issued for them (when, by which key, until when); never the tokens.
    sessions: list[dict[str, Any]] = []


class PrivacyService:
    def __init__(self, *, db: Engine, cache: Cache) -> None:
        self.db = db
        self.cache = cache

    def export(self, user_id: uuid.UUID) -> UserExport:
        with Session(self.db) as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFoundError("user", user_id)
            interactions = session.exec(
                select(Interaction)
                .where(Interaction.user_id == user_id)
                .order_by(col(Interaction.created_at))
            ).all()
            cart = session.exec(select(CartItem).where(CartItem.user_id == user_id)).all()
            wishlist = session.exec(
                select(WishlistItem).where(WishlistItem.user_id == user_id)
            ).all()
            preferences = session.get(UserPreferences, user_id)
            impressions = session.exec(
                select(RecAnalytics)
                .where(RecAnalytics.user_id == user_id)
                .order_by(col(RecAnalytics.created_at), col(RecAnalytics.id))
            ).all()
            sessions = session.exec(
                select(AuthToken)
                .where(AuthToken.user_id == user_id)
                .order_by(col(AuthToken.created_at))
            ).all()
            placed = segments_store.user_segment(session=session, user_id=user_id)
            segment = session.get(SegmentRow, (placed.run_id, placed.segment)) if placed else None
            return UserExport(
                exported_at=utcnow(),
                # Credentials are not personal data the shopper gave us to return.
                user=user.model_dump(mode="json", exclude={"password_hash"}),
                interactions=[i.model_dump(mode="json") for i in interactions],
                cart=[c.model_dump(mode="json") for c in cart],
                wishlist=[w.model_dump(mode="json") for w in wishlist],
                preferences=preferences.model_dump(mode="json") if preferences else None,
                impressions=[i.model_dump(mode="json") for i in impressions],
                segment=(
                    {"segment": segment.segment, "label": segment.label, "run_id": segment.run_id}
                    if segment is not None
                    else None
                ),
                sessions=[
                    t.model_dump(mode="json", exclude={"subject", "user_id"}) for t in sessions
                ],
            )

    def erase(self, user_id: uuid.UUID) -> None:
        """Delete the user; interactions, cart, wishlist, profile and lists cascade with it."""
        with session_scope(self.db) as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFoundError("user", user_id)
            session.delete(user)
        invalidate_user(self.cache, user_id)
