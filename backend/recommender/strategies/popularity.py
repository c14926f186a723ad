"""Most-popular products (most interactions): the cold-start answer and a baseline."""

from __future__ import annotations

from backend.recommender.snapshot import CatalogSnapshot
from backend.recommender.strategies.base import Recommendation, RecommendRequest
from backend.recommender.strategies.ranking import blocked_mask, popularity_fill


class PopularityStrategy:
    name = "popularity"

    def recommend(
        self, snapshot: CatalogSnapshot, request: RecommendRequest
    ) -> list[Recommendation]:
        interacted = {
            i
            for e in request.interactions
            if e.product_id is not None and (i := snapshot.index.get(e.product_id)) is not None
        }
        blocked = blocked_mask(snapshot, request, interacted)
        return popularity_fill(snapshot, request.top_n, blocked, strategy=self.name)
