"""A shopper's recent history as the ranking engine reads it: one query, one limit.

Every profile (the storefront's recommendations, the worker's precomputed lists and the chat)
is built from the same newest ``HISTORY_LIMIT`` interactions, so the same shopper gets the same
profile wherever it is built. The limit bounds the work per request; older interactions weigh
little after the profile's time decay anyway.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session

from backend.db import crud
from backend.db.models import as_utc
from backend.recommender.profile import InteractionRecord

HISTORY_LIMIT = 500


def recent_history(*, session: Session, user_id: uuid.UUID) -> list[InteractionRecord]:
    """The shopper's newest ``HISTORY_LIMIT`` interactions, newest first."""
    rows = crud.recent_interaction_fields(session=session, user_id=user_id, limit=HISTORY_LIMIT)
    return [
        InteractionRecord(
            action=action, created_at=as_utc(created_at), product_id=product_id, query=query
        )
        for action, created_at, product_id, query in rows
    ]
