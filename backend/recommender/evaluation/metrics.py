"""Ranking metrics for leave-one-out (one held-out target per user) and list quality."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Metrics:
    hr10: float
    ndcg10: float
    recall20: float
    coverage: float  # share of the catalogue that appears in some top-10 list
    diversity: float  # intra-list diversity: mean pairwise (1 − cosine) within a top-10
    users: int
    # Per-user values (one entry per target, in order) for intervals and paired tests.
    per_user: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict, repr=False)


def rank_of(ranked: Sequence[int], target: int) -> int | None:
    """0-based position of the target in the list, or None when it is not there."""
    for position, item in enumerate(ranked):
        if item == target:
            return position
    return None


def summarise(
    lists: Sequence[Sequence[int]],
    targets: Sequence[int],
    n_items: int,
    embeddings: npt.NDArray[np.float32] | None,
) -> Metrics:
    """HR@10, NDCG@10, Recall@20 (= HR@20 with one target), coverage and ILD over top-10s."""
    n = len(targets)
    hr10_u, ndcg_u, r20_u = np.zeros(n), np.zeros(n), np.zeros(n)
    seen: set[int] = set()
    ild_sum, ild_n = 0.0, 0
    for u, (ranked, target) in enumerate(zip(lists, targets, strict=True)):
        position = rank_of(ranked[:20], target)
        if position is not None:
            r20_u[u] = 1.0
            if position < 10:
                hr10_u[u] = 1.0
                ndcg_u[u] = 1.0 / math.log2(position + 2)
        top = list(ranked[:10])
        seen.update(top)
        if embeddings is not None and len(top) > 1:
            v = embeddings[np.asarray(top)]
            sims = v @ v.T
            k = len(top)
            ild_sum += float((k * k - sims.sum()) / (k * (k - 1)))
            ild_n += 1
    return Metrics(
        hr10=float(hr10_u.mean()) if n else 0.0,
        ndcg10=float(ndcg_u.mean()) if n else 0.0,
        recall20=float(r20_u.mean()) if n else 0.0,
        coverage=len(seen) / max(n_items, 1),
        diversity=ild_sum / ild_n if ild_n else 0.0,
        users=n,
        per_user={"hr10": hr10_u, "ndcg10": ndcg_u, "recall20": r20_u},
    )
