"""Turns accepted events into derived data, exactly once per event.

For every event ``EventProcessor`` counts co-interactions (frequently bought together),
refreshes the user's precomputed recommendations, has their explanation prepared (when an
LLM writes them) and counts towards the next model retrain.

A shopper's list is refreshed once their events have paused for
``precompute_debounce_seconds`` (each event moves the moment on), and then only if no
request has ranked and cached their answer since their last event. A list refreshed at once
was duplicate work when the shopper's next ``GET /recommend`` came right away (the request
ranked it too: the storefront loads a page after its view event) and wasted when their next
event came first; a burst of events now costs one refresh, for the newest profile. The last
event of a burst always gets its list, unless a request got there first. ``flush_due``, which
the worker loops call between batches, refreshes what has come due.

In the API's own process (``quiet``: no request in flight) a list is refreshed only between
requests, never while one is in flight: the refresh holds the GIL and SQLite's writer, and a
live answer costs less than a precomputed one (ranking it is part of both). A list that has
waited ``precompute_max_wait_seconds`` for such a moment is given up: the shopper's next
request ranks it, so a busy process sheds this work instead of queueing it.

A list the worker has not caught up with is never served: the recommender checks its profile
version. Statistics go through a ledger (``processed_event``) in the same transaction, so a
message delivered twice (a worker died after committing but before acking) is counted once.
Precomputing is a replace, so repeating it is harmless. ``backend.jobs.worker`` runs it over
a stream.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from backend.db import crud
from backend.db.engine import session_scope
from backend.db.history import recent_history
from backend.db.models import Action, UserRecommendation, as_utc, utcnow
from backend.infra.stream import StreamEvent
from backend.jobs.priority import lower_this_thread
from backend.jobs.training import TrainingBusy, TrainingStopped
from backend.observability.metrics import Metrics
from backend.services.recommend import RecommendationService

log = logging.getLogger(__name__)

BOUGHT_TOGETHER = "bought_together"
SINCE_RETRAIN = "events_since_retrain"
RETRAINS = "retrains"
SINCE_SEGMENTS = "events_since_segments"
ATTEMPTS = 3

RetrainFn = Callable[[], object]


@dataclass(frozen=True, slots=True)
class ProcessReport:
    delivered: int
    processed: int  # newly counted into the statistics
    duplicates: int  # already in the ledger: a redelivery
    skipped: int  # the interaction no longer exists
    precomputed: int  # users whose list was refreshed
    # "due" | "done" | "skipped" (another process trains) | "failed" | "stopped"; in the
    # background "started" | "running"
    retrain: str | None = None
    segments: str | None = None  # "done" | "failed": shopper segments recomputed


@dataclass(frozen=True, slots=True)
class _Counted:
    """One chunk's transaction: what the ledger said, and the counters after it."""

    new: int
    duplicates: int
    gone: int
    since_retrain: int
    since_segments: int


class EventProcessor:
    def __init__(
        self,
        *,
        db: Engine,
        recommender: RecommendationService,
        top_n: int,
        retrain_threshold: int,
        retrain: RetrainFn | None = None,
        segments: RetrainFn | None = None,
        segment_threshold: int = 0,
        commit_every: int = 100,
        on_commit: Callable[[int], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
        prepare: Callable[[uuid.UUID], object] | None = None,
        precompute_debounce_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
        quiet: Callable[[], bool] | None = None,
        precompute_max_wait_seconds: float = 2.0,
        retrain_in_background: bool = False,
        answered: Callable[[uuid.UUID], bool] | None = None,
    ) -> None:
        self.db = db
        # Whether a request has answered the shopper since their last event (a list precomputed
        # now would not be read): by default their answer in this process's response cache.
        self.answered = answered
        self.metrics = metrics
        self.recommender = recommender
        self.top_n = top_n
        self.retrain_threshold = retrain_threshold
        self.retrain = retrain
        self.segments = segments  # recomputes the shopper segments that cold start reads
        self.segment_threshold = segment_threshold
        self.commit_every = max(commit_every, 1)
        self.on_commit = on_commit  # test seam: called after each committed chunk
        # Queues the explanation of a shopper's new list (when an LLM writes them), so it is
        # ready before they ask.
        self.prepare = prepare
        self.clock = clock
        self.debounce = max(precompute_debounce_seconds, 0.0)
        self.monotonic = monotonic  # test seam for the debounce window
        # None: refresh when due (a worker process of its own). Else lists are refreshed only
        # while no request is in flight, and given up after ``max_wait`` seconds without such
        # a moment.
        self.quiet = quiet
        self.max_wait = max(precompute_max_wait_seconds, 0.0)
        self.precomputed = 0  # lists stored
        self.skipped_precomputes = 0  # answered from the cache since the event: not needed
        self.dropped_precomputes = 0  # no moment without requests in time: ranked live instead
        # user -> when their list is due. Every event re-inserts its shopper at now +
        # debounce, so the dict's order is the order lists come due.
        self._due: dict[uuid.UUID, float] = {}
        self._retrain_due_logged = False
        self.retrain_in_background = retrain_in_background
        self._retrain_thread: threading.Thread | None = None
        # Bumped with the ledger, in each batch's transaction: one statement for both.
        self._counters = [SINCE_RETRAIN] + (
            [SINCE_SEGMENTS] if segments is not None and segment_threshold > 0 else []
        )

    def process(self, events: Sequence[StreamEvent]) -> ProcessReport:
        unique = list({e.interaction_id: e for e in events}.values())
        processed = duplicates = skipped = 0
        since_retrain = since_segments = 0
        for start in range(0, len(unique), self.commit_every):
            chunk = unique[start : start + self.commit_every]
            counted = _retry(functools.partial(self._count, chunk))
            processed += counted.new
            duplicates += counted.duplicates
            skipped += counted.gone
            since_retrain = max(since_retrain, counted.since_retrain)
            since_segments = max(since_segments, counted.since_segments)
            if self.on_commit is not None:
                self.on_commit(processed + duplicates + skipped)
        due = self.monotonic() + self.debounce
        for user_id in dict.fromkeys(e.user_id for e in unique):
            self._due.pop(user_id, None)  # to the end: due after everyone already waiting
            self._due[user_id] = due
        precomputed = self.flush_due()
        retrain = self._maybe_retrain(since_retrain) if processed else None
        segments = self._maybe_resegment(since_segments) if processed else None
        self._measure(unique, processed, duplicates, skipped)
        return ProcessReport(
            len(events), processed, duplicates, skipped, precomputed, retrain, segments
        )

    def flush_due(self, *, everything: bool = False) -> int:
        """Refresh the lists that have come due (``everything``: all waiting ones, before
        stopping); returns how many were stored."""
        stored = 0
        for user_id, at in list(self._due.items()):  # the longest waiting first
            if everything:
                stored += self._refresh(user_id)
                continue
            now = self.monotonic()
            if at > now:
                break  # the rest comes due later
            if self.quiet is not None:
                if now - at > self.max_wait:
                    del self._due[user_id]  # the next request ranks it live
                    self.dropped_precomputes += 1
                    continue
                if not self.quiet():
                    break  # a request is in flight: the rest waits for the next quiet moment
            stored += self._refresh(user_id)
        return stored

    @property
    def deferred(self) -> int:
        """Shoppers whose list waits for their events to pause or for a quiet moment."""
        return len(self._due)

    def next_due_in(self) -> float | None:
        """Seconds until a list is due (0: due now, waiting for a quiet moment); None when
        none waits. The worker loops poll by it."""
        for at in self._due.values():  # the first is the earliest
            return max(0.0, at - self.monotonic())
        return None

    def _refresh(self, user_id: uuid.UUID) -> int:
        del self._due[user_id]
        if (
            self.answered(user_id)
            if self.answered is not None
            else self.recommender.answer_cached(user_id, top_n=self.top_n)
        ):
            self.skipped_precomputes += 1  # a request ranked it since the event
            return 0
        stored = self.precompute(user_id)
        if stored:
            self.precomputed += 1
            self._prepare(user_id)
        return stored

    def precompute_status(self) -> str:
        """What became of the lists that came due, for /health."""
        return (
            f"{self.precomputed} list(s) precomputed, {self.skipped_precomputes} already "
            f"answered by a request, {self.dropped_precomputes} given up while busy, "
            f"{self.deferred} waiting"
        )

    def _prepare(self, user_id: uuid.UUID) -> None:
        if self.prepare is None:
            return
        try:
            self.prepare(user_id)
        except Exception:  # the storefront queues it on the shopper's next visit anyway
            log.warning("could not queue the explanation for user %s", user_id, exc_info=True)

    def _measure(
        self, events: Sequence[StreamEvent], processed: int, duplicates: int, skipped: int
    ) -> None:
        """Worker progress and the delay from an event being stored to its processing."""
        if self.metrics is None:
            return
        counts = {"processed": processed, "duplicate": duplicates, "skipped": skipped}
        for result, n in counts.items():
            if n:
                self.metrics.worker_processed.labels(result).inc(n)
        now = self.clock()
        for event in events:
            delay = (now - as_utc(event.created_at)).total_seconds()
            self.metrics.event_delay.observe(max(0.0, delay))

    def record_failed(self, n: int) -> None:
        """Events a worker gave up on for now (their outbox rows bring them back)."""
        if self.metrics is not None and n:
            self.metrics.worker_processed.labels("failed").inc(n)

    def _count(self, chunk: Sequence[StreamEvent]) -> _Counted:
        """Ledger, co-interaction counts and the retrain and segment counters: one
        transaction."""
        ids = [e.interaction_id for e in chunk]
        now = self.clock()
        with session_scope(self.db) as session:
            alive, done = crud.ledger(session=session, ids=ids)
            new = [e for e in chunk if e.interaction_id not in done and e.interaction_id in alive]
            pairs: Counter[tuple[uuid.UUID, uuid.UUID, str]] = Counter()
            for event in new:
                if event.action != Action.PURCHASE.value or event.product_id is None:
                    continue
                for other in crud.earlier_purchases(
                    session=session,
                    user_id=event.user_id,
                    before=event.created_at,
                    interaction_id=event.interaction_id,
                ):
                    if other != event.product_id:
                        pairs[(event.product_id, other, BOUGHT_TOGETHER)] += 1
                        pairs[(other, event.product_id, BOUGHT_TOGETHER)] += 1
            crud.bump_co_interactions(session=session, counts=pairs, at=now)
            crud.mark_processed(session=session, ids=[e.interaction_id for e in new], at=now)
            crud.remove_from_outbox(session=session, ids=ids)  # handled: no sweep needed
            since = (
                crud.bump_counters(session=session, names=self._counters, by=len(new), at=now)
                if new
                else {}
            )
        gone = sum(1 for e in chunk if e.interaction_id not in alive)
        return _Counted(
            len(new),
            len(chunk) - len(new) - gone,
            gone,
            since.get(SINCE_RETRAIN, 0),
            since.get(SINCE_SEGMENTS, 0),
        )

    def precompute(self, user_id: uuid.UUID) -> int:
        """Store the default strategy's list for this user; 1 if stored, 0 if not."""
        svc = self.recommender
        with Session(self.db) as session:
            user = crud.get_shopper(session=session, user_id=user_id)
            if user is None:
                return 0
            # Version first: an event landing meanwhile makes this list stale, never wrong.
            version = crud.profile_version(session=session, user_id=user_id)
            records = recent_history(session=session, user_id=user_id)
        snapshot = svc.snapshots.get()
        now = self.clock()
        strategy = svc.default_strategy
        ranked_against = svc.ranking_version(strategy, snapshot)  # before: a swap makes it stale
        recs = svc.strategies[strategy].recommend(
            snapshot, svc.build_request(user, records, top_n=self.top_n, now=now)
        )
        rows = [
            UserRecommendation(
                user_id=user_id,
                product_id=snapshot.products[rec.index].id,
                rank=rank,
                score=float(rec.score),
                evidence=rec.evidence.model_dump(mode="json"),
                strategy=strategy,
                top_n=self.top_n,
                profile_version=version,
                catalog_version=ranked_against,
                updated_at=now,
            )
            for rank, rec in enumerate(recs)
        ]
        try:
            with session_scope(self.db) as session:
                crud.replace_user_recommendations(session=session, user_id=user_id, rows=rows)
        except IntegrityError:  # another worker wrote this user's list at the same moment
            log.debug("concurrent precompute for user %s; keeping theirs", user_id)
            return 0
        return 1

    def _maybe_retrain(self, since: int) -> str | None:
        if self.retrain_threshold <= 0 or since < self.retrain_threshold:
            return None
        if self.retrain is None:
            if not self._retrain_due_logged:
                log.info("model retrain due: %d events since the last one", since)
                self._retrain_due_logged = True
            return "due"  # the counter in worker_counter records it
        if not self.retrain_in_background:
            return self._run_retrain(self.retrain, since)
        if self._retrain_thread is not None and self._retrain_thread.is_alive():
            return "running"
        # A retrain fits the next-item model too: minutes on a large catalogue. In its own
        # thread the worker goes on counting events and refreshing lists meanwhile.
        self._retrain_thread = threading.Thread(
            target=self._background_retrain,
            args=(self.retrain, since),
            name="retrain",
            daemon=True,
        )
        self._retrain_thread.start()
        return "started"

    def _background_retrain(self, retrain: RetrainFn, since: int) -> None:
        lower_this_thread()  # the events and the lists first
        self._run_retrain(retrain, since)

    def _run_retrain(self, retrain: RetrainFn, since: int) -> str:
        """The counter is lowered only by a retrain that ran: one skipped (another process
        trains), stopped or failed is tried again after the next batch."""
        try:
            retrain()
        except TrainingBusy as exc:
            log.info("model retrain skipped: %s; will try again after the next batch", exc)
            return "skipped"
        except TrainingStopped:
            log.info("model retrain stopped: shutting down")
            return "stopped"
        except Exception:
            log.exception("model retrain failed; will try again after the next batch")
            return "failed"
        now = self.clock()
        with session_scope(self.db) as session:
            # Less the events it was started for: those counted while it trained (in the
            # background) count towards the next retrain.
            crud.bump_counter(session=session, name=SINCE_RETRAIN, by=-since, at=now)
            crud.bump_counter(session=session, name=RETRAINS, by=1, at=now)
        log.info("model retrained after %d events", since)
        return "done"

    def wait_for_retrain(self, timeout: float | None = None) -> None:
        """Let a background retrain finish (a stopping worker, tests)."""
        if self._retrain_thread is not None:
            self._retrain_thread.join(timeout)

    def _maybe_resegment(self, since: int) -> str | None:
        """Recompute the segments every ``segment_threshold`` accepted events (the counter
        is bumped with the ledger, in the batch's transaction)."""
        if self.segments is None or self.segment_threshold <= 0:
            return None
        if since < self.segment_threshold:
            return None
        try:
            self.segments()
        except Exception:
            log.exception("segment recompute failed; will try again after the next batch")
            return "failed"
        with session_scope(self.db) as session:
            crud.set_counter(session=session, name=SINCE_SEGMENTS, value=0, at=self.clock())
        return "done"

    def retrain_status(self) -> str:
        with Session(self.db) as session:
            since = crud.get_counter(session=session, name=SINCE_RETRAIN)
        due = self.retrain_threshold > 0 and since >= self.retrain_threshold
        return f"{since} event(s) since the last retrain" + (" (retrain due)" if due else "")


def _retry(fn: Callable[[], _Counted]) -> _Counted:
    """Two workers on the same rows (a reclaim racing a slow worker) collide on a key or a
    lock; the ledger makes running the chunk again safe."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return fn()
        except (IntegrityError, OperationalError):
            if attempt == ATTEMPTS:
                raise
            log.info("statistics write collided (attempt %d); retrying", attempt)
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")
