"""Item-item collaborative filtering (``implicit`` BM25 or cosine neighbours)."""

from __future__ import annotations

from backend.recommender.cf import ModelStore
from backend.recommender.strategies.blend import BlendConfig, BlendStrategy


def itemknn_strategy(
    models: ModelStore, *, kind: str = "bm25", recency_decay: float = 1.0
) -> BlendStrategy:
    if kind not in ("bm25", "cosine"):
        raise ValueError("kind must be bm25 or cosine")
    config = BlendConfig(weights={"cf": 1.0}, cf_model=kind, recency_decay=recency_decay)
    return BlendStrategy(f"itemknn-{kind}", config, models)
