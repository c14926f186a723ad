"""Every component of a running Shopwise, built once from settings.

The database engine, the cache, the event stream and the LLM client are created here; the
retrieval side (embedder, Chroma, collaborative models) by ``build_retrieval``, which this
calls. Services receive most of what they use as constructor arguments; the optional parts
(experiments, segments, location, events, chat, LLM) are attached after construction, by
``build_components`` and the ``wire_*`` steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.chat.llm_parser import LLMParser
from backend.chat.parser import MessageParser, RuleParser
from backend.chat.ranking import ChatRetriever, KeywordRanker, SemanticRanker, TextRanker
from backend.chat.replies import CHAT_REPLY_PROMPTS, ChatReplies, LLMReplies, TemplateReplies
from backend.chat.service import ChatService, DatabaseShoppers
from backend.config import Settings
from backend.db import crud
from backend.db.engine import make_engine, watch_engine
from backend.infra.cache import Cache, MemoryCache, RedisCache
from backend.infra.outbox import OutboxSweeper
from backend.infra.stream import EventStream, InProcessEventStream, RedisEventStream
from backend.jobs.impressions import ImpressionLogger
from backend.jobs.indexing import index_state
from backend.jobs.worker import (
    EventProcessor,
    InProcessWorker,
    StreamWorkerMonitor,
)
from backend.llm.check import VocabularyCache
from backend.llm.client import LLMClient, build_client
from backend.llm.explainer import CheckedWriter, Explainer, LLMExplainer, TemplateExplainer
from backend.llm.explanation_cache import CachedExplainer
from backend.llm.prompt_store import PromptStore
from backend.llm.prompts import PromptError, PromptLibrary, RenderBudget
from backend.llm.stats import ExplanationStats
from backend.observability.metrics import Metrics
from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager
from backend.recommender.strategies import default_strategies
from backend.recommender.strategies.base import CandidateFilter
from backend.recommender.vector_store import COLLECTION
from backend.security.rate_limit import MemoryRateLimiter, RateLimiter
from backend.services.analytics import AnalyticsService
from backend.services.auth import AuthService
from backend.services.experiments import ExperimentService
from backend.services.health import Warmup
from backend.services.location import LocationService
from backend.services.privacy import PrivacyService
from backend.services.recommend import RecommendationService
from backend.services.retrieval import Retrieval, build_retrieval
from backend.services.segments import SegmentService
from backend.services.track import TrackingService


@dataclass
class Components:
    settings: Settings
    db: Engine
    metrics: Metrics
    auth: AuthService
    privacy: PrivacyService
    rate_limiter: RateLimiter
    snapshots: SnapshotManager
    prompts: PromptLibrary
    cache: Cache
    explainer: Explainer
    recommender: RecommendationService
    tracker: TrackingService
    # A/B experiments, the impression log and online metrics.
    experiments: ExperimentService
    impressions: ImpressionLogger
    analytics: AnalyticsService
    # Event stream and worker; filled by ``wire_events``.
    stream: EventStream | None = None
    processor: EventProcessor | None = None
    background_worker: InProcessWorker | None = None
    worker_monitor: InProcessWorker | StreamWorkerMonitor | None = None
    # The shopping assistant; filled by ``wire_chat``.
    chat: ChatService | None = None
    # Embedder, vector store, collaborative models, search and catalog writes.
    retrieval: Retrieval | None = None
    # Shopper segments and the optional location boost.
    segments: SegmentService | None = None
    location: LocationService | None = None

    # LLM explanations; filled by ``wire_llm``.
    llm: LLMClient | None = None
    explanation_stats: ExplanationStats = field(default_factory=ExplanationStats)
    vocabulary: VocabularyCache | None = None  # what the evidence check can recognise
    # What loads at start-up before /health/ready says ready; set by the app's lifespan.
    warmup: Warmup | None = None

    @property
    def prompt_store(self) -> PromptStore | None:
        store = self.prompts.store
        return store if isinstance(store, PromptStore) else None

    def explainer_for(self, prompts: PromptLibrary) -> Explainer:
        """The service's kind of explainer over another prompt library (a variant's pinned
        prompt version): LLM behind the evidence check and the cache, or the template."""
        if self.llm is None:
            return TemplateExplainer(prompts, fallback_reason="no_api_key")
        return CachedExplainer(
            LLMExplainer(
                client=self.llm,
                prompts=prompts,
                vocabulary=self.vocabulary or VocabularyCache(self.snapshots.get),
                stats=self.explanation_stats,
                max_tokens=self.settings.llm_max_tokens,
            ),
            self.cache,
            self.settings.explanation_cache_ttl_seconds,
        )

    @property
    def llm_mode(self) -> str:
        return "template (no OPENAI_API_KEY)" if not self.settings.llm_enabled else "llm"


def snapshot_manager(db: Engine, retrieval: Retrieval | None = None) -> SnapshotManager:
    def current(session: Session) -> str:
        """The catalog's version and, with vectors, the last index run's: a `shopwise
        index` after a lost or corrupt index brings the vectors back without a restart."""
        v = crud.catalog_version(session=session)
        if retrieval is not None:
            built = crud.last_index_run(session=session, collection=COLLECTION)
            v += f"|index:{built.isoformat() if built is not None else '-'}"
        return v

    def version() -> str:
        with Session(db) as session:
            return current(session)

    def load() -> CatalogSnapshot:
        with Session(db) as session:
            v = current(session)
            products = crud.load_catalog(session=session)
            counts = crud.interaction_counts(session=session)
        snapshot = CatalogSnapshot.build(products, counts, version=v)
        if retrieval is not None:
            retrieval.attach_embeddings(snapshot)
        return snapshot

    return SnapshotManager(load=load, version=version)


def build_components(
    settings: Settings, metrics: Metrics | None = None, *, serving: bool = True
) -> Components:
    """``serving``: for the API, every statement is bounded by the request deadline
    (statement_timeout / busy timeout); the worker and the CLI (retrains, indexing a large
    catalog) run their statements as long as they need."""
    metrics = metrics or Metrics()
    db = make_engine(
        settings.database_url,
        timeout_seconds=settings.request_deadline_seconds if serving else None,
    )
    watch_engine(db, metrics.dependencies)
    retrieval = build_retrieval(settings, db, monitor=metrics.dependencies)
    snapshots = snapshot_manager(db, retrieval)
    retrieval.bind(snapshots)
    budget = RenderBudget(
        seconds=settings.template_render_seconds,
        loop_iterations=settings.template_max_loop_iterations,
        output_chars=settings.template_max_output_chars,
    )
    prompts = PromptLibrary(settings.prompts_dir, PromptStore(db), budget=budget)
    cache: Cache = (
        RedisCache.from_url(
            settings.redis_url,
            namespace=settings.redis_key_prefix,
            retry_after_seconds=settings.redis_retry_seconds,
        )
        if settings.redis_url
        else MemoryCache()
    )
    explainer: Explainer = TemplateExplainer(prompts)
    strategies = default_strategies(
        half_life_days=settings.interaction_half_life_days,
        models=retrieval.models,
        hybrid_config=retrieval.hybrid_config,
    )
    impressions = ImpressionLogger(
        db=db,
        metrics=metrics,
        max_pending=settings.impression_queue_size,
        flush_seconds=settings.impression_flush_seconds,
    )
    components = Components(
        settings=settings,
        db=db,
        metrics=metrics,
        auth=AuthService(db=db, settings=settings),
        privacy=PrivacyService(db=db, cache=cache),
        rate_limiter=(
            cache.rate_limiter(MemoryRateLimiter())
            if isinstance(cache, RedisCache)
            else MemoryRateLimiter()
        ),
        snapshots=snapshots,
        prompts=prompts,
        cache=cache,
        explainer=explainer,
        recommender=RecommendationService(
            db=db,
            snapshots=snapshots,
            strategies=strategies,
            default_strategy=settings.default_strategy,
            explainer=explainer,
            prompts=prompts,
            cache=cache,
            cache_ttl_seconds=settings.cache_ttl_seconds,
            half_life_days=settings.interaction_half_life_days,
            precompute_max_age_seconds=settings.precompute_max_age_seconds,
            metrics=metrics,
        ),
        tracker=TrackingService(
            db=db,
            snapshots=snapshots,
            cache=cache,
            metrics=metrics,
            max_event_age=timedelta(days=settings.event_max_age_days),
        ),
        experiments=ExperimentService(
            db=db,
            strategies=strategies,
            prompts=prompts,
            prompt_store=prompts.store if isinstance(prompts.store, PromptStore) else None,
        ),
        impressions=impressions,
        analytics=AnalyticsService(db=db),
        explanation_stats=ExplanationStats(metrics, surface="recommendation"),
    )
    components.experiments.explainer_for = components.explainer_for
    components.recommender.experiments = components.experiments
    components.recommender.impressions = impressions
    components.recommender.attribution_window = timedelta(
        hours=settings.analytics_attribution_hours
    )
    components.retrieval = retrieval
    components.segments = components.recommender.segments = SegmentService(
        db=db,
        snapshots=snapshots,
        k=settings.segment_count,
        cold_start_interactions=settings.segment_cold_start_interactions,
    )
    components.location = components.recommender.location = LocationService(
        db=db,
        cache=cache,
        enabled=settings.location_boost,
        radius_km=settings.location_radius_km,
        weight=settings.location_boost_weight,
    )
    return wire_chat(wire_events(wire_llm(components)))


def warmup_steps(components: Components) -> dict[str, Callable[[], object]]:
    """What the first requests would otherwise load: the engine snapshot (every
    recommendation), the collaborative models (load or first training), and, once the
    catalog is indexed, the embedding model and the vector index (one real search)."""
    steps: dict[str, Callable[[], object]] = {
        "engine snapshot": components.snapshots.get,
        "prompt templates": lambda: compile_templates(components.prompts),
    }
    retrieval = components.retrieval
    if retrieval is None:
        return steps
    if retrieval.training is not None:
        steps["collaborative models"] = retrieval.training.ensure_current
    search = retrieval.search
    if search is not None:

        def warm_search() -> None:
            if index_state(components.db) is None:  # nothing indexed: no query is encoded
                return
            search.search("warm start", top_n=1, filters=CandidateFilter())

        steps["embedding model and vector index"] = warm_search
    return steps


def compile_templates(prompts: PromptLibrary) -> None:
    """Jinja compiles a template on its first render (about 0.1 s each, measured as most of
    the first recommendation's time). Rendering without a context compiles and caches the
    template and then fails on the first missing variable, which is all this needs."""
    for name in prompts.names():
        try:
            prompts.render(name)
        except PromptError:
            pass


def wire_events(components: Components) -> Components:
    """Redis Streams read by ``shopwise worker`` processes when REDIS_URL is set; otherwise
    an in-process queue and a worker thread the app starts, so one machine needs nothing more."""
    settings = components.settings
    processor = EventProcessor(
        db=components.db,
        recommender=components.recommender,
        top_n=settings.default_top_n,
        retrain_threshold=settings.retrain_threshold,
        retrain=components.retrieval.retrain if components.retrieval else None,
        segments=components.segments.recompute if components.segments else None,
        segment_threshold=settings.segment_recompute_threshold,
        metrics=components.metrics,
    )
    stream: EventStream
    if settings.redis_url:
        redis_stream = RedisEventStream.from_url(
            settings.redis_url,
            stream=settings.redis_key_prefix + settings.event_stream,
            group=settings.event_group,
            timeout_seconds=0.5,
            retry_after_seconds=settings.redis_retry_seconds,
        )
        components.worker_monitor = StreamWorkerMonitor(redis_stream, processor)
        stream = redis_stream
    else:
        memory_stream = InProcessEventStream()
        components.background_worker = InProcessWorker(
            stream=memory_stream,
            processor=processor,
            sweeper=OutboxSweeper(
                db=components.db, stream=memory_stream, skip=memory_stream.in_flight
            ),
        )
        components.worker_monitor = components.background_worker
        stream = memory_stream
    components.stream = stream
    components.processor = processor
    lag = components.metrics.event_lag
    components.metrics.on_scrape(lambda: lag.set(stream.lag_seconds()))
    components.tracker.stream = stream
    return components


def wire_chat(components: Components) -> Components:
    """The chat assistant: rule parser offline, LLM parser (rules as fallback) with a key;
    replies from the template offline, from the LLM through the evidence check with a key.
    Text relevance: the product embeddings of the retrieval module blended with keyword
    overlap, or keyword overlap alone while the catalog has no vectors."""
    settings = components.settings
    parser: MessageParser = RuleParser()
    replies: ChatReplies = TemplateReplies(components.prompts, fallback_reason="no_api_key")
    if components.llm is not None:  # the shared client: one circuit breaker for the LLM
        parser = LLMParser(components.llm, components.prompts, fallback=RuleParser())
        writer = CheckedWriter(  # its own counters: GET /chat/stats
            client=components.llm,
            prompts=components.prompts,
            vocabulary=components.vocabulary or VocabularyCache(components.snapshots.get),
            max_tokens=settings.llm_max_tokens,
            templates=CHAT_REPLY_PROMPTS,
            stats=ExplanationStats(components.metrics, surface="chat"),
        )
        replies = LLMReplies(writer)
    ranker: TextRanker = KeywordRanker()
    if components.retrieval is not None:  # semantic when the catalog has been indexed
        ranker = SemanticRanker(components.retrieval.embedder, keywords=ranker)
    components.chat = ChatService(
        parser=parser,
        replies=replies,
        snapshots=components.snapshots,
        cache=components.cache,
        prompts=components.prompts,
        retriever=ChatRetriever(ranker),
        shoppers=DatabaseShoppers(components.db),
        state_ttl_seconds=settings.chat_state_ttl_seconds,
        top_n=settings.chat_top_n,
        half_life_days=settings.interaction_half_life_days,
    )
    return components


def wire_llm(components: Components) -> Components:
    """LLM explanations behind the evidence check and a cache when OPENAI_API_KEY is set;
    otherwise the template explainer, which says why (``fallback_reason="no_api_key"``)."""
    settings = components.settings
    components.vocabulary = VocabularyCache(components.snapshots.get)
    if settings.openai_api_key is not None:
        components.llm = build_client(
            api_key=settings.openai_api_key.get_secret_value(),
            model=settings.llm_model,
            base_url=str(settings.openai_base_url) if settings.openai_base_url else None,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
            deadline_seconds=settings.llm_deadline_seconds,
            max_attempts=settings.llm_max_attempts,
            circuit_failures=settings.llm_circuit_failures,
            circuit_cooldown_seconds=settings.llm_circuit_cooldown_seconds,
            monitor=components.metrics.dependencies,
            on_call=lambda outcome: components.metrics.llm_calls.labels(outcome).inc(),
        )
    explainer = components.explainer_for(components.prompts)
    components.explainer = explainer
    components.recommender.explainer = explainer
    return components
