"""The recommendation answer, a shape several layers share.

``recommend`` builds it, the impression log reads it (also from its cached JSON) and the HTTP
layer serves it. It lives apart from all three so that none of them imports another for it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from backend.experiments.model import ExperimentRef
from backend.llm.explainer import ExplanationSource
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
    fallback_reason: str | None = None
    user_behavior_summary: str
    algorithm: str
    cached: bool = False
    generated_at: datetime
    experiment: ExperimentRef | None = Field(
        default=None, description="The A/B experiment variant that served this answer"
    )
