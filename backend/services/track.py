"""``track()``: validate events, store each once, update what depends on them.

A batch is validated per event (each rejection carries its reason), then every accepted
event, its side effects (cart, wishlist) and the profile updates are written in one
transaction: a batch is stored whole or not at all, never half. Requests that arrive while
another is being written are written together in the next transaction (group commit,
``services.group_commit``; the SQL is in ``services.event_store``); should that fail, each
request is written alone, so one request's failure never costs another its events. Caches are
invalidated and the stream is told only after the commit; an outbox row per event, written in
the same transaction, makes sure the stream hears of it even if this process dies before
telling it (``infra.outbox``).

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
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from backend.db import crud
from backend.db.crud.events import AnyEvent, NewEvent
from backend.db.engine import session_scope
from backend.db.models import Action, as_utc, utcnow
from backend.errors import ConflictError, InvalidInputError
from backend.infra.cache import Cache, invalidate_user
from backend.infra.outbox import stream_event
from backend.infra.stream import EventStream
from backend.observability.metrics import Metrics
from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager
from backend.security.text import SafeText
from backend.services.event_store import (
    LEGACY_SOURCE,
    Candidate,
    Job,
    StoredEventVanished,
    Written,
    store_group,
)
from backend.services.group_commit import GroupCommit
from backend.services.profiles import Facets

log = logging.getLogger(__name__)

OPEN_SOURCE = "open"  # callers when authentication is off, and in-process callers
CLOCK_SKEW = timedelta(minutes=5)  # tolerated drift of a client's clock
MAX_BATCH = 1000
MAX_GROUP = 2 * MAX_BATCH  # events in one group commit (a batch is never split)
_WRITE_ATTEMPTS = 3  # a concurrent writer of the same rows makes us re-validate


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
        # Requests that arrive while a group is being written are written together next.
        self.writes: GroupCommit[Job, list[Written]] = GroupCommit(
            self._write_group, max_size=MAX_GROUP, size=lambda job: len(job.events),
            after=self._after_group,
        )  # fmt: skip
        # Legacy rows are only ever made by migration 0009, from rows stored before it: once
        # none with an event id is left, none ever comes back, and their lookup is skipped.
        self._legacy: bool | None = None

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
        valid: list[tuple[int, Candidate]] = []
        now = utcnow()
        for index, item in enumerate(raw):
            event, reason = _parse(item, self.max_event_age)
            if event is None:
                results[index] = BatchItemResult(
                    index=index, status="rejected", reason=reason, event_id=_event_id(item)
                )
            else:
                valid.append((index, _candidate(event, source, now)))
        if valid:
            written = self.writes.submit(Job(source, [c for _, c in valid]))
            for (index, candidate), outcome in zip(valid, written, strict=True):
                results[index] = _item(index, candidate, outcome)
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

    def _write_group(self, jobs: Sequence[Job]) -> list[list[Written] | BaseException]:
        """The group in one transaction; if that fails, each request alone, so one
        request's failure never costs the others theirs (a request stays whole or nothing)."""
        try:
            return list(self._store(jobs))
        except Exception as exc:
            if len(jobs) == 1:
                return [exc]
            log.warning("a group of %d requests failed; writing each alone", len(jobs))
        alone: list[list[Written] | BaseException] = []
        for job in jobs:
            try:
                alone.extend(self._store([job]))
            except Exception as exc:
                alone.append(exc)
        return alone

    def _store(self, jobs: Sequence[Job]) -> list[list[Written]]:
        attempt = 1
        while True:
            try:
                with session_scope(self.db) as session:
                    if self._legacy is None:
                        self._legacy = crud.has_event_ids_of(session=session, source=LEGACY_SOURCE)
                    snapshot = self.snapshots.loaded
                    return store_group(
                        session,
                        jobs,
                        legacy=self._legacy,
                        facets=partial(_facets, snapshot),
                        known_tags=frozenset(snapshot.tag_index) if snapshot else None,
                        outbox=self.stream is not None,
                        now=utcnow(),
                    )
            except (IntegrityError, StoredEventVanished):
                # Another process wrote the same profile or cart rows (or removed an event)
                # first: the group is checked again against what is stored now.
                if attempt == _WRITE_ATTEMPTS:
                    raise
                attempt += 1
                log.info("concurrent write of the same rows; re-validating the group")

    def _after_group(
        self, _jobs: Sequence[Job], outcomes: Sequence[list[Written] | BaseException]
    ) -> None:
        stored = [
            w.interaction
            for written in outcomes
            if not isinstance(written, BaseException)
            for w in written
            if w.status == "accepted" and w.interaction is not None
        ]
        if stored:
            self._after_commit(stored)

    def _after_commit(self, stored: Sequence[AnyEvent]) -> None:
        invalidate_user(self.cache, *dict.fromkeys(i.user_id for i in stored))
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
                crud.remove_from_outbox(session=session, ids=ids, wait_for_disk=False)
        except Exception:  # harmless: the sweep announces them once more
            log.warning("could not clear %d outbox row(s)", len(ids), exc_info=True)


def _candidate(event: EventIn, source: str, now: datetime) -> Candidate:
    row = NewEvent(
        id=uuid.uuid4(),
        user_id=event.user_id,
        product_id=event.product_id,
        action=event.action.value,
        query=event.query.strip() if event.query else None,
        event_id=event.event_id,
        event_source=source,
        created_at=as_utc(event.timestamp) if event.timestamp else now,
    )
    return Candidate(row, timed=event.timestamp is not None)


def _item(index: int, candidate: Candidate, outcome: Written) -> BatchItemResult:
    stored = outcome.interaction
    return BatchItemResult(
        index=index,
        status=outcome.status,
        event_id=candidate.row.event_id,
        interaction_id=stored.id if stored is not None else None,
        created_at=as_utc(stored.created_at) if stored is not None else None,
        reason=outcome.reason,
    )


def _facets(snapshot: CatalogSnapshot | None, ids: Sequence[uuid.UUID]) -> Facets:
    """Category and tags of the products the engine snapshot holds (the rest: the database)."""
    if snapshot is None:
        return {}
    found = {}
    for pid in ids:
        at = snapshot.index.get(pid)
        if at is not None:
            product = snapshot.products[at]
            found[pid] = (product.category, list(product.tags))
    return found


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
