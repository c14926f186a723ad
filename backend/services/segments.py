"""Shopper segments as a service: recompute and store them, place cold-start users, report.

The worker (after ``SEGMENT_RECOMPUTE_THRESHOLD`` events) and ``shopwise segments`` call
``recompute``; the recommender asks ``hint_for`` about users with fewer than
``SEGMENT_COLD_START_INTERACTIONS`` interactions; ``GET /analytics/segments`` reads
``summary``. API processes reload the stored segments when a newer run appears.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from backend.db.crud import segments as store
from backend.db.engine import session_scope
from backend.db.models import SegmentRow, SegmentRun, utcnow
from backend.infra.stream import StreamStatus
from backend.recommender.profile import DEFAULT_ACTION_WEIGHTS, InteractionRecord
from backend.recommender.segments import (
    FeatureSpec,
    Segment,
    SegmentModel,
    UserActivity,
    activity_of,
    fit_segments,
)
from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager
from backend.recommender.strategies.base import SegmentHint

log = logging.getLogger(__name__)

_ANONYMOUS = uuid.UUID(int=0)


class SegmentOut(BaseModel):
    segment: int
    label: str
    size: int
    top_categories: list[str]
    avg_price: float


class SegmentSummary(BaseModel):
    items: list[SegmentOut]
    computed_at: datetime | None


@dataclass(frozen=True, slots=True)
class SegmentReport:
    k: int
    users: int
    silhouette: float | None
    segments: tuple[Segment, ...]
    seconds: float


@dataclass(frozen=True, slots=True)
class _Loaded:
    run_id: int | None
    model: SegmentModel | None


class SegmentService:
    def __init__(
        self,
        *,
        db: Engine,
        snapshots: SnapshotManager,
        k: int | None = None,
        cold_start_interactions: int = 3,
        action_weights: Mapping[str, float] = DEFAULT_ACTION_WEIGHTS,
        reload_seconds: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.snapshots = snapshots
        self.k = k
        self.cold_start_interactions = cold_start_interactions
        self.action_weights = action_weights
        self.reload_seconds = reload_seconds
        self.clock = clock
        self._loaded: _Loaded | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    # --- computing ---------------------------------------------------------------------

    def recompute(self) -> SegmentReport:
        """Cluster every user with enough signal and store the run (replacing the last)."""
        started = time.perf_counter()
        with Session(self.db) as session:
            rows = store.activity_rows(session=session)
        snapshot = self.snapshots.get()
        model = fit_segments(
            self.activities(rows),
            snapshot,
            k=self.k,
            min_interactions=max(1, self.cold_start_interactions),
        )
        if model is None:
            log.info("segments: no user has enough signal yet; nothing stored")
            return SegmentReport(0, 0, None, (), time.perf_counter() - started)
        run = SegmentRun(
            computed_at=self.clock(),
            k=len(model.segments),
            n_users=len(model.assignments),
            silhouette=model.silhouette,
            features=model.spec.to_json(),
        )
        with session_scope(self.db) as session:
            store.replace_segments(
                session=session,
                run=run,
                segments=[_row(s) for s in model.segments],
                assignments=model.assignments,
            )
        with self._lock:
            self._loaded, self._checked = None, 0.0
        seconds = time.perf_counter() - started
        log.info(
            "segments: %d over %d users (silhouette %s) in %.2f s",
            len(model.segments),
            len(model.assignments),
            f"{model.silhouette:.3f}" if model.silhouette is not None else "n/a",
            seconds,
        )
        return SegmentReport(
            len(model.segments), len(model.assignments), model.silhouette, model.segments, seconds
        )

    def activities(self, rows: Iterable[store.ActivityRow]) -> list[UserActivity]:
        items: dict[uuid.UUID, dict[uuid.UUID, float]] = {}
        counts: dict[uuid.UUID, int] = {}
        searches: dict[uuid.UUID, list[str]] = {}
        for user_id, product_id, action, query, n in rows:
            counts[user_id] = counts.get(user_id, 0) + n
            mine = items.setdefault(user_id, {})
            weight = self.action_weights.get(action, 0.0)
            if product_id is not None and weight > 0:
                mine[product_id] = mine.get(product_id, 0.0) + weight * n
            if action == "search" and query:
                searches.setdefault(user_id, []).append(query)
        return [
            UserActivity(u, items[u], counts[u], tuple(searches.get(u, ()))) for u in sorted(counts)
        ]

    # --- reading ------------------------------------------------------------------------

    def model(self) -> SegmentModel | None:
        """The newest stored segments (rechecked at most every ``reload_seconds``)."""
        now = time.monotonic()
        with self._lock:
            loaded, fresh = self._loaded, now - self._checked < self.reload_seconds
        if loaded is not None and fresh:
            return loaded.model
        with Session(self.db) as session:
            run_id = store.latest_run_id(session=session)
            if loaded is None or loaded.run_id != run_id:
                loaded = _Loaded(run_id, _load(session, run_id))
        with self._lock:
            self._loaded, self._checked = loaded, now
        return loaded.model

    @property
    def version(self) -> str:
        """What a precomputed list depends on: the run it was placed with."""
        self.model()
        loaded = self._loaded
        return str(loaded.run_id) if loaded is not None and loaded.run_id is not None else "-"

    def hint_for(
        self, records: Sequence[InteractionRecord], snapshot: CatalogSnapshot
    ) -> SegmentHint | None:
        """The "shoppers like you" hint for a user with few interactions; None for everyone else,
        and for a user with no signal at all (they get global popularity)."""
        if len(records) >= self.cold_start_interactions:
            return None
        if not records:
            return None
        try:
            model = self.model()
            if model is None:
                return None
            activity = activity_of(_ANONYMOUS, records, self.action_weights)
            segment = model.assign(activity, snapshot)
        except (SQLAlchemyError, ValueError, KeyError, TypeError):
            # Unreadable segments degrade the answer to global popularity, never fail it.
            log.exception("segments unavailable; cold start falls back to popularity")
            return None
        if segment is None:
            return None
        return SegmentHint(
            segment=segment.segment,
            label=segment.label,
            size=segment.size,
            popular=dict(segment.popular),
        )

    def status(self) -> StreamStatus:
        """For /health: when the segments were computed, and over how many shoppers."""
        with Session(self.db) as session:
            run = store.latest_run(session=session)
        if run is None:
            return StreamStatus(
                "k-means", "ok", "not computed yet (cold start uses global popularity)"
            )
        silhouette = f", silhouette {run.silhouette:.2f}" if run.silhouette is not None else ""
        return StreamStatus(
            "k-means",
            "ok",
            f"{run.k} segments over {run.n_users} shoppers{silhouette}, "
            f"computed {run.computed_at.isoformat(timespec='seconds')}",
        )

    def summary(self) -> SegmentSummary:
        with Session(self.db) as session:
            run = store.latest_run(session=session)
            if run is None or run.id is None:
                return SegmentSummary(items=[], computed_at=None)
            rows = store.segments_of(session=session, run_id=run.id)
        return SegmentSummary(
            items=[
                SegmentOut(
                    segment=r.segment,
                    label=r.label,
                    size=r.size,
                    top_categories=list(r.top_categories),
                    avg_price=r.avg_price,
                )
                for r in rows
            ],
            computed_at=run.computed_at,
        )


def _row(segment: Segment) -> SegmentRow:
    return SegmentRow(
        run_id=0,  # set when stored
        segment=segment.segment,
        label=segment.label,
        size=segment.size,
        top_categories=list(segment.top_categories),
        avg_price=segment.avg_price,
        centroid=list(segment.centroid),
        popular=[[str(p), n] for p, n in segment.popular],
    )


def _load(session: Session, run_id: int | None) -> SegmentModel | None:
    if run_id is None:
        return None
    run = session.get(SegmentRun, run_id)
    rows = store.segments_of(session=session, run_id=run_id)
    if run is None or not rows:
        return None
    segments = tuple(
        Segment(
            segment=r.segment,
            label=r.label,
            size=r.size,
            top_categories=tuple(r.top_categories),
            avg_price=r.avg_price,
            centroid=tuple(float(v) for v in r.centroid),
            popular=tuple((uuid.UUID(str(p)), int(str(n))) for p, n in r.popular),
        )
        for r in rows
    )
    return SegmentModel(FeatureSpec.from_json(run.features), segments, {}, run.silhouette)
