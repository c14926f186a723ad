"""Matrix factorisation (``implicit`` ALS); the user is folded in from their history."""

from __future__ import annotations

from backend.recommender.cf import ModelStore
from backend.recommender.strategies.blend import BlendConfig, BlendStrategy


def als_strategy(models: ModelStore, *, recency_decay: float = 1.0) -> BlendStrategy:
    config = BlendConfig(weights={"cf": 1.0}, cf_model="als", recency_decay=recency_decay)
    return BlendStrategy("als", config, models)
