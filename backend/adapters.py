"""The external systems a running Shopwise talks to, opened from the settings.

Each adapter lives behind its one module (the database engine, the cache and event stream
on Redis or in process, the embedding model, the vector store, the LLM client, the
explanation queue); ``wiring.build_components`` builds every service from this bundle.
Tests replace one field (``dataclasses.replace(default_adapters(settings), llm=FakeLLM())``).
Nothing here connects or loads a model: each adapter does so on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from backend.config import Settings
from backend.db.engine import make_engine, watch_engine
from backend.infra.cache import Cache, MemoryCache, RedisCache
from backend.infra.explanation_queue import (
    ExplanationQueue,
    InProcessExplanationQueue,
    RedisExplanationQueue,
)
from backend.infra.model_slots import RedisModelSlots
from backend.infra.stream import EventStream, InProcessEventStream, RedisEventStream
from backend.llm.client import LLMClient
from backend.llm.openai_client import build_client
from backend.llm.slots import LocalModelSlots, ModelSlots
from backend.observability.metrics import Metrics
from backend.recommender.embedder import Embedder, SentenceTransformerEmbedder
from backend.recommender.vector_store import VectorStore
from backend.security.rate_limit import MemoryRateLimiter, RateLimiter


@dataclass(frozen=True)
class Adapters:
    """The external systems, each behind its one module. ``metrics`` is where they report
    their calls and failures (/health and /metrics read it), so it travels with them."""

    metrics: Metrics
    db: Engine
    cache: Cache
    rate_limiter: RateLimiter  # on the cache's Redis when there is one: shared by processes
    events: EventStream
    embedder: Embedder
    vectors: VectorStore
    llm: LLMClient | None  # None: template explanations and rule-parsed chat only
    # Explanation jobs for the LLM (used only when there is one): in process, or on Redis
    # Streams for `shopwise worker` processes.
    explanations: ExplanationQueue
    # How many calls the model server takes at once, counted in process or on Redis (shared
    # by the API's processes and the workers).
    slots: ModelSlots


def default_adapters(
    settings: Settings, metrics: Metrics | None = None, *, serving: bool = True
) -> Adapters:
    """The adapters the settings name: Redis or in-process, Chroma server or folder.

    ``serving``: for the API, every statement is bounded by the request deadline
    (statement_timeout / busy timeout) and a Redis call by half a second; the worker and the
    CLI (retrains, indexing a large catalog, blocking stream reads) wait as long as they need.
    """
    metrics = metrics or Metrics()
    db = make_engine(
        settings.database_url,
        timeout_seconds=settings.request_deadline_seconds if serving else None,
    )
    watch_engine(db, metrics.dependencies)
    cache: Cache = MemoryCache()
    rate_limiter: RateLimiter = MemoryRateLimiter()
    events: EventStream = InProcessEventStream()
    explanations: ExplanationQueue = InProcessExplanationQueue(
        max_jobs=settings.explanation_queue_size
    )
    slots: ModelSlots = LocalModelSlots(settings.explanation_concurrency)
    if settings.redis_url:
        redis_cache = RedisCache.from_url(
            settings.redis_url,
            namespace=settings.redis_key_prefix,
            retry_after_seconds=settings.redis_retry_seconds,
        )
        cache, rate_limiter = redis_cache, redis_cache.rate_limiter(MemoryRateLimiter())
        events = RedisEventStream.from_url(
            settings.redis_url,
            stream=settings.redis_key_prefix + settings.event_stream,
            group=settings.event_group,
            timeout_seconds=0.5 if serving else 10.0,  # the worker's: longer than its read
            retry_after_seconds=settings.redis_retry_seconds,
        )
        explanations = RedisExplanationQueue.from_url(
            settings.redis_url,
            prefix=settings.redis_key_prefix,
            max_jobs=settings.explanation_queue_size,
            key_ttl_seconds=int(settings.explanation_job_max_age_seconds) + 60,
        )
        slots = RedisModelSlots.from_url(
            settings.redis_url,
            key=settings.redis_key_prefix + "llm:slots",
            concurrency=settings.explanation_concurrency,
            # Longer than one model call with its retries: a lease outliving that is a dead
            # holder's.
            lease_seconds=4 * settings.llm_deadline_seconds + 30,
        )
    llm: LLMClient | None = None
    if settings.openai_api_key is not None:
        llm = build_client(
            api_key=settings.openai_api_key.get_secret_value(),
            model=settings.llm_model,
            base_url=str(settings.openai_base_url) if settings.openai_base_url else None,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
            deadline_seconds=settings.llm_deadline_seconds,
            max_attempts=settings.llm_max_attempts,
            circuit_failures=settings.llm_circuit_failures,
            circuit_cooldown_seconds=settings.llm_circuit_cooldown_seconds,
            monitor=metrics.dependencies,
            on_call=lambda outcome: metrics.llm_calls.labels(outcome).inc(),
        )
    return Adapters(
        metrics=metrics,
        db=db,
        cache=cache,
        rate_limiter=rate_limiter,
        events=events,
        embedder=SentenceTransformerEmbedder(settings.embedding_model_path),
        vectors=VectorStore.open(
            path=settings.chroma_path,
            url=str(settings.chroma_url) if settings.chroma_url else None,
            monitor=metrics.dependencies,
        ),
        llm=llm,
        explanations=explanations,
        slots=slots,
    )
