"""The composition root: every component of a running Shopwise, built once, in one pass.

``adapters.default_adapters`` opens the external systems named by the settings;
``build_components`` builds every service from them in dependency order, each receiving what
it uses in its constructor. Tests replace one adapter and build the rest as production does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine

from backend.adapters import Adapters, default_adapters
from backend.chat.deferred import BudgetedParser, ChatBudget, DeferredReplies
from backend.chat.llm_parser import LLMParser
from backend.chat.parser import MessageParser, RuleParser
from backend.chat.ranking import ChatRetriever, KeywordRanker, SemanticRanker
from backend.chat.replies import CHAT_REPLY_PROMPTS, ChatReplies, LLMReplies, TemplateReplies
from backend.chat.service import ChatService, DatabaseShoppers
from backend.config import Settings
from backend.infra.cache import Cache
from backend.infra.explanation_queue import PREPARE, RedisExplanationQueue
from backend.infra.outbox import OutboxSweeper
from backend.infra.stream import EventStream, InProcessEventStream, RedisEventStream
from backend.jobs.events import EventProcessor
from backend.jobs.explanations import (
    ExplanationBackground,
    ExplanationJobRunner,
    ExplanationJobs,
    ExplanationJobStats,
    ExplanationWorkers,
)
from backend.jobs.impressions import ImpressionLogger
from backend.jobs.indexing import Indexer, index_state
from backend.jobs.training import TrainingService
from backend.jobs.worker import InProcessWorker, StreamWorkerMonitor
from backend.jobs.worker_process import AnsweredSince, WorkerProcess
from backend.llm.check import VocabularyCache
from backend.llm.client import LLMClient
from backend.llm.explainer import Explainer, LLMExplainer, TemplateExplainer
from backend.llm.explanation_cache import CachedExplainer
from backend.llm.prompt_store import PromptStore
from backend.llm.prompts import PromptError, PromptLibrary, RenderBudget
from backend.llm.stats import ExplanationStats
from backend.llm.writer import CheckedWriter
from backend.observability.load import RequestLoad
from backend.observability.metrics import Metrics
from backend.recommender.cf import CFParams
from backend.recommender.segments import load_clustering
from backend.recommender.snapshot import SnapshotManager
from backend.recommender.strategies import default_strategies
from backend.recommender.strategies.base import CandidateFilter
from backend.recommender.strategies.blend import BlendConfig
from backend.security.rate_limit import RateLimiter
from backend.services.analytics import AnalyticsService
from backend.services.auth import AuthService
from backend.services.catalog import CatalogService
from backend.services.experiments import ExperimentService
from backend.services.explanations import llm_health
from backend.services.health import HealthCheck
from backend.services.location import LocationService
from backend.services.privacy import PrivacyService
from backend.services.prompt_admin import PromptAdmin
from backend.services.recommend import RecommendationService
from backend.services.search import SearchService
from backend.services.segments import SegmentService
from backend.services.snapshots import snapshot_manager
from backend.services.track import TrackingService
from backend.services.vectors import VectorHealth, VectorIndex


@dataclass(frozen=True)
class Components:
    """What the app factory, the routes (through ``api/deps.py``) and the CLI use."""

    settings: Settings
    metrics: Metrics
    load: RequestLoad  # requests in flight, counted by the admission middleware
    db: Engine
    cache: Cache
    rate_limiter: RateLimiter
    stream: EventStream
    llm: LLMClient | None
    snapshots: SnapshotManager
    prompts: PromptLibrary
    prompt_store: PromptStore
    vectors: VectorIndex
    indexer: Indexer
    training: TrainingService
    search: SearchService
    catalog: CatalogService
    explanation_stats: ExplanationStats
    explainer: Explainer
    experiments: ExperimentService
    impressions: ImpressionLogger
    segments: SegmentService
    location: LocationService
    recommender: RecommendationService
    processor: EventProcessor
    # Explanations written off the request path (the counters only, without an LLM).
    explanations: ExplanationBackground
    tracker: TrackingService
    # Without Redis the app runs the event worker in a thread of its own; with Redis the
    # `shopwise worker` processes do, and the app only watches them.
    background_worker: InProcessWorker | WorkerProcess | None
    worker_monitor: InProcessWorker | WorkerProcess | StreamWorkerMonitor
    chat: ChatService
    auth: AuthService
    privacy: PrivacyService
    analytics: AnalyticsService
    prompt_admin: PromptAdmin
    health: HealthCheck

    @property
    def llm_mode(self) -> str:
        return explanation_mode(self.llm)


def explanation_mode(llm: LLMClient | None) -> str:
    """What writes the explanations, as the service info, /health and the logs say it."""
    return "template (no OPENAI_API_KEY)" if llm is None else "llm"


def build_components(
    settings: Settings,
    adapters: Adapters | None = None,
    *,
    serving: bool = True,
    metrics: Metrics | None = None,
    load: RequestLoad | None = None,
    worker_child: AnsweredSince | None = None,
) -> Components:
    """Every service, built once from ``adapters`` (``default_adapters(settings, metrics,
    serving=serving)`` when not given; ``serving`` and ``metrics`` only shape those).
    ``load``: the app's count of requests in flight (nothing counts a fresh one: a worker
    process or a CLI command is always "quiet"). ``worker_child``: these are the components
    of the API's event worker child (``EVENT_WORKER_PROCESS``), whose processor learns from
    it whether a request has answered a shopper (the response cache is the API's) and queues
    no explanations (their queue is the API's too)."""
    a = adapters or default_adapters(settings, metrics, serving=serving)
    load = load or RequestLoad()
    db, cache, llm, metrics = a.db, a.cache, a.llm, a.metrics

    vectors = VectorIndex(db=db, store=a.vectors)
    snapshots = snapshot_manager(db, vectors)
    indexer = Indexer(
        embedder=a.embedder, store=a.vectors, db=db, batch_size=settings.embedding_batch_size * 4
    )
    training = TrainingService(
        db=db,
        snapshots=snapshots,
        params=CFParams(
            ease_lambda=settings.ease_lambda, ease_content_alpha=settings.ease_content_alpha
        ),
        models_dir=settings.data_dir / "models",
        auto_train=settings.cf_auto_train,
        next_item=settings.hybrid_next_item_weight > 0,
        # With Redis, `shopwise worker` processes read the events, and one of them trains the
        # full version (the next-item model: seconds of CPU per shop); every API process
        # doing it too cost the requests a core. Without Redis the API is the only process.
        background_training=not (serving and isinstance(a.events, RedisEventStream)),
    )
    budget = RenderBudget(
        seconds=settings.template_render_seconds,
        loop_iterations=settings.template_max_loop_iterations,
        output_chars=settings.template_max_output_chars,
    )
    prompt_store = PromptStore(db)
    prompts = PromptLibrary(settings.prompts_dir, prompt_store, budget=budget)
    vocabulary = VocabularyCache(snapshots.get)  # what the evidence check can recognise
    stats = ExplanationStats(metrics, surface="recommendation")
    explainer_for = _explainer_factory(settings, llm, cache, vocabulary, stats)
    explainer = explainer_for(prompts)
    strategies = default_strategies(
        half_life_days=settings.interaction_half_life_days,
        models=training.store,
        hybrid_config=_blend_config(settings),
    )
    experiments = ExperimentService(
        db=db,
        strategies=strategies,
        prompts=prompts,
        prompt_store=prompt_store,
        explainer_for=explainer_for,
    )
    impressions = ImpressionLogger(
        db=db,
        metrics=metrics,
        max_pending=settings.impression_queue_size,
        flush_seconds=settings.impression_flush_seconds,
    )
    segments = SegmentService(
        db=db,
        snapshots=snapshots,
        k=settings.segment_count,
        cold_start_interactions=settings.segment_cold_start_interactions,
    )
    location = LocationService(
        db=db,
        cache=cache,
        enabled=settings.location_boost,
        radius_km=settings.location_radius_km,
        weight=settings.location_boost_weight,
    )
    job_stats = ExplanationJobStats(metrics)
    jobs = ExplanationJobs(a.explanations, job_stats, a.slots) if llm is not None else None
    recommender = RecommendationService(
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
        experiments=experiments,
        impressions=impressions,
        attribution_window=timedelta(hours=settings.analytics_attribution_hours),
        segments=segments,
        location=location,
        jobs=jobs,
        on_served=job_stats.record_served,
    )
    explanations = _explanations(settings, a, recommender, job_stats, jobs)
    top_n = settings.default_top_n
    processor = EventProcessor(
        db=db,
        recommender=recommender,
        top_n=settings.default_top_n,
        retrain_threshold=settings.retrain_threshold,
        retrain=lambda: training.train_now(reason="threshold"),
        retrain_in_background=True,
        segments=segments.recompute,
        segment_threshold=settings.segment_recompute_threshold,
        metrics=metrics,
        precompute_debounce_seconds=settings.precompute_debounce_seconds,
        # In the API's process the precompute waits for a moment without requests.
        quiet=load.quiet,
        precompute_max_wait_seconds=settings.precompute_max_wait_seconds,
        # Shoppers with new events get their new list's explanation written before they ask.
        prepare=(
            (lambda user: recommender.prepare_explanation(user, top_n=top_n, priority=PREPARE))
            if jobs is not None and worker_child is None
            else None
        ),
        answered=worker_child,
    )
    stream, background_worker, monitor = _event_worker(
        settings, db, a.events, processor, serving=serving
    )
    metrics.on_scrape(lambda: metrics.event_lag.set(stream.lag_seconds()))
    search = SearchService(snapshots=snapshots, embedder=a.embedder, store=a.vectors)
    return Components(
        settings=settings,
        metrics=metrics,
        load=load,
        db=db,
        cache=cache,
        rate_limiter=a.rate_limiter,
        stream=stream,
        llm=llm,
        snapshots=snapshots,
        prompts=prompts,
        prompt_store=prompt_store,
        vectors=vectors,
        indexer=indexer,
        training=training,
        search=search,
        catalog=CatalogService(db=db, snapshots=snapshots, indexer=indexer),
        explanation_stats=stats,
        explainer=explainer,
        experiments=experiments,
        impressions=impressions,
        segments=segments,
        location=location,
        recommender=recommender,
        processor=processor,
        explanations=explanations,
        tracker=TrackingService(
            db=db,
            snapshots=snapshots,
            cache=cache,
            stream=stream,
            metrics=metrics,
            max_event_age=timedelta(days=settings.event_max_age_days),
        ),
        background_worker=background_worker,
        worker_monitor=monitor,
        chat=_chat(settings, a, snapshots, prompts, vocabulary),
        auth=AuthService(db=db, settings=settings),
        privacy=PrivacyService(db=db, cache=cache),
        analytics=AnalyticsService(db=db),
        prompt_admin=PromptAdmin(
            db=db,
            prompts=prompts,
            store=prompt_store,
            recommender=recommender,
            llm=llm,
            vocabulary=vocabulary,
            max_tokens=settings.llm_max_tokens,
            grammar=settings.llm_grammar,
            top_n=settings.default_top_n,
        ),
        health=HealthCheck(
            db=db,
            snapshots=snapshots,
            cache=cache,
            llm=lambda: llm_health(llm, stats, explanation_mode(llm)),
            events=stream,
            worker=monitor,
            vectors=VectorHealth(vectors, snapshots, training.store),
            segments=segments,
            metrics=metrics,
            explanations=jobs,
        ),
    )


def _blend_config(settings: Settings) -> BlendConfig:
    return BlendConfig(
        weights={
            "content": settings.hybrid_content_weight,
            "cf": settings.hybrid_cf_weight,
            "rules": settings.hybrid_rules_weight,
            "popularity": settings.hybrid_popularity_weight,
            "sequence": settings.hybrid_sequence_weight,
            "next_item": settings.hybrid_next_item_weight,
        },
        recency_decay=settings.hybrid_recency_decay,
        half_life_days=settings.interaction_half_life_days,
        mmr_lambda=settings.hybrid_mmr_lambda,
        max_per_category=settings.hybrid_max_per_category,
    )


def _explainer_factory(
    settings: Settings,
    llm: LLMClient | None,
    cache: Cache,
    vocabulary: VocabularyCache,
    stats: ExplanationStats,
) -> Callable[[PromptLibrary], Explainer]:
    """The service's kind of explainer over a prompt library (the live one, or a variant's
    pinned prompt version): the LLM behind the evidence check and the cache, or, without an
    LLM, the template, which says why (``fallback_reason="no_api_key"``)."""

    def explainer_for(prompts: PromptLibrary) -> Explainer:
        if llm is None:
            return TemplateExplainer(prompts, fallback_reason="no_api_key")
        return CachedExplainer(
            LLMExplainer(
                client=llm,
                prompts=prompts,
                vocabulary=vocabulary,
                stats=stats,
                max_tokens=settings.llm_max_tokens,
                grammar=settings.llm_grammar,
            ),
            cache,
            settings.explanation_cache_ttl_seconds,
            failure_ttl_seconds=settings.explanation_retry_seconds,
        )

    return explainer_for


def _explanations(
    settings: Settings,
    adapters: Adapters,
    recommender: RecommendationService,
    stats: ExplanationJobStats,
    jobs: ExplanationJobs | None,
) -> ExplanationBackground:
    """The explanation queue's workers, when an LLM writes explanations: ``LLM_CONCURRENCY``
    threads of the API on the in-process queue, or of `shopwise worker` on Redis Streams.
    ``GET /recommend`` then never waits for the model unless asked to."""
    if jobs is None:
        return ExplanationBackground(stats=stats)
    queue, metrics = adapters.explanations, adapters.metrics
    runner = ExplanationJobRunner(
        recommender=recommender,
        cache=adapters.cache,
        stats=stats,
        max_age_seconds=settings.explanation_job_max_age_seconds,
        slots=adapters.slots,  # the model server's capacity, shared with the stream and chat
    )
    workers = ExplanationWorkers(queue=queue, runner=runner)

    def gauges() -> None:
        status = queue.status()
        metrics.explanation_queue_depth.set(status.depth)
        metrics.explanation_queue_oldest.set(status.oldest_seconds)

    metrics.on_scrape(gauges)
    return ExplanationBackground(
        stats=stats,
        jobs=jobs,
        workers=workers,
        in_process=not isinstance(queue, RedisExplanationQueue),
    )


def _event_worker(
    settings: Settings,
    db: Engine,
    stream: EventStream,
    processor: EventProcessor,
    *,
    serving: bool,
) -> tuple[
    EventStream,
    InProcessWorker | WorkerProcess | None,
    InProcessWorker | WorkerProcess | StreamWorkerMonitor,
]:
    """Redis Streams are read by `shopwise worker` processes, which the app only watches;
    without Redis, a worker the app starts, so one machine needs nothing more: a thread on the
    in-process queue, or (``EVENT_WORKER_PROCESS``, a served app only) a child process on the
    event outbox, whose wake the tracker's stream becomes."""
    if isinstance(stream, InProcessEventStream):
        if serving and settings.event_worker_process:
            child = WorkerProcess(db=db, processor=processor, settings=settings)
            return child.stream, child, child
        worker = InProcessWorker(
            stream=stream,
            processor=processor,
            sweeper=OutboxSweeper(db=db, stream=stream, skip=stream.in_flight),
        )
        return stream, worker, worker
    if isinstance(stream, RedisEventStream):
        return stream, None, StreamWorkerMonitor(stream, processor)
    raise TypeError(f"no worker reads a {type(stream).__name__}")


def _chat(
    settings: Settings,
    adapters: Adapters,
    snapshots: SnapshotManager,
    prompts: PromptLibrary,
    vocabulary: VocabularyCache,
) -> ChatService:
    """The rule parser and template replies without an LLM; with one, the LLM parser (rules
    as its fallback) and replies through the evidence check, on the shared client (one
    circuit breaker). Text relevance: the product embeddings blended with keyword overlap,
    which alone ranks while the catalog has no vectors."""
    llm = adapters.llm
    parser: MessageParser = RuleParser()
    replies: ChatReplies = TemplateReplies(prompts, fallback_reason="no_api_key")
    if llm is not None:
        parser = LLMParser(llm, prompts, fallback=RuleParser())
        writer = CheckedWriter(  # its own counters: GET /chat/stats
            client=llm,
            prompts=prompts,
            vocabulary=vocabulary,
            max_tokens=settings.llm_max_tokens,
            templates=CHAT_REPLY_PROMPTS,
            grammar=settings.llm_grammar,
            stats=ExplanationStats(adapters.metrics, surface="chat"),
        )
        # Within the chat's budget, or the rules / the template reply and the LLM's later.
        budget = ChatBudget(
            budget_seconds=settings.chat_reply_budget_seconds,
            concurrency=settings.explanation_concurrency,
            slots=adapters.slots,
        )
        parser = BudgetedParser(parser, RuleParser(), budget)
        replies = DeferredReplies(
            LLMReplies(writer), TemplateReplies(prompts), adapters.cache, budget
        )
    return ChatService(
        parser=parser,
        replies=replies,
        snapshots=snapshots,
        cache=adapters.cache,
        prompts=prompts,
        retriever=ChatRetriever(SemanticRanker(adapters.embedder, keywords=KeywordRanker())),
        shoppers=DatabaseShoppers(adapters.db),
        state_ttl_seconds=settings.chat_state_ttl_seconds,
        top_n=settings.chat_top_n,
        half_life_days=settings.interaction_half_life_days,
    )


def warmup_steps(components: Components) -> dict[str, Callable[[], object]]:
    """What the first requests would otherwise load: the engine snapshot (every
    recommendation), the prompt templates, the collaborative models (load or first
    training), once the catalog is indexed, the embedding model and the vector index
    (one real search), and with the in-process worker the clustering library its segment
    recompute imports."""
    search = components.search

    def warm_search() -> None:
        if index_state(components.db) is None:  # nothing indexed: no query is encoded
            return
        search.search("warm start", top_n=1, filters=CandidateFilter())

    steps: dict[str, Callable[[], object]] = {
        "engine snapshot": components.snapshots.get,
        "prompt templates": lambda: compile_templates(components.prompts),
        # A cold shop's first training, next-item model included, when this process runs it.
        "collaborative models": components.training.warm_start,
        "embedding model and vector index": warm_search,
    }
    settings = components.settings
    if (
        isinstance(components.background_worker, InProcessWorker)
        and settings.segment_recompute_threshold > 0
    ):
        steps["clustering library"] = load_clustering  # the worker thread recomputes segments
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
