"""EASE (Steck 2019): a closed-form item-item linear model, a strong published baseline."""

from __future__ import annotations

from backend.recommender.cf import ModelStore
from backend.recommender.strategies.blend import BlendConfig, BlendStrategy


def ease_strategy(models: ModelStore, *, recency_decay: float = 1.0) -> BlendStrategy:
    config = BlendConfig(weights={"cf": 1.0}, cf_model="ease", recency_decay=recency_decay)
    return BlendStrategy("ease", config, models)
