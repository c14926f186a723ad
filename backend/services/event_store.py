"""One transaction for a group of event requests: checks, the insert, what follows from it.

Round trips for a group, whatever its size: one SELECT for the users and products named,
one multi-row INSERT that skips (sender, event id) pairs already stored, a SELECT of the stored
events only when some were skipped, then carts and wishlists (only for cart events), the
profiles (locked in id order), the outbox rows and the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import Session

from backend.db import crud
from backend.db.crud.events import AnyEvent, NewEvent
from backend.db.models import Interaction, as_utc
from backend.services.profiles import Facets, update_profiles

LEGACY_SOURCE = "legacy"  # events stored before senders were recorded (migration 0009)

Status = Literal["accepted", "duplicate", "conflict", "rejected"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """An event as it would be stored (id and time assigned)."""

    row: NewEvent
    timed: bool  # the sender gave the time: a repeat must carry the same one


@dataclass(frozen=True, slots=True)
class Job:
    """One request's events, all from one sender (whose event ids they are)."""

    source: str
    events: Sequence[Candidate]


@dataclass(frozen=True, slots=True)
class Written:
    status: Status
    interaction: AnyEvent | None = None  # accepted: the new row; duplicate: the stored one
    reason: str | None = None


class StoredEventVanished(RuntimeError):
    """An insert was skipped for an event id whose row is gone by the time it is read (it was
    deleted in between): the group is written again."""


def store_group(
    session: Session,
    jobs: Sequence[Job],
    *,
    legacy: bool,
    facets: Callable[[Sequence[uuid.UUID]], Facets],
    known_tags: frozenset[str] | None,
    outbox: bool,
    now: datetime,
) -> list[list[Written]]:
    """Store every new event of ``jobs`` (the caller commits); one outcome per event.

    ``legacy``: whether events stored before senders were recorded may still carry ids (then
    they are looked up before the insert, as a repeat of one is a duplicate, not new).
    """
    candidates = [(job.source, c) for job in jobs for c in job.events]
    users, products = crud.existing_users_and_products(
        session=session,
        user_ids=list({c.row.user_id for _, c in candidates}),
        product_ids=list({c.row.product_id for _, c in candidates if c.row.product_id}),
    )
    known: dict[tuple[str, str], Interaction] = {}
    if legacy:
        known = crud.find_events(
            session=session,
            sources=[LEGACY_SOURCE, *(s for s, _ in candidates)],
            event_ids=[c.row.event_id for _, c in candidates if c.row.event_id],
        )
    outcomes: dict[int, Written] = {}
    first: dict[tuple[str, str], NewEvent] = {}  # the group's own first use of each id
    new: list[NewEvent] = []
    for n, (source, candidate) in enumerate(candidates):
        row = candidate.row
        if row.user_id not in users:
            outcomes[n] = Written("rejected", reason=f"user {row.user_id} does not exist")
        elif row.product_id is not None and row.product_id not in products:
            outcomes[n] = Written("rejected", reason=f"product {row.product_id} does not exist")
        elif row.event_id is None:
            new.append(row)
        elif (source, row.event_id) not in first and _earlier(known, source, candidate) is None:
            first[(source, row.event_id)] = row
            new.append(row)
    inserted = crud.insert_new_events(session=session, rows=new)
    skipped = [r for r in new if r.id not in inserted]
    if skipped:  # stored meanwhile by another process (or before, when not looked up)
        known.update(
            crud.find_events(
                session=session,
                sources=[r.event_source for r in skipped],
                event_ids=[r.event_id for r in skipped if r.event_id is not None],
            )
        )
    for n, (source, candidate) in enumerate(candidates):
        if n in outcomes:
            continue
        row = candidate.row
        if row.id in inserted:
            outcomes[n] = Written("accepted", row)
            continue
        assert row.event_id is not None
        own = first.get((source, row.event_id))
        previous: AnyEvent | None = own if own is not None and own.id in inserted else None
        previous = previous or _earlier(known, source, candidate)
        if previous is None:
            raise StoredEventVanished(f"event_id {row.event_id!r} of {source}")
        if _same(previous, candidate):
            outcomes[n] = Written("duplicate", previous)
        else:
            reason = f"event_id {row.event_id!r} was already used for another event"
            outcomes[n] = Written("conflict", reason=reason)
    stored = [r for r in new if r.id in inserted]
    if stored:
        crud.apply_cart_and_wishlist(session=session, events=stored)
        product_ids = list({r.product_id for r in stored if r.product_id is not None})
        update_profiles(session, stored, known_tags=known_tags, facets=facets(product_ids))
        if outbox:
            crud.add_to_outbox(session=session, ids=[r.id for r in stored], at=now)
    ordered = iter(outcomes[n] for n in range(len(candidates)))
    return [[next(ordered) for _ in job.events] for job in jobs]


def _earlier(
    known: dict[tuple[str, str], Interaction], source: str, candidate: Candidate
) -> Interaction | None:
    """The stored event this one repeats: the sender's own with this id, else one stored
    before senders were recorded, but only if it is the same event (a retry straddling
    the upgrade); another sender's legacy id never blocks this one."""
    event_id = candidate.row.event_id
    if event_id is None:
        return None
    own = known.get((source, event_id))
    if own is not None:
        return own
    old = known.get((LEGACY_SOURCE, event_id))
    return old if old is not None and _same(old, candidate) else None


def _same(stored: AnyEvent, candidate: Candidate) -> bool:
    """Whether a retry carries the event stored under its id (the time only when sent)."""
    row = candidate.row
    if (stored.user_id, stored.product_id, stored.action, stored.query) != (
        row.user_id,
        row.product_id,
        row.action,
        row.query,
    ):
        return False
    return not candidate.timed or as_utc(row.created_at) == as_utc(stored.created_at)
