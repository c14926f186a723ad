"""``track()``: validate an event, store it once, update what depends on it."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel, Field, model_validator
from sqlalchemy.engine import Engine

from backend.db import repository
from backend.db.engine import session_scope
from backend.db.models import Action, utcnow
from backend.errors import InvalidInputError
from backend.recommender.catalog import SnapshotManager
from backend.services.cache import Cache, recommendations_key

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(minutes=5)  # tolerated drift of a client's clock


class EventIn(BaseModel):
    """An interaction sent by a storefront or the chat UI."""

    user_id: uuid.UUID
    action: Action
    product_id: uuid.UUID | None = None
    query: str | None = Field(default=None, min_length=1, max_length=500)
    event_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Client id for idempotency: an event sent twice is stored once.",
    )
    timestamp: datetime | None = Field(
        default=None, description="When it happened (ISO 8601); defaults to now."
    )

    @model_validator(mode="after")
    def _target_matches_action(self) -> EventIn:
        if self.action is Action.SEARCH:
            if not self.query or not self.query.strip():
                raise ValueError("a search event needs a non-empty 'query'")
        elif self.product_id is None:
            raise ValueError(f"a {self.action.value} event needs a 'product_id'")
        return self


class EventResult(BaseModel):
    interaction_id: uuid.UUID
    duplicate: bool = Field(description="True when this event_id was already stored.")
    created_at: datetime


class TrackingService:
    def __init__(self, *, db: Engine, snapshots: SnapshotManager, cache: Cache) -> None:
        self.db = db
        self.snapshots = snapshots
        self.cache = cache

    def track(self, event: EventIn) -> EventResult:
        if event.timestamp is not None and event.timestamp.tzinfo is None:
            raise InvalidInputError("timestamp must include a timezone, e.g. 2026-11-01T12:00:00Z")
        if event.timestamp is not None and event.timestamp > utcnow() + CLOCK_SKEW:
            raise InvalidInputError("timestamp is in the future")
        with session_scope(self.db) as session:
            if not repository.existing_user_ids(session=session, ids=[event.user_id]):
                raise InvalidInputError(f"user {event.user_id} does not exist")
            if event.product_id is not None and not repository.existing_product_ids(
                session=session, ids=[event.product_id]
            ):
                raise InvalidInputError(f"product {event.product_id} does not exist")
            interaction, created = repository.add_interaction(
                session=session,
                user_id=event.user_id,
                action=event.action,
                product_id=event.product_id,
                query=event.query.strip() if event.query else None,
                event_id=event.event_id,
                created_at=event.timestamp,
            )
        if created:
            self.cache.delete(recommendations_key(event.user_id))
            snapshot = self.snapshots.loaded
            if snapshot is not None and event.product_id is not None:
                snapshot.record_interaction(event.product_id)
        return EventResult(
            interaction_id=interaction.id,
            duplicate=not created,
            created_at=interaction.created_at,
        )
