"""Checked LLM explanations cached by (user, recommended ids, prompt versions, model).

LLM calls are the slow, paid part of a recommendation, and the same list for the same user
gets the same explanation. Only checked LLM text is cached: a template fallback after an
outage must not outlive the outage. A prompt edit or a model change changes the key, so it
takes effect without flushing anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator

from backend.infra.cache import Cache, explanations_key
from backend.llm.explainer import (
    Explanation,
    ExplanationDelta,
    ExplanationEvent,
    ExplanationFinal,
    ExplanationRequest,
    LLMExplainer,
)

log = logging.getLogger(__name__)


class CachedExplainer:
    def __init__(self, inner: LLMExplainer, cache: Cache, ttl_seconds: int) -> None:
        self.inner = inner
        self.cache = cache
        self.ttl_seconds = ttl_seconds

    def field(self, request: ExplanationRequest) -> str:
        ids = [str(item.product.id) for item in request.items]
        raw = json.dumps([ids, self.inner.cache_version()])
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def explain(self, request: ExplanationRequest) -> Explanation:
        hit = self._get(request)
        if hit is not None:
            return hit
        version = self._version(request)
        explanation = self.inner.explain(request)
        self._put(request, explanation, version)
        return explanation

    def stream(self, request: ExplanationRequest) -> Iterator[ExplanationEvent]:
        hit = self._get(request)
        if hit is not None:
            yield ExplanationDelta(hit.text)
            yield ExplanationFinal(hit, verified=True, cached=True)
            return
        version = self._version(request)
        for event in self.inner.stream(request):
            if isinstance(event, ExplanationFinal) and event.verified:
                self._put(request, event.explanation, version)
            yield event

    def _version(self, request: ExplanationRequest) -> str | None:
        """Read before the LLM call: an event for the user while the LLM writes (seconds)
        changes it, and the text, written from the older evidence, is then not stored."""
        return self.cache.version(explanations_key(request.user_id)) if request.user_id else None

    def _get(self, request: ExplanationRequest) -> Explanation | None:
        if request.user_id is None or not request.items:
            return None
        raw = self.cache.get(explanations_key(request.user_id), self.field(request))
        try:
            text = json.loads(raw)["text"] if raw is not None else None
        except (ValueError, KeyError, TypeError):
            log.warning("dropping an unreadable cached explanation")
            text = None
        self.inner.stats.record_cache_lookup(hit=text is not None)
        if text is None:
            return None
        return Explanation(text=str(text), source="llm")

    def _put(
        self, request: ExplanationRequest, explanation: Explanation, version: str | None
    ) -> None:
        if request.user_id is None or explanation.source != "llm" or not request.items:
            return
        if version is None:  # the cache could not say (Redis down): do not guess
            return
        value = json.dumps({"text": explanation.text})
        key = explanations_key(request.user_id)
        self.cache.set_if_version(key, self.field(request), value, self.ttl_seconds, version)
