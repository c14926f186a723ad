"""Evidence: the structured record of why an item was recommended.

Explanations (template or LLM) are written from this record only, and LLM text is checked
against it. It is plain data, so the API returns it as is.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    pass


class WeightedMatch(BaseModel):
    """A category or tag the item shares with the user's profile, and the points it earned."""

    name: str
    weight: float


class PastInteraction(BaseModel):
    """One of the user's own interactions that led to this item."""

    product_id: uuid.UUID
    product_name: str
    action: str


class SourceShare(BaseModel):
    """A scoring source (rules, popularity, …) and its share of the item's score."""

    name: str
    share: float = Field(ge=0.0, le=1.0)
    detail: str


class SimilarItem(BaseModel):
    """The user's past item this one is most similar to (cosine of their text embeddings)."""

    product_id: uuid.UUID
    product_name: str
    similarity: float = Field(ge=-1.0, le=1.0)


class CoInteraction(BaseModel):
    """How many shoppers interacted with both this item and one of the user's past items."""

    product_id: uuid.UUID
    product_name: str
    count: int = Field(ge=1)


class SegmentMatch(BaseModel):
    """A cold-start pick: popular in the segment of shoppers the user is nearest to."""

    segment: int
    label: str
    shoppers: int = Field(ge=0)  # members of the segment who interacted with this item
    size: int = Field(ge=1)  # members of the segment


class Nearby(BaseModel):
    """The item is offered within the location radius of the shopper."""

    distance_km: float = Field(ge=0)
    radius_km: float = Field(gt=0)


class Evidence(BaseModel):
    strategy: str
    score: float
    sources: list[SourceShare]
    matched_categories: list[WeightedMatch] = Field(default_factory=list)
    matched_tags: list[WeightedMatch] = Field(default_factory=list)
    because_of: list[PastInteraction] = Field(default_factory=list)
    popularity_rank: int = Field(ge=1)
    interaction_count: int = Field(ge=0)
    similar_to: SimilarItem | None = None
    co_interactions: list[CoInteraction] = Field(default_factory=list)
    segment: SegmentMatch | None = None
    nearby: Nearby | None = None


def with_past_drivers(evidence: Evidence, actions: Mapping[uuid.UUID, str]) -> Evidence:
    """``because_of`` also names the past items behind ``similar_to`` and ``co_interactions``,
    with the action the shopper took (``actions``: past product → action): a blended score
    driven by embeddings or co-interactions has past items behind it, and an explanation
    must be able to name them."""
    named = {p.product_id for p in evidence.because_of}
    extra: list[PastInteraction] = []
    drivers: list[SimilarItem | CoInteraction] = list(evidence.co_interactions)
    if evidence.similar_to is not None:
        drivers.insert(0, evidence.similar_to)
    for past in drivers:
        action = actions.get(past.product_id)
        if action is None or past.product_id in named:
            continue
        named.add(past.product_id)
        extra.append(
            PastInteraction(
                product_id=past.product_id, product_name=past.product_name, action=action
            )
        )
    if not extra:
        return evidence
    return evidence.model_copy(update={"because_of": [*extra, *evidence.because_of]})
