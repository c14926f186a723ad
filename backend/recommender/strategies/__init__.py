"""Recommender strategies, all behind the ``Strategy`` contract in ``base``."""

from __future__ import annotations

from collections.abc import Mapping

from backend.recommender.strategies.base import (
    CandidateFilter,
    Recommendation,
    RecommendRequest,
    Strategy,
)
from backend.recommender.strategies.popularity import PopularityStrategy
from backend.recommender.strategies.rules import RulesStrategy
from backend.recommender.strategies.weighted import WeightedStrategy

__all__ = [
    "CandidateFilter",
    "PopularityStrategy",
    "Recommendation",
    "RecommendRequest",
    "RulesStrategy",
    "Strategy",
    "WeightedStrategy",
    "default_strategies",
]


def default_strategies(*, half_life_days: float) -> Mapping[str, Strategy]:
    strategies: list[Strategy] = [
        RulesStrategy(),
        WeightedStrategy(half_life_days=half_life_days),
        PopularityStrategy(),
    ]
    return {s.name: s for s in strategies}
