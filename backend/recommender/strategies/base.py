"""The one contract every recommender strategy implements."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from backend.recommender.evidence import Evidence
from backend.recommender.profile import InteractionRecord
from backend.recommender.snapshot import CatalogSnapshot


@dataclass(frozen=True, slots=True)
class CandidateFilter:
    """Hard constraints on what may be recommended."""

    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool = False

    def mask(self, snapshot: CatalogSnapshot) -> npt.NDArray[np.bool_] | None:
        """Boolean mask of allowed products, or None when nothing is filtered."""
        if self.category is None and self.min_price is None and self.max_price is None:
            if not self.in_stock:
                return None
        allowed = np.ones(len(snapshot), dtype=bool)
        if self.category is not None:
            allowed &= np.zeros(len(snapshot), dtype=bool)
            postings = snapshot.category_postings_for(self.category)
            if postings is not None:
                allowed[postings] = True
        if self.min_price is not None:
            allowed &= snapshot.prices >= self.min_price
        if self.max_price is not None:
            allowed &= snapshot.prices <= self.max_price
        if self.in_stock:
            allowed &= snapshot.quantities > 0
        return allowed


@dataclass(frozen=True, slots=True)
class SegmentHint:
    """The segment a cold-start user is nearest to, and what its members chose most."""

    segment: int
    label: str
    size: int
    popular: Mapping[uuid.UUID, int]  # product → members who interacted with it


@dataclass(frozen=True, slots=True)
class LocationHint:
    """The shopper's position and the boost settings (only set when LOCATION_BOOST is on)."""

    latitude: float
    longitude: float
    radius_km: float
    weight: float


@dataclass(frozen=True, slots=True)
class RecommendRequest:
    interactions: Sequence[InteractionRecord]
    top_n: int
    now: datetime
    exclude_interacted: bool = True
    filters: CandidateFilter = field(default_factory=CandidateFilter)
    # Set by the service: a cold-start user's segment ("shoppers like you").
    segment: SegmentHint | None = None
    location: LocationHint | None = None


@dataclass(frozen=True, slots=True)
class Recommendation:
    index: int  # position in the snapshot
    score: float  # 0–1 for every strategy but ``rules`` (the spec's raw points)
    evidence: Evidence


class Strategy(Protocol):
    name: str

    def recommend(
        self, snapshot: CatalogSnapshot, request: RecommendRequest
    ) -> list[Recommendation]: ...
