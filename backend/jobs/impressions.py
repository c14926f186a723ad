"""The impression log: what was shown, written off the request path in batches.

``log`` only puts the response on a bounded in-memory queue (no database work, no row
building; a few microseconds per answer, see bench/REPORT.md). A background thread
turns responses into ``rec_analytics`` rows (plain tuples) and writes them in batches
every ``flush_seconds`` (on PostgreSQL one COPY per batch), and once more on shutdown.
When the queue is full, or a write fails, impressions are dropped and counted
(``shopwise_impressions_dropped_total``): analytics may lose rows under overload, a
shopper's answer never waits for them.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from backend.db import crud
from backend.db.crud import analytics
from backend.db.crud.analytics import Impression
from backend.db.engine import session_scope
from backend.db.models import as_utc
from backend.observability.metrics import Metrics
from backend.services.schemas import RecommendationResult

log = logging.getLogger(__name__)


def evidence_check_outcome(source: str, fallback_reason: str | None) -> bool | None:
    """True: LLM text passed the evidence check; False: it failed it; None: nothing checked
    (template by choice, no key, LLM unreachable)."""
    if source == "llm":
        return True
    if fallback_reason is not None and (
        fallback_reason == "bad_json" or fallback_reason.startswith("check_failed")
    ):
        return False
    return None


# (answer, shown at, attribution window); str: a cached answer's JSON, parsed by the writer.
_Shown = tuple[RecommendationResult | str, datetime, timedelta]


def impression_rows(
    result: RecommendationResult, at: datetime, window: timedelta
) -> list[Impression]:
    """One ``rec_analytics`` row per product of a response."""
    experiment = result.experiment
    shown_at = as_utc(at)
    common = (  # the columns after ``position``, in ``Impression``'s order
        result.algorithm,
        experiment.id if experiment else None,
        experiment.variant if experiment else None,
        result.explanation_source,
        evidence_check_outcome(result.explanation_source, result.fallback_reason),
        result.cached,
        shown_at,
        shown_at + window,
    )
    response_id, user_id = uuid.uuid4(), result.user_id
    return [
        Impression(response_id, user_id, product.id, position, *common)
        for position, product in enumerate(result.recommended_products)
    ]


def _parsed(result: RecommendationResult | str) -> RecommendationResult:
    if not isinstance(result, str):
        return result
    return RecommendationResult.model_validate_json(result)


class ImpressionLogger:
    def __init__(
        self,
        *,
        db: Engine,
        metrics: Metrics | None = None,
        max_pending: int = 10_000,
        batch_rows: int = 1_000,
        flush_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        # deque.append and popleft are atomic: no lock on the request path (a Queue's
        # condition variable costs several times more per answer).
        self._queue: deque[_Shown] = deque()
        self.max_pending = max_pending
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0

    # -- the request path --------------------------------------------------------------------

    def log(self, result: RecommendationResult | str, *, at: datetime, window: timedelta) -> None:
        """Queue a response for logging; never blocks, never raises. A cached answer may come
        as its stored JSON (``cached: true``): the writer thread parses it, not the request."""
        if not isinstance(result, str) and not result.recommended_products:
            return
        if len(self._queue) < self.max_pending:
            self._queue.append((result, at, window))
        else:
            self._drop("queue_full", _product_count(result))

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="impression-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and write what is still queued."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        self.flush()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # keep the thread alive; the next tick retries
                log.exception("impression flush failed")

    # -- writing ------------------------------------------------------------------------------

    def flush(self) -> int:
        """Write everything queued so far; returns the rows written."""
        with self._flush_lock:
            written = 0
            batch: list[Impression] = []
            while True:
                try:
                    result, at, window = self._queue.popleft()
                except IndexError:
                    break
                batch.extend(impression_rows(_parsed(result), at, window))
                if len(batch) >= self.batch_rows:
                    written += self._write(batch)
                    batch = []
            if batch:
                written += self._write(batch)
            return written

    def _write(self, rows: list[Impression]) -> int:
        try:
            self._insert(rows)
        except IntegrityError:
            # A user erased between the answer and the flush: keep everyone else's rows.
            try:
                kept = self._existing_users(rows)
                self._insert(kept)
            except SQLAlchemyError:
                log.warning("dropping %d impressions: write failed", len(rows), exc_info=True)
                self._drop("write_failed", len(rows))
                return 0
            self._drop("user_deleted", len(rows) - len(kept))
            rows = kept
        except SQLAlchemyError:
            log.warning("dropping %d impressions: write failed", len(rows), exc_info=True)
            self._drop("write_failed", len(rows))
            return 0
        self.written += len(rows)
        self._count(rows)
        return len(rows)

    def _insert(self, rows: Sequence[Impression]) -> None:
        with session_scope(self.db) as session:
            analytics.insert_impressions(session=session, rows=rows)

    def _existing_users(self, rows: list[Impression]) -> list[Impression]:
        with session_scope(self.db) as session:
            known = crud.existing_user_ids(session=session, ids=list({r.user_id for r in rows}))
        return [r for r in rows if r.user_id in known]

    def _count(self, rows: Sequence[Impression]) -> None:
        if self.metrics is None:
            return
        counts: dict[tuple[str, str], int] = {}
        for row in rows:
            label = (row.strategy, row.variant or "none")
            counts[label] = counts.get(label, 0) + 1
        for (strategy, variant), n in counts.items():
            self.metrics.impressions.labels(strategy, variant).inc(n)

    def _drop(self, reason: str, n: int) -> None:
        if n <= 0:
            return
        self.dropped += n
        if self.metrics is not None:
            self.metrics.impressions_dropped.labels(reason).inc(n)


def _product_count(result: RecommendationResult | str) -> int:
    """Products in an answer, without parsing stored JSON: ``"in_stock":`` is a key of each
    recommended product only (a quote inside a name or a text is escaped)."""
    if isinstance(result, str):
        return result.count('"in_stock":')
    return len(result.recommended_products)
