"""Explanation orchestration for the API: the streamed explanation and the LLM's health."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from backend.llm.client import LLMClient
from backend.llm.explainer import (
    ExplanationDelta,
    ExplanationEvent,
    ExplanationFinal,
    stream_explanation,
)
from backend.llm.explanation_cache import CachedExplainer
from backend.llm.slots import ModelSlots
from backend.llm.stats import ExplanationStats
from backend.llm.writer import Explanation, ExplanationRequest
from backend.recommender.strategies import CandidateFilter
from backend.services.explanation_choice import ExplanationJobs, job_for
from backend.services.health import ComponentHealth
from backend.services.recommend import RecommendationService

# How long a stream waits for the model server to be free before the template answers (the
# list's job is queued then, and its text served later). Longer would hold the shopper's page.
SLOT_WAIT_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class ExplanationStream:
    request: ExplanationRequest
    events: Iterator[ExplanationEvent]


def explanation_stream(
    *,
    recommender: RecommendationService,
    user_id: uuid.UUID,
    top_n: int,
    strategy: str | None,
    slots: ModelSlots | None = None,
    jobs: ExplanationJobs | None = None,
    slot_wait_seconds: float = SLOT_WAIT_SECONDS,
) -> ExplanationStream:
    """Rank first (so a bad user or algorithm is an HTTP error, not a broken stream), then
    hand back the lazy event stream of the explanation, written by the explainer the
    recommendation itself uses (a running experiment's prompt variant included).

    With an LLM, the stream serves what the explanation cache holds for exactly this list;
    else it takes one of the model server's ``slots`` (those the explanation workers use)
    and streams the model's checked deltas; none free within ``slot_wait_seconds``: the
    template, with the list's job queued. Closing the events ends the model call and frees
    the slot."""
    request, explainer = recommender.explanation_job(user_id, top_n=top_n, strategy=strategy)
    if not isinstance(explainer, CachedExplainer) or slots is None:
        return ExplanationStream(request=request, events=stream_explanation(explainer, request))
    job = job_for(explainer, request, strategy=strategy, top_n=top_n, filters=CandidateFilter())

    def queue_job() -> None:
        if jobs is not None and job is not None:
            jobs.submit(job)

    events = _within_slots(explainer, request, slots, slot_wait_seconds, queue_job)
    return ExplanationStream(request=request, events=events)


def _within_slots(
    explainer: CachedExplainer,
    request: ExplanationRequest,
    slots: ModelSlots,
    wait: float,
    queue_job: Callable[[], None],
) -> Iterator[ExplanationEvent]:
    found = explainer.lookup(request)  # the checked text, or why the model's answer failed
    if found is not None:
        yield ExplanationDelta(found.text)
        yield ExplanationFinal(found, verified=found.source == "llm", cached=True)
        return
    lease = slots.acquire(timeout=wait) if request.items else None
    if lease is None:
        reason = "no_items" if not request.items else "llm_busy"
        if request.items:
            queue_job()  # its text is served by a later request
        explainer.inner.stats.record_outcome("template", reason)
        yield from _template(explainer.template(request, reason))
        return
    try:
        yield from explainer.write_stream(request)
    finally:  # also when the client went away: the model call ends here
        lease.release()


def _template(explanation: Explanation) -> Iterator[ExplanationEvent]:
    for line in explanation.text.splitlines(keepends=True):
        yield ExplanationDelta(line)
    yield ExplanationFinal(explanation, verified=False)


def llm_health(llm: LLMClient | None, stats: ExplanationStats, mode: str) -> ComponentHealth:
    """``degraded`` while the circuit is open or half-open: answers fall back to templates."""
    if llm is None:
        return ComponentHealth(status="ok", detail=mode)
    circuit = llm.circuit()
    counts = stats.snapshot()
    detail = (
        f"{llm.model}: circuit {circuit.state}"
        + (f" (retry in {circuit.retry_in_seconds:.0f} s)" if circuit.state == "open" else "")
        + f", checks {counts['checks_passed']} passed / {counts['checks_failed']} failed"
    )
    status = "ok" if circuit.state == "closed" else "degraded"
    return ComponentHealth(status=status, detail=detail)
