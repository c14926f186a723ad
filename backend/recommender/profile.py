"""User profiles built from interactions: what the user likes, and how strongly.

Two profiles live here. ``frequency_profile`` is the spec's v1 (plain counts, top 3 categories
and top 5 tags); ``weighted_profile`` weights each action, decays old interactions and keeps
every affinity. Both are pure functions of the interactions and the catalog snapshot.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from backend.recommender.snapshot import CatalogSnapshot

# How much one interaction says about a user's taste, relative to a view.
DEFAULT_ACTION_WEIGHTS: Mapping[str, float] = {
    "view": 1.0,
    "click": 1.5,
    "search": 1.0,
    "wishlist": 3.0,
    "add_to_cart": 4.0,
    "purchase": 6.0,
    "remove_from_cart": 0.0,
}

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    """One past interaction as the engine sees it."""

    action: str
    created_at: datetime
    product_id: uuid.UUID | None = None
    query: str | None = None


@dataclass
class UserProfile:
    """Affinities (category → weight, tag → weight) plus the items behind them."""

    categories: dict[str, float] = field(default_factory=dict)
    tags: dict[str, float] = field(default_factory=dict)
    interacted: set[int] = field(default_factory=set)
    # Per catalog index: the strongest weight any interaction with it carried, and its action.
    item_weights: dict[int, tuple[float, str]] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.categories and not self.tags

    def top_categories(self, k: int) -> list[tuple[str, float]]:
        return _top(self.categories, k)

    def top_tags(self, k: int) -> list[tuple[str, float]]:
        return _top(self.tags, k)


def _top(weights: Mapping[str, float], k: int) -> list[tuple[str, float]]:
    # Highest weight first; ties broken alphabetically so results are reproducible.
    return sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def frequency_profile(
    interactions: Sequence[InteractionRecord], snapshot: CatalogSnapshot
) -> UserProfile:
    """Every product interaction counts once for its category and each of its tags."""
    profile = UserProfile()
    categories: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    for event in interactions:
        i = _catalog_index(event, snapshot)
        if i is None:
            continue
        product = snapshot.products[i]
        profile.interacted.add(i)
        categories[product.category] += 1
        tags.update(product.tags)
        if i not in profile.item_weights:
            profile.item_weights[i] = (1.0, event.action)
    profile.categories = {k: float(v) for k, v in categories.items()}
    profile.tags = {k: float(v) for k, v in tags.items()}
    return profile


def weighted_profile(
    interactions: Sequence[InteractionRecord],
    snapshot: CatalogSnapshot,
    *,
    now: datetime,
    half_life_days: float,
    action_weights: Mapping[str, float] = DEFAULT_ACTION_WEIGHTS,
) -> UserProfile:
    """Action-weighted, time-decayed affinities; search words that are tags count too."""
    profile = UserProfile()
    categories: dict[str, float] = defaultdict(float)
    tags: dict[str, float] = defaultdict(float)
    for event in interactions:
        age_days = max((now - _aware(event.created_at)).total_seconds(), 0.0) / 86400.0
        weight = action_weights.get(event.action, 0.0) * math.pow(0.5, age_days / half_life_days)
        if event.action == "search" and event.query:
            for word in set(_WORD.findall(event.query.lower())):
                if word in snapshot.tag_index:
                    tags[word] += weight
            continue
        i = _catalog_index(event, snapshot)
        if i is None:
            continue
        profile.interacted.add(i)
        if weight <= 0:
            continue
        product = snapshot.products[i]
        categories[product.category] += weight
        for tag in product.tags:
            tags[tag] += weight
        if weight > profile.item_weights.get(i, (0.0, ""))[0]:
            profile.item_weights[i] = (weight, event.action)
    profile.categories = dict(categories)
    profile.tags = dict(tags)
    return profile


def _catalog_index(event: InteractionRecord, snapshot: CatalogSnapshot) -> int | None:
    if event.product_id is None:
        return None
    return snapshot.index.get(event.product_id)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
