"""Prometheus metrics, one registry per app (so tests and workers never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Every metric the service exports; components record into it, /metrics renders it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_latency = Histogram(
            "shopwise_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_requests = Counter(
            "shopwise_cache_requests_total", "Recommendation cache lookups", ["result"], registry=r
        )
        self.recommendations = Counter(
            "shopwise_recommendations_total",
            "Recommendation responses by strategy and explanation source",
            ["algorithm", "explanation_source"],
            registry=r,
        )
        self.explanation_fallbacks = Counter(
            "shopwise_explanation_fallbacks_total",
            "Explanations that fell back to the template, by reason",
            ["reason"],
            registry=r,
        )
        self.llm_calls = Counter(
            "shopwise_llm_calls_total", "Calls to the LLM by outcome", ["outcome"], registry=r
        )
        self.evidence_checks = Counter(
            "shopwise_evidence_checks_total",
            "Evidence checks of LLM text, by result and reason",
            ["result", "reason"],
            registry=r,
        )
        self.events = Counter(
            "shopwise_events_total", "Tracked events by outcome", ["outcome"], registry=r
        )
        self.event_lag = Gauge(
            "shopwise_event_lag_seconds", "Age of the oldest unprocessed event", registry=r
        )
        self.worker_processed = Counter(
            "shopwise_worker_events_processed_total", "Events the worker processed", registry=r
        )
        self.component_up = Gauge(
            "shopwise_component_up",
            "1 when a component is healthy, 0.5 degraded, 0 down",
            ["component"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
