"""Explanation jobs: the LLM writes a shopper's explanation in the background.

``GET /recommend`` answers with the template at once and submits a job (``ExplanationJobs``);
the event worker submits one for shoppers with new events, so their text is ready before
they ask. ``ExplanationJobRunner`` ranks again (a job whose list has moved on is dropped),
asks the model through the evidence check, and leaves the result in the explanation cache:
the checked text, or a marker naming why the template stays. It then drops the user's cached
answers, so their next request carries the result. ``ExplanationWorkers`` runs it on
``LLM_CONCURRENCY`` threads: of the API on the embedded default, of ``shopwise worker`` on
Redis; each model call takes one of as many ``ModelSlots``, which the explanation stream
shares.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backend.errors import InvalidInputError, NotFoundError
from backend.infra.cache import Cache, recommendations_key
from backend.infra.explanation_queue import (
    ExplanationJob,
    ExplanationQueue,
    QueueStatus,
    Submitted,
)
from backend.infra.stream import StreamStatus
from backend.llm.explanation_cache import NO_ANSWER, CachedExplainer
from backend.llm.slots import LocalModelSlots, ModelSlots, held
from backend.llm.writer import Explanation
from backend.observability.metrics import Metrics
from backend.recommender.strategies import CandidateFilter
from backend.services.recommend import RecommendationService

log = logging.getLogger(__name__)


class ExplanationJobStats:
    """Counters for /health, /explanations/stats and (when given) Prometheus."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._lock = threading.Lock()
        self._metrics = metrics
        self.submitted: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()  # "llm", or the template's reason
        self.dropped: Counter[str] = Counter()
        self.served: Counter[str] = Counter()  # explanation source of answers sent
        self.tokens = 0
        self.model_seconds = 0.0

    def _count(self, stage: str, result: str) -> None:
        if self._metrics is not None:
            self._metrics.explanation_jobs.labels(stage, result).inc()

    def record_submitted(self, result: str) -> None:
        with self._lock:
            self.submitted[result] += 1
        self._count("submitted", result)

    def record_finished(self, result: str) -> None:
        with self._lock:
            self.finished[result] += 1
        self._count("finished", result)

    def record_dropped(self, reason: str) -> None:
        with self._lock:
            self.dropped[reason] += 1
        self._count("dropped", reason)

    def record_generation(self, tokens: int, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self.tokens += tokens
            self.model_seconds += seconds
        if self._metrics is not None:
            self._metrics.llm_tokens.inc(tokens)
            self._metrics.llm_generation_seconds.inc(seconds)

    def record_served(self, source: str, status: str) -> None:
        with self._lock:
            self.served[source] += 1
        if self._metrics is not None:
            self._metrics.explanations_served.labels(source, status).inc()

    @property
    def tokens_per_second(self) -> float | None:
        with self._lock:
            if not self.tokens or self.model_seconds <= 0:
                return None
            return self.tokens / self.model_seconds

    @property
    def llm_share(self) -> float | None:
        """The share of answers sent (since start) whose explanation the LLM wrote."""
        with self._lock:
            total = sum(self.served.values())
            return self.served["llm"] / total if total else None

    def snapshot(self) -> dict[str, Any]:
        speed, share = self.tokens_per_second, self.llm_share
        with self._lock:
            return {
                "submitted": dict(self.submitted),
                "finished": dict(self.finished),
                "dropped": dict(self.dropped),
                "served_by_source": dict(self.served),
                "llm_share": None if share is None else round(share, 4),
                "tokens_per_second": None if speed is None else round(speed, 2),
            }


class ExplanationJobs:
    """What the request path sees: submit a job, and what the queue looks like."""

    def __init__(
        self,
        queue: ExplanationQueue,
        stats: ExplanationJobStats,
        slots: ModelSlots | None = None,
    ) -> None:
        self.queue = queue
        self.stats = stats
        self.slots = slots  # shown in /health: where the model server's count is kept

    def submit(self, job: ExplanationJob) -> Submitted:
        try:
            result = self.queue.submit(job)
        except Exception as exc:  # Redis away: the template stays, the next visit retries
            log.warning("could not queue an explanation job (%s)", type(exc).__name__)
            result = "full"
        self.stats.record_submitted(result)
        return result

    def status(self) -> StreamStatus:
        """One line for /health: the queue, the jobs' fate, the model's speed."""
        try:
            queue = self.queue.status()
        except Exception as exc:
            return StreamStatus("explanations", "degraded", f"queue unreachable: {exc!r}")
        stats = self.stats.snapshot()
        detail = (
            f"{queue.backend} queue: {queue.depth} job(s), oldest {queue.oldest_seconds:.1f} s; "
            f"finished {stats['finished'] or '{}'}, dropped {stats['dropped'] or '{}'}"
        )
        if stats["tokens_per_second"] is not None:
            detail += f"; model {stats['tokens_per_second']:.1f} tokens/s"
        if stats["llm_share"] is not None:
            detail += f"; {stats['llm_share']:.0%} of answers served with LLM text"
        status = "ok"
        if self.slots is not None:
            where = self.slots.where()
            detail += f"; {self.slots.concurrency} model slot(s) counted in {where}"
            # Counted per process while Redis is away: the server may get more calls at once.
            status = "ok" if where in ("redis", "process") else "degraded"
        return StreamStatus("explanations", status, detail)

    def queue_status(self) -> QueueStatus:
        return self.queue.status()


class ExplanationJobRunner:
    """One job: rank again, ask the model (retrying when it gave no answer), cache the result."""

    def __init__(
        self,
        *,
        recommender: RecommendationService,
        cache: Cache,
        stats: ExplanationJobStats,
        max_age_seconds: float = 600.0,
        attempts: int = 3,
        backoff_seconds: float = 2.0,
        slots: ModelSlots | None = None,
        stopping: threading.Event | None = None,
        wait: Callable[[float], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.recommender = recommender
        self.cache = cache
        self.stats = stats
        self.max_age_seconds = max_age_seconds
        self.attempts = max(attempts, 1)
        self.backoff_seconds = backoff_seconds
        # The model server's capacity, shared with the streamed explanations of this process.
        self.slots = slots or LocalModelSlots(1)
        # Set while the workers stop: a backoff between attempts ends at once.
        self.stopping = stopping or threading.Event()
        self.wait = wait or self.stopping.wait  # returns early (truthy) when stopping
        self.clock = clock

    def run(self, job: ExplanationJob) -> str:
        """``llm``, ``template:<reason>`` or ``dropped:<reason>``."""
        if job.age(self.clock()) > self.max_age_seconds:
            return self._dropped(job, "expired")  # the shopper is long gone
        filters = CandidateFilter(**dict(job.filters))
        try:
            request, explainer = self.recommender.explanation_job(
                job.user_id, top_n=job.top_n, strategy=job.strategy or None, filters=filters
            )
        except NotFoundError:
            return self._dropped(job, "user_gone", refresh=False)
        except InvalidInputError:  # the strategy is gone since
            return self._dropped(job, "stale")
        ids = tuple(item.product.id for item in request.items)
        if not isinstance(explainer, CachedExplainer):
            return self._dropped(job, "no_llm", refresh=False)
        if ids != job.item_ids or explainer.cache_version() != job.version:
            # An event, a catalog change or a prompt edit since: that list is not shown any
            # more. The next request ranks afresh and queues a job for the list it shows.
            return self._dropped(job, "stale")
        if explainer.lookup(request) is not None:
            return self._dropped(job, "already_done")
        for attempt in range(1, self.attempts + 1):
            with held(self.slots):  # not during the backoff: a stream may use the model then
                outcome = explainer.prepare(request)
            self.stats.record_generation(outcome.tokens, outcome.model_seconds)
            explanation = outcome.explanation
            reason = explanation.fallback_reason or "unknown"
            if explanation.source == "llm":
                self.stats.record_finished("llm")
                self._settle(job, explanation)
                return "llm"
            if reason not in NO_ANSWER:  # the model answered, the check said no
                self.stats.record_finished(reason)
                self._settle(job, explanation)
                return f"template:{reason}"
            if attempt < self.attempts and self.wait(self.backoff_seconds * attempt):
                break  # stopping: leave it to the marker below
        # The model gave no answer: the template stays for a while, then a visit tries again.
        explainer.remember_failure(request, reason)
        self.stats.record_dropped(reason)
        self._settle(job, explainer.template(request, reason))
        return f"dropped:{reason}"

    def _settle(self, job: ExplanationJob, explanation: Explanation) -> None:
        """The cached answer that said pending now says what happened; without one, the
        user's cached answers go (the next request builds them and finds the result)."""
        if not self.recommender.settle(job, explanation):
            self._refresh(job.user_id)

    def _dropped(self, job: ExplanationJob, reason: str, *, refresh: bool = True) -> str:
        self.stats.record_dropped(reason)
        if refresh:
            self._refresh(job.user_id)
        return f"dropped:{reason}"

    def _refresh(self, user_id: uuid.UUID) -> None:
        """The user's cached answers say "pending": the next request builds them again and
        finds the result (or queues the list again after an expiry)."""
        self.cache.delete(recommendations_key(user_id))


class ExplanationWorkers:
    """Threads taking jobs from the queue: by default as many as the model server answers at
    once (the runner's slots: one for a local llama.cpp server)."""

    def __init__(
        self,
        *,
        queue: ExplanationQueue,
        runner: ExplanationJobRunner,
        concurrency: int | None = None,
        consumer: str = "api",
    ) -> None:
        self.queue = queue
        self.runner = runner
        self.concurrency = max(concurrency or runner.slots.concurrency, 1)
        self.consumer = consumer
        self._stop = runner.stopping  # stopping the threads also ends the runner's backoff
        self._threads: list[threading.Thread] = []
        # The streamed explanations of this process take their slots here too.
        self.slots = runner.slots

    def start(self, consumer: str | None = None) -> None:
        """Start the threads; ``consumer`` names them on a Redis queue (the worker process)."""
        if self.running:
            return
        self.consumer = consumer or self.consumer
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"explainer-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Jobs in flight finish in the background; queued ones stay for the next start
        (Redis) or are lost with the process (in memory: the template stays)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout)

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _run(self, index: int) -> None:
        consumer = f"{self.consumer}-{index}"
        backoff = 0.5
        while not self._stop.is_set():
            try:
                jobs = self.queue.take(consumer, timeout=0.5)
            except Exception:
                log.exception("explanation queue unreachable; retrying in %.1f s", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 15.0)
                continue
            backoff = 0.5
            for job in jobs:
                self._one(job)

    def _one(self, job: ExplanationJob) -> None:
        try:
            result = self.runner.run(job)
            log.debug("explanation job for %s: %s", job.user_id, result)
        except Exception:  # a database hiccup: the template stays, a later visit retries
            log.exception("explanation job failed")
            self.runner.stats.record_dropped("error")
        finally:
            try:
                self.queue.done(job)
            except Exception:  # Redis: the dedup key expires; another worker reclaims
                log.warning("could not mark an explanation job done", exc_info=True)


@dataclass(frozen=True)
class ExplanationBackground:
    """The wired parts: ``jobs`` for the request path, ``workers`` to run them (started by
    the API when ``in_process``, else by ``shopwise worker``), the counters. Without an LLM
    only the counters exist: every answer is the template and nothing is queued."""

    stats: ExplanationJobStats
    jobs: ExplanationJobs | None = None
    workers: ExplanationWorkers | None = None
    in_process: bool = True

    @property
    def slots(self) -> ModelSlots | None:
        """The model calls this process may make at once (None: no LLM)."""
        return self.workers.slots if self.workers is not None else None

    def snapshot(self) -> dict[str, Any]:
        """The counters and, with a queue, its depth, oldest job and refusals."""
        snapshot = self.stats.snapshot()
        if self.jobs is not None:
            queue = self.jobs.queue_status()
            snapshot["queue"] = {
                "backend": queue.backend,
                "depth": queue.depth,
                "oldest_seconds": round(queue.oldest_seconds, 3),
                "refused": queue.refused,
            }
        return snapshot
