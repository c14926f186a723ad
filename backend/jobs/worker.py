"""The worker loops: deliver accepted events to ``EventProcessor`` (``backend.jobs.events``).

``StreamWorker`` runs it over Redis Streams (``shopwise worker``); ``InProcessWorker`` runs it
on a background thread of the API when there is no Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from backend.db.models import utcnow
from backend.infra.outbox import OutboxSweeper
from backend.infra.stream import (
    Delivery,
    InProcessEventStream,
    RedisEventStream,
    StreamEvent,
    StreamStatus,
)
from backend.jobs.events import (
    ATTEMPTS,
    EventProcessor,
)

log = logging.getLogger(__name__)

# After a wake, how long the embedded worker (the API's thread or child process) waits for
# more events before it processes them: a batch costs about the same few statements whatever
# its size (SQLite, ledger and counters: 1.6 ms of CPU for one event, 0.45 ms each for four,
# 0.16 ms each for sixteen), and derived data waits for the precompute's debounce anyway.
GATHER_SECONDS = 0.05


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
            deliveries = self.stream.read(self.consumer, self.batch_size, self._block_ms())
        self.handle(deliveries)
        self.processor.flush_due()  # lists that came due, even when no event arrives
        return len(deliveries)

    def _block_ms(self) -> int:
        """Wait for messages until the next list is due, at most ``block_ms`` (never 0:
        Redis reads 0 as 'wait forever')."""
        due_in = self.processor.next_due_in()
        if due_in is None:
            return self.block_ms
        return max(1, min(self.block_ms, int(due_in * 1000) + 1))

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
                    self.processor.flush_due(everything=True)
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
        try:  # stopping: the lists still waiting for their window
            self.processor.flush_due(everything=True)
        except Exception:
            log.exception("deferred precompute failed at stop")

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
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self.stream = stream
        self.processor = processor
        self.batch_size = batch_size
        # This thread holds the API's GIL: one batch per gathering, not one per event.
        self.gather_seconds = gather_seconds
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
            events = self._take()
            if events:
                try:
                    self._handle(events)
                finally:
                    self.stream.finished(events)
            self._flush(everything=self._stop.is_set())

    def _take(self) -> list[StreamEvent]:
        """The next batch: the first event and what else arrives within the gathering (cut
        short when stopping)."""
        events = self.stream.take(self.batch_size, timeout=self._poll_seconds())
        if events and len(events) < self.batch_size and self.gather_seconds > 0:
            self._stop.wait(self.gather_seconds)
            events += self.stream.take(self.batch_size - len(events), timeout=0)
        return events

    def _poll_seconds(self) -> float:
        """How long to wait for events: until the next list is due, and every 10 ms while
        one waits for a moment without requests."""
        due_in = self.processor.next_due_in()
        return 0.2 if due_in is None else min(0.2, max(due_in, 0.01))

    def _flush(self, *, everything: bool) -> None:
        """Lists that came due (all waiting ones when stopping)."""
        try:
            self.processor.flush_due(everything=everything)
        except Exception:  # a stale list is never served; the shopper's answer is computed live
            log.exception("deferred precompute failed")

    def _handle(self, events: Sequence[StreamEvent]) -> None:
        for attempt in range(1, ATTEMPTS + 1):
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
        detail += f"; {self.processor.precompute_status()}; {self.processor.retrain_status()}"
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
