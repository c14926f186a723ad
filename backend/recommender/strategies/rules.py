"""The spec's v1 scorer, kept as the named strategy ``rules``.

Top 3 categories and top 5 tags by frequency in the user's interactions; every product the
user has not interacted with gets +10 for a top category and +3 per top tag; highest first.
When fewer than N products score, the most popular products fill the list.
"""

from __future__ import annotations

import numpy as np

from backend.recommender.profile import frequency_profile
from backend.recommender.snapshot import CatalogSnapshot
from backend.recommender.strategies.base import Recommendation, RecommendRequest
from backend.recommender.strategies.ranking import (
    blocked_mask,
    popularity_fill,
    profile_recommendations,
    top_k,
)


class RulesStrategy:
    name = "rules"

    def __init__(
        self,
        *,
        category_points: float = 10.0,
        tag_points: float = 3.0,
        top_categories: int = 3,
        top_tags: int = 5,
    ) -> None:
        self.category_points = category_points
        self.tag_points = tag_points
        self.top_categories = top_categories
        self.top_tags = top_tags

    def recommend(
        self, snapshot: CatalogSnapshot, request: RecommendRequest
    ) -> list[Recommendation]:
        profile = frequency_profile(request.interactions, snapshot)
        scores = np.zeros(len(snapshot), dtype=np.float64)
        category_points: dict[str, float] = {}
        for name, _count in profile.top_categories(self.top_categories):
            postings = snapshot.category_postings_for(name)
            if postings is not None:
                scores[postings] += self.category_points
                category_points[name] = self.category_points
        tag_points: dict[str, float] = {}
        for name, _count in profile.top_tags(self.top_tags):
            postings = snapshot.tag_postings_for(name)
            if postings is not None:
                scores[postings] += self.tag_points
                tag_points[name] = self.tag_points

        blocked = blocked_mask(snapshot, request, profile.interacted)
        chosen = top_k(scores, request.top_n, blocked, snapshot.popularity, positive_only=True)
        matched = profile_recommendations(
            snapshot,
            profile,
            chosen,
            scores,
            strategy=self.name,
            category_points=category_points,
            tag_points=tag_points,
            detail="matches your most frequent categories and tags",
        )
        blocked[chosen] = True
        return matched + popularity_fill(
            snapshot, request.top_n - len(matched), blocked, strategy=self.name, scored=False
        )
