"""Prometheus metrics, one registry per app (so tests and workers never collide).

With several API worker processes (``shopwise serve --workers N``) each process counts in
its own memory, and a scrape would see one process's share. ``serve`` then sets
``PROMETHEUS_MULTIPROC_DIR``: prometheus_client keeps the values in files there and a
scrape of any process adds up all of them (gauges: the most recent reading).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from backend.observability.dependencies import DependencyMonitor

log = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A backlog can hold events for minutes.
DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """Every metric the service exports; components record into it, /metrics renders it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # First in the registry, so values read from other systems (the stream's lag) are
        # fresh in every scrape: /metrics and a worker's own metrics port alike.
        self._on_scrape: list[Callable[[], None]] = []
        self.registry.register(_Refresh(self._on_scrape))
        r = self.registry
        self.http_latency = Histogram(
            "shopwise_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_requests = Counter(
            "shopwise_cache_requests_total",
            "Cache lookups: cache=response (whole answers), explanation (checked LLM text), "
            "precomputed (the worker's stored lists); result=hit|miss",
            ["cache", "result"],
            registry=r,
        )
        self.recommendations = Counter(
            "shopwise_recommendations_total",
            "Recommendation responses by strategy and explanation source",
            ["algorithm", "explanation_source"],
            registry=r,
        )
        self.explanation_fallbacks = Counter(
            "shopwise_explanation_fallbacks_total",
            "Texts that fell back to the template, by surface (recommendation, chat) and reason",
            ["surface", "reason"],
            registry=r,
        )
        self.llm_calls = Counter(
            "shopwise_llm_calls_total", "Calls to the LLM by outcome", ["outcome"], registry=r
        )
        self.evidence_checks = Counter(
            "shopwise_evidence_checks_total",
            "Evidence checks of LLM text, by surface, result and failure reason",
            ["surface", "result", "reason"],
            registry=r,
        )
        self.events = Counter(
            "shopwise_events_total", "Tracked events by outcome", ["outcome"], registry=r
        )
        self.event_lag = Gauge(
            "shopwise_event_lag_seconds",
            "Age of the oldest event not yet processed (0 when the worker has caught up)",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.event_delay = Histogram(
            "shopwise_event_processing_delay_seconds",
            "From an event being stored to the worker having processed it",
            buckets=DELAY_BUCKETS,
            registry=r,
        )
        self.worker_processed = Counter(
            "shopwise_worker_events_processed_total",
            "Events the worker handled, by result (processed, duplicate, skipped, failed)",
            ["result"],
            registry=r,
        )
        self.impressions = Counter(
            "shopwise_impressions_total",
            "Recommended products logged as shown, by strategy and experiment variant",
            ["strategy", "variant"],
            registry=r,
        )
        self.impressions_dropped = Counter(
            "shopwise_impressions_dropped_total",
            "Impressions not logged (queue full, write failed, user deleted), by reason",
            ["reason"],
            registry=r,
        )
        self.component_up = Gauge(
            "shopwise_component_up",
            "1 when a component is healthy, 0.5 degraded, 0 down",
            ["component"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.dependency_failures = Counter(
            "shopwise_dependency_failures_total",
            "Failed calls to an external system (database, vectors, llm), by component",
            ["component"],
            registry=r,
        )
        self.requests_shed = Counter(
            "shopwise_requests_shed_total",
            "Requests refused with 503 because the process was at its in-flight limit",
            registry=r,
        )
        # Explanations prepared off the request path (the explanation queue).
        self.explanation_queue_depth = Gauge(
            "shopwise_explanation_queue_depth",
            "Explanation jobs queued or running",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.explanation_queue_oldest = Gauge(
            "shopwise_explanation_queue_oldest_seconds",
            "Age of the oldest explanation job queued or running (0 when empty)",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.explanation_jobs = Counter(
            "shopwise_explanation_jobs_total",
            "Explanation jobs: submitted (result=queued|duplicate|full), finished "
            "(result=llm, or template with the answer's failure reason), dropped (by reason)",
            ["stage", "result"],
            registry=r,
        )
        self.explanations_served = Counter(
            "shopwise_explanations_served_total",
            "Recommendation answers sent, by explanation source (llm, template) and status "
            "(ready, pending, template), response-cache hits included",
            ["source", "status"],
            registry=r,
        )
        self.llm_tokens = Counter(
            "shopwise_llm_completion_tokens_total",
            "Completion tokens the model wrote for explanation jobs (as its server reports)",
            registry=r,
        )
        self.llm_generation_seconds = Counter(
            "shopwise_llm_generation_seconds_total",
            "Time explanation jobs waited for the model's answers (tokens / this = tokens/s)",
            registry=r,
        )
        self.dependencies = DependencyMonitor(self.dependency_failures)

    def on_scrape(self, refresh: Callable[[], None]) -> None:
        """Run ``refresh`` before each scrape (it sets gauges read from elsewhere)."""
        self._on_scrape.append(refresh)

    def render(self) -> bytes:
        shared = os.environ.get(MULTIPROCESS_ENV)
        if not shared:
            return generate_latest(self.registry)
        registry = CollectorRegistry()  # every process's values, read from the files
        registry.register(_Refresh(self._on_scrape))
        MultiProcessCollector(registry, path=shared)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


class _Refresh(Collector):
    """Exports nothing; runs the scrape hooks when the registry is collected."""

    def __init__(self, hooks: list[Callable[[], None]]) -> None:
        self.hooks = hooks

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        for refresh in self.hooks:
            try:
                refresh()
            except Exception:  # an unreachable system must not break the scrape
                log.warning("a metrics refresh failed", exc_info=True)
        return []
