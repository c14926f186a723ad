"""Incremental user profiles (``user_preferences``): one cheap update per accepted event.

Affinities are running sums of action weights (the same weights the ranking profile uses), so
a profile never needs the full history to stay current. The update runs inside the event's
transaction: an event and its profile change are stored together or not at all; a group of
events reads the profiles it touches with one SELECT and writes them back with one INSERT and
one UPDATE (executemany).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime

from sqlmodel import Session

from backend.db import crud
from backend.db.crud.events import AnyEvent
from backend.db.models import UserPreferences, as_utc, utcnow
from backend.recommender.profile import DEFAULT_ACTION_WEIGHTS

RECENT_ITEMS = 20
RECENT_SEARCHES = 10
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

Facets = Mapping[uuid.UUID, tuple[str, list[str]]]


def apply_event(
    prefs: UserPreferences | Profile,
    event: AnyEvent,
    facets: Facets,
    *,
    known_tags: frozenset[str] | None = None,
    weights: Mapping[str, float] = DEFAULT_ACTION_WEIGHTS,
    now: datetime | None = None,
) -> None:
    """Fold one event into a profile (pure: no I/O). JSON fields are replaced, not mutated,
    so the ORM notices the change."""
    weight = weights.get(event.action, 0.0)
    categories = dict(prefs.category_affinity)
    tags = dict(prefs.tag_affinity)
    counts = dict(prefs.action_counts)
    counts[event.action] = counts.get(event.action, 0) + 1

    if event.product_id is not None and event.product_id in facets:
        category, product_tags = facets[event.product_id]
        if weight > 0:
            categories[category] = round(categories.get(category, 0.0) + weight, 6)
            for tag in product_tags:
                tags[tag] = round(tags.get(tag, 0.0) + weight, 6)
        pid = str(event.product_id)
        prefs.recent_items = [pid, *(p for p in prefs.recent_items if p != pid)][:RECENT_ITEMS]
    if event.query:
        query = event.query.strip()
        prefs.recent_searches = [query, *(q for q in prefs.recent_searches if q != query)][
            :RECENT_SEARCHES
        ]
        if known_tags is not None and weight > 0:
            for word in set(_WORD.findall(query.lower())) & known_tags:
                tags[word] = round(tags.get(word, 0.0) + weight, 6)

    prefs.category_affinity = categories
    prefs.tag_affinity = tags
    prefs.action_counts = counts
    prefs.event_count += 1
    at = as_utc(event.created_at)
    if prefs.last_event_at is None or at > as_utc(prefs.last_event_at):
        prefs.last_event_at = at
    prefs.updated_at = now or utcnow()


@dataclass(slots=True)
class Profile:
    """A profile row's fields as a plain object: what ``apply_event`` folds events into
    inside the write path (a SQLModel object costs more per attribute set than the fold)."""

    user_id: uuid.UUID
    category_affinity: dict[str, float] = field(default_factory=dict)
    tag_affinity: dict[str, float] = field(default_factory=dict)
    recent_items: list[str] = field(default_factory=list)
    recent_searches: list[str] = field(default_factory=list)
    action_counts: dict[str, int] = field(default_factory=dict)
    event_count: int = 0
    last_event_at: datetime | None = None
    updated_at: datetime | None = None


def update_profiles(
    session: Session,
    events: Sequence[AnyEvent],
    *,
    known_tags: frozenset[str] | None = None,
    facets: Facets | None = None,
) -> dict[uuid.UUID, Profile]:
    """Apply newly stored events to their users' profiles (rows locked for the update).
    ``facets``: what is known of the products already (the engine snapshot); the rest is
    read from the database."""
    if not events:
        return {}
    stored = crud.lock_profiles(session=session, user_ids=[e.user_id for e in events])
    profiles = {user_id: Profile(**row) for user_id, row in stored.items()}
    product_ids = {e.product_id for e in events if e.product_id is not None}
    missing = [pid for pid in product_ids if facets is None or pid not in facets]
    facets = {**(facets or {}), **crud.product_facets(session=session, ids=missing)}
    now = utcnow()
    # Stable: events of one instant keep the order the client sent them in.
    for event in sorted(events, key=lambda e: as_utc(e.created_at)):
        prefs = profiles.get(event.user_id)
        if prefs is None:
            prefs = profiles[event.user_id] = Profile(user_id=event.user_id)
        apply_event(prefs, event, facets, known_tags=known_tags, now=now)
    rows = {user_id: _fields(prefs) for user_id, prefs in profiles.items()}
    crud.save_profiles(
        session=session,
        new=[row for user_id, row in rows.items() if user_id not in stored],
        changed=[row for user_id, row in rows.items() if user_id in stored],
    )
    return profiles


_PROFILE_FIELDS = tuple(f.name for f in fields(Profile))


def _fields(profile: Profile) -> dict[str, object]:
    # Not dataclasses.asdict: it deep-copies every affinity dict, for nothing here.
    return {name: getattr(profile, name) for name in _PROFILE_FIELDS}
