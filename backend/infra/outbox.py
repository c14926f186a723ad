"""The event outbox sweep: no accepted event goes unannounced when a process dies.

``track()`` writes an ``event_outbox`` row in the transaction that stores each event. The
row goes once the news is safe: at once after a publish to the Redis stream, or when the
worker has processed the event (the in-process queue dies with its process). A process
that dies between the commit and the publish leaves rows behind; ``OutboxSweeper.sweep``
publishes the rows older than a short grace period. The worker runs it at start and
periodically (with Redis), the API's in-process worker at start and periodically (without
Redis), skipping the events its own queue still holds.

A row can be published twice (a sweep racing a slow publisher, or a Redis outage ending with
both the buffer and the sweep sending it); the worker's ledger makes the repeat harmless.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.db import crud
from backend.db.crud.events import NewEvent
from backend.db.engine import session_scope
from backend.db.models import Interaction, ProcessedEvent, as_utc, utcnow
from backend.infra.stream import EventStream, StreamEvent

log = logging.getLogger(__name__)


def stream_event(interaction: Interaction | NewEvent) -> StreamEvent:
    return StreamEvent(
        interaction_id=interaction.id,
        user_id=interaction.user_id,
        action=interaction.action,
        product_id=interaction.product_id,
        created_at=as_utc(interaction.created_at),
    )


class OutboxSweeper:
    def __init__(
        self,
        *,
        db: Engine,
        stream: EventStream,
        grace_seconds: float = 10.0,
        batch_size: int = 500,
        skip: Callable[[], Collection[uuid.UUID]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.stream = stream
        self.grace = timedelta(seconds=grace_seconds)
        self.batch_size = batch_size
        self.skip = skip  # events this process still holds (the in-process queue)
        self.clock = clock
        self.published = 0  # over the sweeper's life: events a dead process left behind

    def sweep(self) -> int:
        """Publish every outbox row older than the grace period; returns how many."""
        before = self.clock() - self.grace
        cursor: tuple[datetime, uuid.UUID] | None = None
        sent = 0
        while True:
            held = self.skip() if self.skip is not None else ()
            with session_scope(self.db) as session:
                rows = crud.claim_outbox(
                    session=session, before=before, after=cursor, limit=self.batch_size
                )
                if not rows:
                    break
                last = rows[-1][0]
                cursor = (as_utc(last.stored_at), last.interaction_id)
                events = [stream_event(i) for _, i in rows if i.id not in held]
                if events and not self.stream.publish(events):
                    log.warning("outbox sweep: stream unavailable; %d event(s) wait", len(events))
                    break  # the rows stay; the next sweep tries again
                if events and self.stream.durable:
                    crud.remove_from_outbox(session=session, ids=[e.interaction_id for e in events])
                sent += len(events)
            if len(rows) < self.batch_size:
                break
        if sent:
            self.published += sent
            log.warning("outbox sweep published %d event(s) left unannounced", sent)
        return sent

    def replay_unprocessed(self, since: datetime) -> int:
        """Publish again every event since ``since`` the worker has not processed.

        For when Redis lost its data: messages published before the loss and not yet
        processed are gone with it (their outbox rows were cleared on publish). The worker's
        ledger (``processed_event``) knows what was done; the rest is announced again.
        """
        sent = 0
        cursor: tuple[datetime, uuid.UUID] | None = None
        while True:
            with Session(self.db) as session:
                query = (
                    select(Interaction)
                    .where(col(Interaction.created_at) >= since)
                    .where(
                        ~sa.exists().where(
                            col(ProcessedEvent.interaction_id) == col(Interaction.id)
                        )
                    )
                )
                if cursor is not None:
                    at, last = cursor
                    created, ident = col(Interaction.created_at), col(Interaction.id)
                    query = query.where(sa.or_(created > at, sa.and_(created == at, ident > last)))
                rows = list(
                    session.exec(
                        query.order_by(col(Interaction.created_at), col(Interaction.id)).limit(
                            self.batch_size
                        )
                    ).all()
                )
            if not rows:
                break
            cursor = (rows[-1].created_at, rows[-1].id)
            if not self.stream.publish([stream_event(i) for i in rows]):
                log.warning("replay: stream unavailable; the next check tries again")
                raise ConnectionError("event stream unavailable during replay")
            sent += len(rows)
            if len(rows) < self.batch_size:
                break
        log.warning("replayed %d unprocessed event(s) after the stream lost its data", sent)
        return sent
