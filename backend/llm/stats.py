"""In-process counters for explanations: checks passed/failed by reason, sources, fallbacks.

A small thread-safe class rather than a metrics library: ``/health`` and
``/explanations/stats`` read ``snapshot()``, and a Prometheus exporter can read the same.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from backend.llm.check import CheckResult


class ExplanationStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.checks_passed = 0
        self.checks_failed = 0
        self.check_failures: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.fallbacks: Counter[str] = Counter()
        self.cache_hits = 0

    def record_check(self, result: CheckResult) -> None:
        with self._lock:
            if result.ok:
                self.checks_passed += 1
            else:
                self.checks_failed += 1
                self.check_failures.update(result.reasons)  # each reason once per check

    def record_outcome(self, source: str, fallback_reason: str | None) -> None:
        with self._lock:
            self.sources[source] += 1
            if fallback_reason:
                self.fallbacks[fallback_reason] += 1

    def record_cache_hit(self) -> None:
        with self._lock:
            self.cache_hits += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "checks_passed": self.checks_passed,
                "checks_failed": self.checks_failed,
                "check_failures_by_reason": dict(self.check_failures.most_common()),
                "explanations_by_source": dict(self.sources),
                "fallbacks_by_reason": dict(self.fallbacks.most_common()),
                "cache_hits": self.cache_hits,
            }
