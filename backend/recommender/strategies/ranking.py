"""Shared ranking steps: top-k selection with stable tie-breaks, evidence, popularity fill."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np
import numpy.typing as npt

from backend.recommender.catalog import CatalogSnapshot, FloatArray, IntArray
from backend.recommender.evidence import Evidence, PastInteraction, SourceShare, WeightedMatch
from backend.recommender.profile import UserProfile
from backend.recommender.strategies.base import Recommendation, RecommendRequest

MAX_BECAUSE_OF = 3


def blocked_mask(
    snapshot: CatalogSnapshot, request: RecommendRequest, interacted: Collection[int]
) -> npt.NDArray[np.bool_]:
    """True where a product may not be recommended (filtered out or already seen)."""
    allowed = request.filters.mask(snapshot)
    blocked = np.zeros(len(snapshot), dtype=bool) if allowed is None else ~allowed
    if request.exclude_interacted and interacted:
        blocked[np.fromiter(interacted, np.int64, len(interacted))] = True
    return blocked


def top_k(
    scores: FloatArray,
    k: int,
    blocked: npt.NDArray[np.bool_],
    popularity: FloatArray,
    *,
    positive_only: bool,
) -> IntArray:
    """Indexes of the k best scores; ties go to the more popular, then earlier product."""
    masked = np.where(blocked, -np.inf, scores)
    if positive_only:
        masked[masked <= 0] = -np.inf
    available = int(np.count_nonzero(np.isfinite(masked)))
    k = min(k, available)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    kth = np.partition(masked, len(masked) - k)[len(masked) - k]
    candidates = np.flatnonzero(masked >= kth)
    order = np.lexsort((candidates, -popularity[candidates], -masked[candidates]))
    return candidates[order[:k]]


def popularity_rank(snapshot: CatalogSnapshot, i: int) -> int:
    return int(np.count_nonzero(snapshot.popularity > snapshot.popularity[i])) + 1


def because_of(
    snapshot: CatalogSnapshot,
    profile: UserProfile,
    i: int,
    categories: Iterable[str],
    tags: Iterable[str],
) -> list[PastInteraction]:
    """The user's past items closest to item i: most shared matches first, then weight."""
    wanted_categories, wanted_tags = set(categories), set(tags)
    related: list[tuple[int, float, int, str]] = []
    for j, (weight, action) in profile.item_weights.items():
        past = snapshot.products[j]
        overlap = int(past.category in wanted_categories) + len(wanted_tags.intersection(past.tags))
        if j != i and overlap:
            related.append((overlap, weight, j, action))
    related.sort(key=lambda r: (-r[0], -r[1], r[2]))
    return [
        PastInteraction(
            product_id=snapshot.products[j].id, product_name=snapshot.products[j].name, action=a
        )
        for _, _, j, a in related[:MAX_BECAUSE_OF]
    ]


def profile_recommendations(
    snapshot: CatalogSnapshot,
    profile: UserProfile,
    chosen: IntArray,
    scores: FloatArray,
    *,
    strategy: str,
    category_points: dict[str, float],
    tag_points: dict[str, float],
    detail: str,
) -> list[Recommendation]:
    """Evidence for items chosen by a profile match: which categories/tags earned what."""
    out = []
    for i in chosen.tolist():
        product = snapshot.products[i]
        categories = (
            [
                WeightedMatch(
                    name=product.category, weight=round(category_points[product.category], 4)
                )
            ]
            if product.category in category_points
            else []
        )
        tags = sorted(
            (
                WeightedMatch(name=t, weight=round(tag_points[t], 4))
                for t in dict.fromkeys(product.tags)
                if t in tag_points
            ),
            key=lambda m: (-m.weight, m.name),
        )
        score = float(scores[i])
        out.append(
            Recommendation(
                index=i,
                score=score,
                evidence=Evidence(
                    strategy=strategy,
                    score=round(score, 4),
                    sources=[SourceShare(name=strategy, share=1.0, detail=detail)],
                    matched_categories=categories,
                    matched_tags=tags,
                    because_of=because_of(
                        snapshot, profile, i, (c.name for c in categories), (t.name for t in tags)
                    ),
                    popularity_rank=popularity_rank(snapshot, i),
                    interaction_count=int(snapshot.popularity[i]),
                ),
            )
        )
    return out


def popularity_fill(
    snapshot: CatalogSnapshot,
    k: int,
    blocked: npt.NDArray[np.bool_],
    *,
    strategy: str,
    scored: bool = True,
    detail: str = "among the most popular products in the shop",
) -> list[Recommendation]:
    """Most-interacted products (the cold-start answer), scored 0–1 by popularity.

    A profile strategy that fills its list with popular items passes ``scored=False``: those
    items earned nothing from the profile, so they score 0 and rank below every match.
    """
    if k <= 0:
        return []
    chosen = top_k(snapshot.popularity, k, blocked, snapshot.popularity, positive_only=False)
    top = float(snapshot.popularity.max()) if len(snapshot) else 0.0
    out = []
    for i in chosen.tolist():
        score = float(snapshot.popularity[i]) / top if scored and top > 0 else 0.0
        out.append(
            Recommendation(
                index=i,
                score=score,
                evidence=Evidence(
                    strategy=strategy,
                    score=round(score, 4),
                    sources=[SourceShare(name="popularity", share=1.0, detail=detail)],
                    popularity_rank=popularity_rank(snapshot, i),
                    interaction_count=int(snapshot.popularity[i]),
                ),
            )
        )
    return out
