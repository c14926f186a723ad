"""``track()``: validate events, store each once, update what depends on them.

A batch is validated per event (each rejection carries its reason), then every accepted
event, its side effects (views, cart, wishlist) and the profile updates are written in one
transaction: a batch is stored whole or not at all, never half. Caches are invalidated and
the stream is told only after the commit; an outbox row per event, written in the same
transaction, makes sure the stream hears of it even if this process dies before telling it
(``infra.outbox``).

An ``event_id`` is the sender's idempotency key, unique per sender (``source``: the key,
the shopper, the staff member; see ``Principal.identity``), so one caller can never make
another's event look like a repeat. The same id with the same event again is a duplicate
(answered with the stored one); with a different event it is a conflict (409), never
silently dropped.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from backend.db import repository
from backend.db.engine import session_scope
from backend.db.models import Action, Interaction, as_utc, utcnow
from backend.errors import ConflictError, InvalidInputError
from backend.infra.cache import Cache, invalidate_user
from backend.infra.outbox import stream_event
from backend.infra.stream import EventStream
from backend.observability.metrics import Metrics
from backend.recommender.snapshot import SnapshotManager
from backend.security.text import SafeText
from backend.services.profiles import update_profiles

log = logging.getLogger(__name__)

OPEN_SOURCE = "open"  # callers when authentication is off, and in-process callers
LEGACY_SOURCE = "legacy"  # events stored before senders were recorded (migration 0009)
CLOCK_SKEW = timedelta(minutes=5)  # tolerated drift of a client's clock
MAX_BATCH = 1000
_WRITE_ATTEMPTS = 3  # a concurrent writer of the same event_id makes us re-validate


def _iso_text(value: object) -> object:
    """Only ISO 8601 text (or a datetime from Python callers): a JSON number would be read as
    seconds since 1970, so a client's 0 or a millisecond count became a plausible date."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE_TIME.match(value)):
        return value
    raise PydanticCustomError(
        "timestamp",
        "must be an ISO 8601 date-time string with a timezone, e.g. 2026-11-01T12:00:00Z",
    )


_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
Timestamp = Annotated[datetime, BeforeValidator(_iso_text)]


class EventIn(BaseModel):
    """An interaction sent by a storefront or the chat UI."""

    user_id: uuid.UUID
    action: Action
    product_id: uuid.UUID | None = None
    query: SafeText | None = Field(default=None, min_length=1, max_length=500)
    event_id: SafeText | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Client id for idempotency, scoped to the sender: the same event sent "
        "twice is stored once; the same id with a different event is a 409 conflict.",
    )
    timestamp: Timestamp | None = Field(
        default=None,
        description="When it happened: an ISO 8601 string with a timezone; defaults to now.",
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


EventStatus = Literal["accepted", "duplicate", "conflict", "rejected"]


class BatchItemResult(BaseModel):
    index: int = Field(description="Position of the event in the request.")
    status: EventStatus
    event_id: str | None = None
    interaction_id: uuid.UUID | None = None
    created_at: datetime | None = None
    reason: str | None = Field(
        default=None, description="Why the event was rejected or is a conflict."
    )


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    conflicts: int = Field(
        default=0, description="Events whose event_id this sender used for another event."
    )
    results: list[BatchItemResult]


class EventConflict(ConflictError):
    """The sender used this ``event_id`` for a different event before."""


class TrackingService:
    def __init__(
        self,
        *,
        db: Engine,
        snapshots: SnapshotManager,
        cache: Cache,
        stream: EventStream | None = None,
        metrics: Metrics | None = None,
        max_event_age: timedelta = timedelta(days=3 * 365),
    ) -> None:
        self.max_event_age = max_event_age  # older timestamps are refused
        self.db = db
        self.snapshots = snapshots
        self.cache = cache
        self.stream = stream
        self.metrics = metrics

    def track(self, event: EventIn, *, source: str = OPEN_SOURCE) -> EventResult:
        """One event; a rejection raises ``InvalidInputError`` with the reason, an event id
        reused for another event ``EventConflict``."""
        item = self.track_many([event], source=source).results[0]
        if item.status == "rejected":
            raise InvalidInputError(item.reason or "invalid event")
        if item.status == "conflict":
            raise EventConflict(item.reason or "event_id already used for another event")
        assert item.interaction_id is not None and item.created_at is not None
        return EventResult(
            interaction_id=item.interaction_id,
            duplicate=item.status == "duplicate",
            created_at=item.created_at,
        )

    def track_many(
        self, raw: Sequence[EventIn | Mapping[str, Any] | object], *, source: str = OPEN_SOURCE
    ) -> BatchResult:
        """Validate each event, then store every valid one in one transaction; ``source``
        is the sender, whose event ids these are."""
        if len(raw) > MAX_BATCH:
            raise InvalidInputError(f"a batch holds at most {MAX_BATCH} events, got {len(raw)}")
        results: dict[int, BatchItemResult] = {}
        valid: list[tuple[int, EventIn]] = []
        for index, item in enumerate(raw):
            event, reason = _parse(item, self.max_event_age)
            if event is None:
                results[index] = BatchItemResult(
                    index=index, status="rejected", reason=reason, event_id=_event_id(item)
                )
            else:
                valid.append((index, event))

        attempt = 1
        while True:
            try:
                stored, outcome = self._store(valid, source)
                break
            except IntegrityError:
                # Another request stored one of these event_ids (or profiles) first.
                if attempt == _WRITE_ATTEMPTS:
                    raise
                attempt += 1
                log.info("concurrent write of the same rows; re-validating the batch")
        results.update(outcome)
        if stored:
            self._after_commit(stored)
        ordered = [results[i] for i in range(len(raw))]
        batch = BatchResult(
            accepted=sum(r.status == "accepted" for r in ordered),
            duplicates=sum(r.status == "duplicate" for r in ordered),
            rejected=sum(r.status == "rejected" for r in ordered),
            conflicts=sum(r.status == "conflict" for r in ordered),
            results=ordered,
        )
        self._count("accepted", batch.accepted)
        self._count("duplicate", batch.duplicates)
        self._count("rejected", batch.rejected)
        self._count("conflict", batch.conflicts)
        return batch

    def _count(self, outcome: str, n: int) -> None:
        if n and self.metrics is not None:
            self.metrics.events.labels(outcome).inc(n)

    def _store(
        self, valid: Sequence[tuple[int, EventIn]], source: str
    ) -> tuple[list[Interaction], dict[int, BatchItemResult]]:
        results: dict[int, BatchItemResult] = {}
        stored: list[Interaction] = []
        if not valid:
            return stored, results
        with session_scope(self.db) as session:
            users = repository.existing_user_ids(
                session=session, ids=list({e.user_id for _, e in valid})
            )
            products = repository.existing_product_ids(
                session=session, ids=list({e.product_id for _, e in valid if e.product_id})
            )
            known = repository.find_events(
                session=session,
                sources=[source, LEGACY_SOURCE],
                event_ids=list({e.event_id for _, e in valid if e.event_id}),
            )
            now = utcnow()
            for index, event in valid:
                reason = None
                if event.user_id not in users:
                    reason = f"user {event.user_id} does not exist"
                elif event.product_id is not None and event.product_id not in products:
                    reason = f"product {event.product_id} does not exist"
                if reason:
                    results[index] = BatchItemResult(
                        index=index, status="rejected", reason=reason, event_id=event.event_id
                    )
                    continue
                previous = self._earlier(known, event, source)
                if previous is not None:
                    same = _same_event(previous, event)
                    results[index] = BatchItemResult(
                        index=index,
                        status="duplicate" if same else "conflict",
                        event_id=event.event_id,
                        interaction_id=previous.id if same else None,
                        created_at=as_utc(previous.created_at) if same else None,
                        reason=None
                        if same
                        else f"event_id {event.event_id!r} was already used for another event",
                    )
                    continue
                interaction = Interaction(
                    user_id=event.user_id,
                    product_id=event.product_id,
                    action=event.action.value,
                    query=event.query.strip() if event.query else None,
                    event_id=event.event_id,
                    event_source=source,
                    created_at=as_utc(event.timestamp) if event.timestamp else now,
                )
                repository.store_interaction(session=session, interaction=interaction)
                if event.event_id:
                    known[(source, event.event_id)] = interaction  # a repeat later in this batch
                stored.append(interaction)
                results[index] = BatchItemResult(
                    index=index,
                    status="accepted",
                    event_id=event.event_id,
                    interaction_id=interaction.id,
                    created_at=interaction.created_at,
                )
            snapshot = self.snapshots.loaded
            tags = frozenset(snapshot.tag_index) if snapshot is not None else None
            update_profiles(session, stored, known_tags=tags)
            if self.stream is not None and stored:
                repository.add_to_outbox(session=session, ids=[i.id for i in stored], at=now)
        return stored, results

    @staticmethod
    def _earlier(
        known: Mapping[tuple[str, str], Interaction], event: EventIn, source: str
    ) -> Interaction | None:
        """The stored event this one repeats: the sender's own with this id, else one stored
        before senders were recorded, but only if it is the same event (a retry straddling
        the upgrade); another sender's legacy id never blocks this one."""
        if not event.event_id:
            return None
        own = known.get((source, event.event_id))
        if own is not None:
            return own
        legacy = known.get((LEGACY_SOURCE, event.event_id))
        return legacy if legacy is not None and _same_event(legacy, event) else None

    def _after_commit(self, stored: Sequence[Interaction]) -> None:
        for user_id in dict.fromkeys(i.user_id for i in stored):
            invalidate_user(self.cache, user_id)
        snapshot = self.snapshots.loaded
        if snapshot is not None:
            for interaction in stored:
                if interaction.product_id is not None:
                    snapshot.record_interaction(interaction.product_id)
        if self.stream is not None:
            try:
                delivered = self.stream.publish([stream_event(i) for i in stored])
            except Exception:  # stored, and in the outbox: the sweep announces them later
                log.exception("could not publish %d event(s) to the stream", len(stored))
                self._count("publish_failed", len(stored))
                return
            if delivered and self.stream.durable:
                self._announced([i.id for i in stored])

    def _announced(self, ids: list[uuid.UUID]) -> None:
        """The stream has them: their outbox rows can go."""
        try:
            with session_scope(self.db) as session:
                repository.remove_from_outbox(session=session, ids=ids, wait_for_disk=False)
        except Exception:  # harmless: the sweep announces them once more
            log.warning("could not clear %d outbox row(s)", len(ids), exc_info=True)


def _same_event(stored: Interaction, event: EventIn) -> bool:
    """Whether a retry carries the event stored under its id (the time only when sent)."""
    query = event.query.strip() if event.query else None
    if (stored.user_id, stored.product_id, stored.action, stored.query) != (
        event.user_id,
        event.product_id,
        event.action.value,
        query,
    ):
        return False
    return event.timestamp is None or as_utc(event.timestamp) == as_utc(stored.created_at)


def _parse(item: object, max_age: timedelta) -> tuple[EventIn | None, str | None]:
    if isinstance(item, EventIn):
        event = item
    else:
        try:
            event = EventIn.model_validate(item)
        except ValidationError as exc:
            return None, _reasons(exc)
    if event.timestamp is not None and event.timestamp.tzinfo is None:
        return None, "timestamp must include a timezone, e.g. 2026-11-01T12:00:00Z"
    if event.timestamp is not None and event.timestamp > utcnow() + CLOCK_SKEW:
        return None, "timestamp is in the future"
    if event.timestamp is not None and event.timestamp < utcnow() - max_age:
        return None, f"timestamp is more than {max_age.days} days old"
    return event, None


def _reasons(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def _event_id(item: object) -> str | None:
    if isinstance(item, EventIn):
        return item.event_id
    value = item.get("event_id") if isinstance(item, Mapping) else None
    return value if isinstance(value, str) else None
