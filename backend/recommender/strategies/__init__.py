"""Recommender strategies, all behind the ``Strategy`` contract in ``base``."""

from __future__ import annotations

from collections.abc import Mapping

from backend.recommender.cf import ModelStore
from backend.recommender.strategies.als import als_strategy
from backend.recommender.strategies.base import (
    CandidateFilter,
    Recommendation,
    RecommendRequest,
    Strategy,
)
from backend.recommender.strategies.blend import BlendConfig, BlendStrategy
from backend.recommender.strategies.ease import ease_strategy
from backend.recommender.strategies.embedding import embedding_strategy
from backend.recommender.strategies.itemknn import itemknn_strategy
from backend.recommender.strategies.popularity import PopularityStrategy
from backend.recommender.strategies.rules import RulesStrategy
from backend.recommender.strategies.weighted import WeightedStrategy

__all__ = [
    "BlendConfig",
    "BlendStrategy",
    "CandidateFilter",
    "PopularityStrategy",
    "Recommendation",
    "RecommendRequest",
    "RulesStrategy",
    "Strategy",
    "WeightedStrategy",
    "default_strategies",
]


def default_strategies(
    *,
    half_life_days: float,
    models: ModelStore | None = None,
    hybrid_config: BlendConfig | None = None,
) -> Mapping[str, Strategy]:
    """Every strategy by name; ``hybrid`` and the collaborative ones share ``models``."""
    store = models if models is not None else ModelStore()
    strategies: list[Strategy] = [
        RulesStrategy(),
        WeightedStrategy(half_life_days=half_life_days),
        PopularityStrategy(),
        embedding_strategy(),
        itemknn_strategy(store, kind="bm25"),
        itemknn_strategy(store, kind="cosine"),
        als_strategy(store),
        ease_strategy(store),
        BlendStrategy("hybrid", hybrid_config or BlendConfig(half_life_days=half_life_days), store),
    ]
    return {s.name: s for s in strategies}
