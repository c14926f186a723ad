"""The improved profile scorer: weighted actions, decayed history, scores on 0–1.

A purchase says more than a view, and last week says more than last season. Each category
and tag in the profile earns points in proportion to its share of the user's (decayed)
weight; categories and tags each contribute at most ``category_share`` and the rest. The
best candidate scores 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from backend.recommender.profile import DEFAULT_ACTION_WEIGHTS, weighted_profile
from backend.recommender.snapshot import CatalogSnapshot, FloatArray, IntArray
from backend.recommender.strategies.base import Recommendation, RecommendRequest
from backend.recommender.strategies.ranking import (
    blocked_mask,
    popularity_fill,
    profile_recommendations,
    top_k,
)


class WeightedStrategy:
    name = "weighted"

    def __init__(
        self,
        *,
        half_life_days: float = 30.0,
        action_weights: Mapping[str, float] = DEFAULT_ACTION_WEIGHTS,
        category_share: float = 0.5,
        max_categories: int = 5,
        max_tags: int = 15,
    ) -> None:
        if not 0.0 <= category_share <= 1.0:
            raise ValueError("category_share must be within 0–1")
        self.half_life_days = half_life_days
        self.action_weights = action_weights
        self.category_share = category_share
        self.max_categories = max_categories
        self.max_tags = max_tags

    def recommend(
        self, snapshot: CatalogSnapshot, request: RecommendRequest
    ) -> list[Recommendation]:
        profile = weighted_profile(
            request.interactions,
            snapshot,
            now=request.now,
            half_life_days=self.half_life_days,
            action_weights=self.action_weights,
        )
        scores = np.zeros(len(snapshot), dtype=np.float64)
        category_points = self._add_points(
            scores,
            profile.top_categories(self.max_categories),
            self.category_share,
            snapshot.category_postings_for,
        )
        tag_points = self._add_points(
            scores,
            profile.top_tags(self.max_tags),
            1.0 - self.category_share,
            snapshot.tag_postings_for,
        )

        blocked = blocked_mask(snapshot, request, profile.interacted)
        chosen = top_k(scores, request.top_n, blocked, snapshot.popularity, positive_only=True)
        if len(chosen):
            # Normalise so the best candidate scores 1; the points shown scale with it.
            best = float(scores[chosen[0]])
            scores /= best
            category_points = {k: v / best for k, v in category_points.items()}
            tag_points = {k: v / best for k, v in tag_points.items()}
        matched = profile_recommendations(
            snapshot,
            profile,
            chosen,
            scores,
            strategy=self.name,
            category_points=category_points,
            tag_points=tag_points,
            detail="matches what you interacted with, recent and purchased items weighing most",
        )
        blocked[chosen] = True
        return matched + popularity_fill(
            snapshot, request.top_n - len(matched), blocked, strategy=self.name, scored=False
        )

    @staticmethod
    def _add_points(
        scores: FloatArray,
        weights: list[tuple[str, float]],
        share: float,
        postings_for: Callable[[str], IntArray | None],
    ) -> dict[str, float]:
        total = sum(w for _, w in weights)
        points: dict[str, float] = {}
        if total <= 0 or share <= 0:
            return points
        for name, weight in weights:
            postings = postings_for(name)
            if postings is None:
                continue
            points[name] = share * weight / total
            scores[postings] += points[name]
        return points
