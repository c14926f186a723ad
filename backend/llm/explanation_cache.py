"""Checked LLM explanations cached by (user, recommended ids, prompt versions, model).

LLM calls are the slow, paid part of a recommendation, and the same list for the same user
gets the same explanation. Only checked LLM text is cached as text: a template fallback after
an outage must not outlive the outage. A background job whose answer the model got wrong
(the evidence check rejected it) leaves a marker instead, with the reason and a time until
which the list is not asked again, so a model that keeps failing a list is not asked on every
visit. A prompt edit or a model change changes the key, so it takes effect without flushing
anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator

from backend.infra.cache import Cache, explanations_key
from backend.llm.explainer import ExplanationDelta, ExplanationEvent, ExplanationFinal, LLMExplainer
from backend.llm.writer import ExplainOutcome, Explanation, ExplanationRequest

log = logging.getLogger(__name__)


# Failures where the model gave no answer at all (down, slow, refused): a job retries them
# and the template stays meanwhile; every other reason is about the answer it gave.
NO_ANSWER = frozenset(
    {
        "llm_unavailable",
        "llm_timeout",
        "llm_rate_limited",
        "circuit_open",
        "request_deadline",
        "llm_error",
    }
)


class CachedExplainer:
    def __init__(
        self,
        inner: LLMExplainer,
        cache: Cache,
        ttl_seconds: int,
        *,
        failure_ttl_seconds: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.cache = cache
        self.ttl_seconds = ttl_seconds
        self.failure_ttl_seconds = failure_ttl_seconds
        self.clock = clock  # wall clock: failure markers are read by other processes

    def cache_version(self) -> str:
        return self.inner.cache_version()

    def lookup(self, request: ExplanationRequest) -> Explanation | None:
        """What a job left for exactly this list: the checked text, or the template with the
        reason the model's answer was rejected (until the marker expires); None: nothing."""
        entry = self._entry(request)
        if entry is None:
            return None
        if "text" in entry:
            return Explanation(text=str(entry["text"]), source="llm")
        return self.template(request, str(entry["failed"]))

    def template(self, request: ExplanationRequest, reason: str | None) -> Explanation:
        text = self.inner.fallback.explain(request).text
        return Explanation(text=text, source="template", fallback_reason=reason)

    def prepare(self, request: ExplanationRequest) -> ExplainOutcome:
        """Ask the model now (a background job): checked text is cached; an answer that
        failed the check leaves a failure marker; no answer at all leaves nothing (the
        caller retries, then calls ``remember_failure``)."""
        version = self._version(request)
        outcome = self.inner.explain_detailed(request)
        explanation = outcome.explanation
        reason = explanation.fallback_reason
        if explanation.source == "llm":
            self._put(request, explanation, version)
        elif reason is not None and reason not in NO_ANSWER:
            self._put_failure(request, reason, version)
        return outcome

    def remember_failure(self, request: ExplanationRequest, reason: str) -> None:
        self._put_failure(request, reason, self._version(request))

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
        yield from self.write_stream(request)

    def write_stream(self, request: ExplanationRequest) -> Iterator[ExplanationEvent]:
        """The model writes now, streamed (the caller looked in the cache already); checked
        text is cached."""
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
        """Checked text only: a caller who waits for the model asks it again after a failure."""
        entry = self._entry(request)
        if entry is None or "text" not in entry:
            return None
        return Explanation(text=str(entry["text"]), source="llm")

    def _entry(self, request: ExplanationRequest) -> dict[str, str] | None:
        """``{"text": ...}``, or ``{"failed": reason}`` while the failure marker holds."""
        if request.user_id is None or not request.items:
            return None
        raw = self.cache.get(explanations_key(request.user_id), self.field(request))
        entry: dict[str, str] | None = None
        try:
            data = json.loads(raw) if raw is not None else None
            if data is not None and "text" in data:
                entry = {"text": str(data["text"])}
            elif data is not None and float(data["until"]) > self.clock():
                entry = {"failed": str(data["failed"])}  # else: time is up, ask again
        except (ValueError, KeyError, TypeError):
            log.warning("dropping an unreadable cached explanation")
        self.inner.stats.record_cache_lookup(hit=entry is not None and "text" in entry)
        return entry

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

    def _put_failure(self, request: ExplanationRequest, reason: str, version: str | None) -> None:
        if request.user_id is None or not request.items or version is None:
            return
        until = self.clock() + self.failure_ttl_seconds
        value = json.dumps({"failed": reason, "until": until})
        key = explanations_key(request.user_id)
        self.cache.set_if_version(key, self.field(request), value, self.ttl_seconds, version)
