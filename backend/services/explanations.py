"""Explanation orchestration for the API: the streamed explanation and the LLM's health."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from backend.llm.client import LLMClient
from backend.llm.explainer import ExplanationEvent, stream_explanation
from backend.llm.stats import ExplanationStats
from backend.llm.writer import ExplanationRequest
from backend.services.health import ComponentHealth
from backend.services.recommend import RecommendationService


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
) -> ExplanationStream:
    """Rank first (so a bad user or algorithm is an HTTP error, not a broken stream), then
    hand back the lazy event stream of the explanation, written by the explainer the
    recommendation itself uses (a running experiment's prompt variant included)."""
    request, explainer = recommender.explanation_job(user_id, top_n=top_n, strategy=strategy)
    return ExplanationStream(request=request, events=stream_explanation(explainer, request))


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
