"""Evidence: the structured record of why an item was recommended.

Explanations (template or LLM) are written from this record only, and LLM text is checked
against it. It is plain data, so the API returns it as is.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field


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
