"""The recommendation answer, a shape several layers share.

``recommend`` builds it, the impression log reads it (also from its cached JSON) and the HTTP
layer serves it. It lives apart from all three so that none of them imports another for it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from backend.experiments.model import ExperimentRef
from backend.llm.writer import ExplanationSource
from backend.recommender.evidence import Evidence


class RecommendedProduct(BaseModel):
    id: uuid.UUID
    name: str
    category: str
    price: Decimal
    image_url: str | None
    in_stock: bool
    score: float
    evidence: Evidence


class RecommendationResult(BaseModel):
    user_id: uuid.UUID
    user_name: str
    recommended_products: list[RecommendedProduct]
    llm_explanation: str
    explanation_source: ExplanationSource
    explanation_status: Literal["ready", "pending", "template"] = Field(
        default="template",
        description="ready: the LLM's text, checked against the evidence. pending: the "
        "template now; the LLM is writing this list's text in the background: request the "
        "same URL again later (it then carries the text, or the template with the reason), "
        "or read `explanation_stream`. template: the final text is the template "
        "(`fallback_reason` says why when an LLM is configured).",
    )
    explanation_stream: str | None = Field(
        default=None,
        description="While pending: the server-sent-events URL streaming this list's "
        "explanation (null otherwise, and for filtered lists: poll their URL)",
    )
    fallback_reason: str | None = None
    user_behavior_summary: str
    algorithm: str
    cached: bool = False
    generated_at: datetime
    experiment: ExperimentRef | None = Field(
        default=None, description="The A/B experiment variant that served this answer"
    )


_NOT_CACHED = '"cached":false'


def cached_json(result: RecommendationResult, body: str) -> str:
    """``body`` (``result`` as JSON, ``cached: false``) as the response cache stores it, with
    ``cached: true``: the one JSON edited rather than the result serialised again.

    Inside a JSON string every quote is escaped, so ``"cached":false`` can only be a key and
    its value; the result's own is its only one unless a nested model grows a ``cached``
    field too, and then it is serialised again."""
    if not result.cached and body.count(_NOT_CACHED) == 1:
        return body.replace(_NOT_CACHED, '"cached":true')
    return result.model_copy(update={"cached": True}).model_dump_json()
