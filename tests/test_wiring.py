"""The composition root: what the adapters decide, each adapter passed once reaching every
service that uses it, and the services built in dependency order (no attribute set later)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from backend.adapters import default_adapters
from backend.chat.deferred import BudgetedParser, DeferredReplies
from backend.chat.llm_parser import LLMParser
from backend.chat.parser import RuleParser
from backend.chat.replies import LLMReplies, TemplateReplies
from backend.config import PROJECT_ROOT, Settings, load_settings
from backend.infra.cache import MemoryCache, RedisCache
from backend.infra.model_slots import RedisModelSlots
from backend.infra.stream import InProcessEventStream, RedisEventStream
from backend.jobs.worker import InProcessWorker, StreamWorkerMonitor
from backend.llm.explainer import TemplateExplainer
from backend.llm.explanation_cache import CachedExplainer
from backend.llm.slots import LocalModelSlots
from backend.wiring import build_components, warmup_steps
from tests.llm.fakes import FakeLLM
from tests.recommender.fakes import FakeEmbedder


@pytest.fixture
def offline(tmp_path: Path) -> Settings:
    return load_settings(_env_file=None, data_dir=tmp_path, prompts_dir=PROJECT_ROOT / "prompts")


def test_without_redis_the_app_runs_its_own_worker_on_an_in_process_queue(offline) -> None:
    adapters = default_adapters(offline)
    assert isinstance(adapters.cache, MemoryCache) and adapters.llm is None
    assert isinstance(adapters.events, InProcessEventStream)
    components = build_components(offline, adapters)
    try:
        assert isinstance(components.background_worker, InProcessWorker)
        assert components.worker_monitor is components.background_worker
        assert components.tracker.stream is adapters.events
    finally:
        components.db.dispose()


def test_with_redis_the_app_only_watches_the_worker_processes(offline) -> None:
    """Nothing connects while building: no Redis server is needed for this."""
    settings = offline.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    adapters = default_adapters(settings)
    assert isinstance(adapters.cache, RedisCache)
    assert isinstance(adapters.events, RedisEventStream)
    components = build_components(settings, adapters)
    try:
        assert components.background_worker is None
        assert isinstance(components.worker_monitor, StreamWorkerMonitor)
        assert components.tracker.stream is adapters.events
    finally:
        components.db.dispose()


@pytest.mark.parametrize("redis", [False, True])
def test_one_count_of_model_slots_reaches_the_jobs_the_streams_and_the_chat(offline, redis):
    """The explanation workers, the explanation stream and the chat's model calls take the
    same slots: per process without Redis, one count for all processes with it."""
    settings = offline.model_copy(
        update={"llm_concurrency": 2, "redis_url": "redis://127.0.0.1:1/0" if redis else None}
    )
    adapters = dataclasses.replace(default_adapters(settings), llm=FakeLLM())
    assert isinstance(adapters.slots, RedisModelSlots if redis else LocalModelSlots)
    assert adapters.slots.concurrency == 2
    components = build_components(settings, adapters)
    try:
        assert components.recommender.jobs.slots is adapters.slots  # /health shows where
        assert components.chat.replies.budget.pool._slots is adapters.slots
        assert components.explanations.slots is adapters.slots  # the stream's
    finally:
        components.db.dispose()


def test_without_an_llm_everything_speaks_from_templates(offline) -> None:
    components = build_components(offline)
    try:
        assert components.llm is None and components.llm_mode.startswith("template")
        assert isinstance(components.recommender.explainer, TemplateExplainer)
        assert isinstance(components.chat.parser, RuleParser)
        assert isinstance(components.chat.replies, TemplateReplies)
        assert components.prompt_admin.llm is None
    finally:
        components.db.dispose()


def test_one_fake_llm_reaches_every_service_that_writes_or_parses(offline) -> None:
    fake = FakeLLM()
    components = build_components(offline, dataclasses.replace(default_adapters(offline), llm=fake))
    try:
        assert components.llm is fake and components.llm_mode == "llm"
        assert isinstance(components.recommender.explainer, CachedExplainer)
        # The chat's LLM parser and replies, each held to the chat's budget.
        parser, replies = components.chat.parser, components.chat.replies
        assert isinstance(parser, BudgetedParser) and isinstance(parser.llm, LLMParser)
        assert isinstance(replies, DeferredReplies) and isinstance(replies.llm, LLMReplies)
        assert components.recommender.jobs is not None  # explanations off the request path
        assert components.prompt_admin.llm is fake
        # A variant's pinned prompt version gets the same kind of explainer.
        assert components.experiments.explainer_for is not None
        pinned = components.experiments.explainer_for(components.prompts)
        assert isinstance(pinned, CachedExplainer)
    finally:
        components.db.dispose()


def test_the_services_share_one_snapshot_one_cache_and_the_trained_models(offline) -> None:
    embedder = FakeEmbedder(dim=16)
    adapters = dataclasses.replace(default_adapters(offline), embedder=embedder)
    components = build_components(offline, adapters)
    try:
        assert components.search.embedder is embedder
        assert components.indexer.embedder is embedder
        assert components.chat.retriever.ranker.embedder is embedder  # type: ignore[attr-defined]
        snapshots = components.snapshots
        for service in (components.recommender, components.tracker, components.catalog):
            assert service.snapshots is snapshots
        assert components.recommender.cache is adapters.cache
        assert components.privacy.cache is adapters.cache
        # Every read of the models lets the training service load or train them first.
        store = components.training.store
        assert store.on_access == components.training.ensure_current
        assert components.recommender.segments is components.segments
        assert components.recommender.location is components.location
        assert components.recommender.experiments is components.experiments
        assert components.recommender.impressions is components.impressions
    finally:
        components.db.dispose()


@pytest.mark.parametrize(
    ("redis", "serving", "trains"),
    [(False, True, True), (True, True, False), (True, False, True)],
    ids=["embedded API", "server-mode API", "worker or CLI"],
)
def test_only_the_process_that_reads_the_events_trains_in_the_background(
    offline, redis, serving, trains
) -> None:
    """Server mode's API processes leave the next-item model to the worker (one trainer,
    not one per API process); without Redis the API process is the only one."""
    url = "redis://127.0.0.1:1/0" if redis else None
    settings = offline.model_copy(update={"redis_url": url})
    components = build_components(settings, default_adapters(settings), serving=serving)
    try:
        assert components.training.background_training is trains
        steps = warmup_steps(components)
        assert steps["collaborative models"] == components.training.warm_start
    finally:
        components.db.dispose()
