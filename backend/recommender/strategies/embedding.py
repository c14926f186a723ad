"""Content only: products whose text embedding is closest to the user's recent items."""

from __future__ import annotations

from backend.recommender.strategies.blend import BlendConfig, BlendStrategy


def embedding_strategy(*, recency_decay: float = 0.7) -> BlendStrategy:
    return BlendStrategy(
        "embedding", BlendConfig(weights={"content": 1.0}, recency_decay=recency_decay)
    )
