"""Counters for checked LLM text: checks passed/failed by reason, sources, fallbacks.

``/health``, ``/explanations/stats`` and ``/chat/stats`` read ``snapshot()``; when the app
gives it its ``Metrics``, every record also goes to the Prometheus counters (labelled with
the ``surface``: recommendation explanations or chat replies).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from backend.llm.check import CheckResult
from backend.observability.metrics import Metrics


class ExplanationStats:
    def __init__(self, metrics: Metrics | None = None, surface: str = "recommendation") -> None:
        self._lock = threading.Lock()
        self._metrics = metrics
        self._surface = surface
        self.checks_passed = 0
        self.checks_failed = 0
        self.check_failures: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.fallbacks: Counter[str] = Counter()
        self.cache_hits = 0
        # Checks per answer grammar (backend/llm/answer_grammar.py), when the answer was
        # asked under one: whether the model passes in its own words or only in its facts'.
        self.by_grammar: Counter[tuple[str, str]] = Counter()

    def record_check(self, result: CheckResult, grammar: str | None = None) -> None:
        with self._lock:
            if grammar is not None:
                self.by_grammar[(grammar, "passed" if result.ok else "failed")] += 1
            if result.ok:
                self.checks_passed += 1
            else:
                self.checks_failed += 1
                self.check_failures.update(result.reasons)  # each reason once per check
        if self._metrics is not None:
            checks = self._metrics.evidence_checks
            if result.ok:
                checks.labels(self._surface, "passed", "none").inc()
            for reason in result.reasons:
                checks.labels(self._surface, "failed", reason).inc()

    def record_outcome(self, source: str, fallback_reason: str | None) -> None:
        with self._lock:
            self.sources[source] += 1
            if fallback_reason:
                self.fallbacks[fallback_reason] += 1
        if fallback_reason and self._metrics is not None:
            self._metrics.explanation_fallbacks.labels(self._surface, fallback_reason).inc()

    def record_cache_lookup(self, hit: bool) -> None:
        """A lookup in the cache of checked LLM text."""
        if hit:
            with self._lock:
                self.cache_hits += 1
        if self._metrics is not None:
            self._metrics.cache_requests.labels("explanation", "hit" if hit else "miss").inc()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "checks_passed": self.checks_passed,
                "checks_failed": self.checks_failed,
                "check_failures_by_reason": dict(self.check_failures.most_common()),
                "checks_by_grammar": {
                    grammar: {
                        outcome: self.by_grammar[(grammar, outcome)]
                        for outcome in ("passed", "failed")
                    }
                    for grammar in sorted({g for g, _ in self.by_grammar})
                },
                "explanations_by_source": dict(self.sources),
                "fallbacks_by_reason": dict(self.fallbacks.most_common()),
                "cache_hits": self.cache_hits,
            }
