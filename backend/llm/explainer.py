"""Explanations of a recommendation list, written from the evidence only.

``TemplateExplainer`` renders ``prompts/explanation.j2``: it is the offline answer and the
fallback whenever an LLM is not configured or fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from backend.llm.prompts import PromptLibrary
from backend.recommender.catalog import ProductRecord
from backend.recommender.evidence import Evidence

ExplanationSource = Literal["llm", "template"]

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """'Sports & Outdoors' -> 'sports-outdoors' (how catalogs often tag a category)."""
    return _NON_ALNUM.sub("-", text.lower()).strip("-")


@dataclass(frozen=True, slots=True)
class ExplainedItem:
    product: ProductRecord
    evidence: Evidence

    def as_context(self) -> dict[str, object]:
        return {
            "product_id": str(self.product.id),
            "name": self.product.name,
            "category": self.product.category,
            "category_slug": slugify(self.product.category),
            "price": f"{self.product.price:.2f}",
            "evidence": self.evidence.model_dump(mode="json"),
        }


@dataclass(frozen=True, slots=True)
class ExplanationRequest:
    user_name: str
    summary: str
    items: tuple[ExplainedItem, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    text: str
    source: ExplanationSource
    fallback_reason: str | None = None


class Explainer(Protocol):
    def explain(self, request: ExplanationRequest) -> Explanation: ...


class TemplateExplainer:
    template = "explanation.j2"

    def __init__(self, prompts: PromptLibrary, *, fallback_reason: str | None = None) -> None:
        self.prompts = prompts
        self.fallback_reason = fallback_reason

    def explain(self, request: ExplanationRequest) -> Explanation:
        text = self.prompts.render(
            self.template,
            user_name=request.user_name,
            summary=request.summary,
            items=[item.as_context() for item in request.items],
        )
        return Explanation(text=text, source="template", fallback_reason=self.fallback_reason)
