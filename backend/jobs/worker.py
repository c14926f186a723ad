"""The worker: turns accepted events into derived data, exactly once per event.

For every event it counts co-interactions (frequently bought together), refreshes the
user's precomputed recommendations and counts towards the next model retrain. Statistics
go through a ledger (``processed_event``) in the same transaction, so a message delivered
twice (a worker died after committing but before acking) is counted once. Precomputing is a
replace, so repeating it is harmless.

``StreamWorker`` runs this over Redis Streams (``shopwise worker``); ``InProcessWorker``
runs it on a background thread of the API when there is no Redis.
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
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from backend.db import crud
from backend.db.engine import session_scope
from backend.db.history import recent_history
from backend.db.models import Action, UserRecommendation, as_utc, utcnow
from backend.infra.outbox import OutboxSweeper
from backend.infra.stream import (
    Delivery,
    InProcessEventStream,
    RedisEventStream,
    StreamEvent,
    StreamStatus,
)
from backend.observability.metrics import Metrics
from backend.services.recommend import RecommendationService

log = logging.getLogger(__name__)

BOUGHT_TOGETHER = "bought_together"
SINCE_RETRAIN = "events_since_retrain"
RETRAINS = "retrains"
SINCE_SEGMENTS = "events_since_segments"
_ATTEMPTS = 3

RetrainFn = Callable[[], object]


@dataclass(frozen=True, slots=True)
class ProcessReport:
    delivered: int
    processed: int  # newly counted into the statistics
    duplicates: int  # already in the ledger: a redelivery
    skipped: int  # the interaction no longer exists
    precomputed: int  # users whose list was refreshed
    retrain: str | None = None  # "due" | "done" | "failed"
    segments: str | None = None  # "done" | "failed": shopper segments recomputed


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
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.recommender = recommender
        self.top_n = top_n
        self.retrain_threshold = retrain_threshold
        self.retrain = retrain
        self.segments = segments  # recomputes the shopper segments that cold start reads
        self.segment_threshold = segment_threshold
        self.commit_every = max(commit_every, 1)
        self.on_commit = on_commit  # test seam: called after each committed chunk
        self.clock = clock
        self._retrain_due_logged = False

    def process(self, events: Sequence[StreamEvent]) -> ProcessReport:
        unique = list({e.interaction_id: e for e in events}.values())
        processed = duplicates = skipped = 0
        since_retrain = 0
        for start in range(0, len(unique), self.commit_every):
            chunk = unique[start : start + self.commit_every]
            new, dup, gone, since = _retry(functools.partial(self._count, chunk))
            processed, duplicates, skipped = processed + new, duplicates + dup, skipped + gone
            since_retrain = max(since_retrain, since)
            if self.on_commit is not None:
                self.on_commit(processed + duplicates + skipped)
        precomputed = 0
        for user_id in dict.fromkeys(e.user_id for e in unique):
            precomputed += self.precompute(user_id)
        retrain = self._maybe_retrain(since_retrain) if processed else None
        segments = self._maybe_resegment(processed) if processed else None
        self._measure(unique, processed, duplicates, skipped)
        return ProcessReport(
            len(events), processed, duplicates, skipped, precomputed, retrain, segments
        )

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

    def _count(self, chunk: Sequence[StreamEvent]) -> tuple[int, int, int, int]:
        """Ledger, co-interaction counts and the retrain counter: one transaction."""
        ids = [e.interaction_id for e in chunk]
        now = self.clock()
        with session_scope(self.db) as session:
            done = crud.processed_interaction_ids(session=session, ids=ids)
            alive = crud.existing_interaction_ids(session=session, ids=ids)
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
                crud.bump_counter(session=session, name=SINCE_RETRAIN, by=len(new), at=now)
                if new
                else 0
            )
        gone = sum(1 for e in chunk if e.interaction_id not in alive)
        return len(new), len(chunk) - len(new) - gone, gone, since

    def precompute(self, user_id: uuid.UUID) -> int:
        """Store the default strategy's list for this user; 1 if stored, 0 if not."""
        svc = self.recommender
        with Session(self.db) as session:
            user = crud.get_user(session=session, user_id=user_id)
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
        try:
            self.retrain()
        except Exception:
            log.exception("model retrain failed; will try again after the next batch")
            return "failed"
        now = self.clock()
        with session_scope(self.db) as session:
            crud.set_counter(session=session, name=SINCE_RETRAIN, value=0, at=now)
            crud.bump_counter(session=session, name=RETRAINS, by=1, at=now)
        log.info("model retrained after %d events", since)
        return "done"

    def _maybe_resegment(self, processed: int) -> str | None:
        """Recompute the segments every ``segment_threshold`` accepted events. Unlike the
        retrain counter this one is bumped after the batch: a crash may skip a few events'
        worth of it, which only delays a recompute."""
        if self.segments is None or self.segment_threshold <= 0:
            return None
        with session_scope(self.db) as session:
            since = crud.bump_counter(
                session=session, name=SINCE_SEGMENTS, by=processed, at=self.clock()
            )
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


def _retry(fn: Callable[[], tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """Two workers on the same rows (a reclaim racing a slow worker) collide on a key or a
    lock; the ledger makes running the chunk again safe."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return fn()
        except (IntegrityError, OperationalError):
            if attempt == _ATTEMPTS:
                raise
            log.info("statistics write collided (attempt %d); retrying", attempt)
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


class StreamWorker:
    """``shopwise worker``: reclaim what dead workers left, read new messages, process, ack.

    Messages are acked only after processing committed, so a worker killed mid-batch
    leaves its messages pending; after ``claim_idle_ms`` any worker takes them over.
    """

    def __init__(
        self,
        *,
        stream: RedisEventStream,
        processor: EventProcessor,
        consumer: str,
        batch_size: int = 100,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        refresh_snapshot: Callable[[], object] | None = None,
        refresh_seconds: float = 5.0,
        heartbeat: Path | None = None,
        sweeper: OutboxSweeper | None = None,
        sweep_seconds: float = 10.0,
        replay_window: timedelta = timedelta(days=1),
    ) -> None:
        self.stream = stream
        # When Redis loses its data, unprocessed events of this window are announced again.
        self.replay_window = replay_window
        self._generation: str | None = None
        self.processor = processor
        self.consumer = consumer
        self.sweeper = sweeper  # announces events an API process died before publishing
        self.sweep_seconds = sweep_seconds
        self._last_sweep: float | None = None
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.refresh_snapshot = refresh_snapshot
        self.refresh_seconds = refresh_seconds
        self.heartbeat = heartbeat  # touched every step: a container healthcheck reads its age
        self.handled = 0
        self._resumed = False
        self._last_refresh = time.monotonic()

    def run_once(self) -> int:
        """One step; returns how many messages it handled."""
        deliveries: list[Delivery] = []
        if not self._resumed:  # first, what this consumer name was given and never acked
            deliveries = self.stream.own_pending(self.consumer, self.batch_size)
            self._resumed = not deliveries
        if not deliveries:
            deliveries = self.stream.claim(self.consumer, self.claim_idle_ms, self.batch_size)
            if deliveries:
                log.info("reclaimed %d message(s) left pending by another worker", len(deliveries))
        if not deliveries:
            deliveries = self.stream.read(self.consumer, self.batch_size, self.block_ms)
        self.handle(deliveries)
        return len(deliveries)

    def handle(self, deliveries: Sequence[Delivery]) -> None:
        good: list[Delivery] = []
        for delivery in deliveries:
            if delivery.event is None:
                log.error("malformed stream message %s; dead-lettered", delivery.message_id)
                self.stream.dead_letter(delivery, "malformed payload")
            else:
                good.append(delivery)
        if not good:
            return
        report = self.processor.process([d.event for d in good if d.event is not None])
        self.stream.ack([d.message_id for d in good])
        self.handled += len(good)
        log.debug("batch done: %s", report)

    def run(self, stop: threading.Event, *, burst: bool = False) -> None:
        """Loop until ``stop`` is set (or, with ``burst``, until nothing is left pending)."""
        backoff = 0.5
        while not stop.is_set():
            try:
                self._maybe_sweep()
                n = self.run_once()
                backoff = 0.5
                if self.heartbeat is not None:
                    self.heartbeat.touch()
                if burst and n == 0 and self.stream.pending_count() == 0:
                    return
            except Exception:  # Redis or the database is away: keep the messages, wait
                log.exception("worker step failed; retrying in %.1f s", backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 15.0)
                continue
            if (
                self.refresh_snapshot
                and time.monotonic() - self._last_refresh > self.refresh_seconds
            ):
                self._last_refresh = time.monotonic()
                try:
                    self.refresh_snapshot()
                except Exception:
                    log.exception("snapshot refresh failed")

    def _maybe_sweep(self) -> None:
        """At start, then every ``sweep_seconds``."""
        now = time.monotonic()
        if self.sweeper is None or (
            self._last_sweep is not None and now - self._last_sweep < self.sweep_seconds
        ):
            return
        self._last_sweep = now
        self.sweeper.sweep()
        generation = self.stream.group_generation()
        if self._generation is not None and generation != self._generation:
            log.warning("the event stream's group was created anew: Redis lost its data")
            self.sweeper.replay_unprocessed(utcnow() - self.replay_window)
        self._generation = generation


class InProcessWorker:
    """The embedded default: the same processing on a background thread of the API."""

    def __init__(
        self,
        *,
        stream: InProcessEventStream,
        processor: EventProcessor,
        batch_size: int = 200,
        sweeper: OutboxSweeper | None = None,
        sweep_seconds: float = 30.0,
    ) -> None:
        self.stream = stream
        self.processor = processor
        self.batch_size = batch_size
        self.sweeper = sweeper  # at start: what a previous process stored but never processed
        self.sweep_seconds = sweep_seconds
        self.processed = 0
        self.failed = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="event-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand, then stop (before the app closes the database)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            if self._thread.is_alive():
                log.warning("in-process worker still busy after %.0f s; leaving it", timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        last_sweep: float | None = None
        while not self._stop.is_set():
            if self.sweeper is not None and (
                last_sweep is None or time.monotonic() - last_sweep >= self.sweep_seconds
            ):
                last_sweep = time.monotonic()
                try:
                    self.sweeper.sweep()
                except Exception:
                    log.exception("outbox sweep failed; retrying later")
            events = self.stream.take(self.batch_size, timeout=0.2)
            if not events:
                continue
            try:
                self._handle(events)
            finally:
                self.stream.finished(events)

    def _handle(self, events: Sequence[StreamEvent]) -> None:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self.processor.process(events)
                self.processed += len(events)
                return
            except Exception as exc:
                self.last_error = type(exc).__name__
                log.exception("in-process worker batch failed (attempt %d)", attempt)
                if self._stop.wait(0.2 * attempt):
                    break
        self.failed += len(events)  # stored events; only their derived data is late
        self.processor.record_failed(len(events))

    def status(self) -> StreamStatus:
        state = "ok" if self.running else "degraded"
        detail = (
            f"in-process, {'running' if self.running else 'stopped'}, {self.processed} processed"
        )
        if self.failed:
            detail += f", {self.failed} failed (last: {self.last_error})"
        detail += f"; {self.processor.retrain_status()}"
        return StreamStatus(backend="in-process", status=state, detail=detail)


class StreamWorkerMonitor:
    """What the API can tell about remote workers: who reads the group, and how recently."""

    def __init__(
        self,
        stream: RedisEventStream,
        processor: EventProcessor | None = None,
        active_within_ms: int = 30_000,
    ) -> None:
        self.stream = stream
        self.processor = processor
        self.active_within_ms = active_within_ms

    def status(self) -> StreamStatus:
        try:
            consumers = self.stream.consumers()
            pending = self.stream.pending_count()
        except Exception as exc:
            return StreamStatus(
                "redis",
                "degraded",
                f"Redis unreachable ({type(exc).__name__}): no worker can read events",
            )
        active = [c for c in consumers if int(c.get("idle", 1 << 62)) < self.active_within_ms]
        detail = f"{len(active)} active worker(s), {pending} message(s) pending"
        if self.processor is not None:
            detail += f"; {self.processor.retrain_status()}"
        if not active:
            return StreamStatus("redis", "degraded", "no worker is reading the stream; " + detail)
        return StreamStatus("redis", "ok", detail)
