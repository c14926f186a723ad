"""One split's snapshot, requests and models, and what stays the same across settings.

The grids try many settings of the same models on the same histories; what does not change
between settings is computed once here: the item Gram matrix XᵀX, the text Gram EEᵀ, and
every EASE matrix already inverted for a (λ, α) (the final models reuse the grid's).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from backend.recommender.cf import (
    CFModels,
    CFParams,
    ModelStore,
    ease_weights,
    fit_als,
    item_gram,
    train,
    user_items_matrix,
)
from backend.recommender.embedder import Embedder, Vectors, product_text
from backend.recommender.evaluation.dataset import LeaveOneOutData, Split
from backend.recommender.evaluation.metrics import Metrics, summarise
from backend.recommender.profile import InteractionRecord
from backend.recommender.snapshot import CatalogSnapshot
from backend.recommender.strategies import RecommendRequest, Strategy

T = TypeVar("T")
Track = Callable[[Iterable[T], str, int], Iterator[T]]
EPOCH = datetime(2018, 1, 1, tzinfo=UTC)


def no_track(items: Iterable[T], _label: str, _total: int) -> Iterator[T]:
    return iter(items)


def item_embeddings(
    data: LeaveOneOutData, embedder: Embedder, cache_dir: Path | None
) -> tuple[Vectors, bool]:
    """Every item's product text encoded once (cached on disk by text and model); and
    whether it came from the cache."""
    texts = [product_text(p.name, p.category, p.tags, p.description) for p in data.products]
    digest = hashlib.sha256(("\n".join(texts) + embedder.model_id).encode()).hexdigest()[:16]
    path = cache_dir / f"{data.name}-{digest}.npy" if cache_dir else None
    if path is not None and path.exists():
        cached: Vectors = np.load(path).astype(np.float32)
        return cached, True
    vectors = embedder.encode(texts, batch_size=64)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors, False


class SplitContext:
    """Snapshot, requests and models for one split (models learn from its histories)."""

    def __init__(self, data: LeaveOneOutData, split: Split, embeddings: Vectors) -> None:
        self.split = split
        self.ids = [p.id for p in data.products]
        counts = np.bincount(
            np.fromiter(itertools.chain.from_iterable(split.histories), np.int64),
            minlength=data.n_items,
        )
        popularity = {pid: float(c) for pid, c in zip(self.ids, counts, strict=True) if c}
        self.snapshot = CatalogSnapshot.build(data.products, popularity, version=split.name)
        self.snapshot.embeddings = embeddings
        self.embeddings = embeddings
        rows = [(u, i, 1.0) for u, h in enumerate(split.histories) for i in h]
        self.user_items = user_items_matrix(rows, len(split.histories), data.n_items)
        self.user_items.data[:] = 1.0  # reviews: one "purchase" each, repeats count once
        self.requests = [self._request(h) for h in split.histories]
        self._gram: npt.NDArray[np.float64] | None = None
        self._text_gram: npt.NDArray[np.float64] | None = None
        self._ease: dict[tuple[float, float], npt.NDArray[np.float32]] = {}
        self._als: dict[tuple[int, float], tuple[npt.NDArray[np.float32], ...]] = {}

    def _request(self, history: list[int]) -> RecommendRequest:
        events = [
            InteractionRecord(
                action="purchase",
                created_at=EPOCH + timedelta(hours=j),
                product_id=self.ids[i],
            )
            for j, i in enumerate(history)
        ]
        return RecommendRequest(
            interactions=events, top_n=20, now=EPOCH + timedelta(hours=len(history) + 1)
        )

    def ease(self, lam: float, alpha: float = 0.0) -> npt.NDArray[np.float32]:
        """EASE (with the text Gram at weight ``alpha``), inverted once per (λ, α)."""
        key = (float(lam), float(alpha))
        if key not in self._ease:
            if self._gram is None:
                self._gram = item_gram(self.user_items)
            if alpha > 0 and self._text_gram is None:
                e = np.asarray(self.embeddings, dtype=np.float64)
                self._text_gram = e @ e.T
            self._ease[key] = ease_weights(
                None,
                lam=lam,
                gram=self._gram,
                text_gram=self._text_gram if alpha > 0 else None,
                content_alpha=alpha,
            )
        return self._ease[key]

    def als(self, factors: int, reg: float) -> tuple[npt.NDArray[np.float32], ...]:
        """(user factors, item factors) of ALS, fitted once per setting: the grid's fit of
        the chosen setting is the final model's (a fit at 1,024 factors takes minutes)."""
        key = (int(factors), float(reg))
        if key not in self._als:
            self._als[key] = fit_als(
                self.user_items, CFParams(als_factors=key[0], als_regularization=key[1])
            )
        return self._als[key]

    def models(self, params: CFParams, kinds: Sequence[str]) -> ModelStore:
        """Trained models; EASE and ALS come from the per-setting caches."""
        fitted: CFModels = train(
            self.user_items,
            self.ids,
            params=params,
            item_embeddings=self.embeddings,
            kinds=[k for k in kinds if k not in ("ease", "ease_content", "als")],
            version=self.split.name,
            sequences=self.split.histories,
        )
        if "als" in kinds:
            fitted.als_items = self.als(params.als_factors, params.als_regularization)[1]
        if "ease" in kinds:
            fitted.ease = self.ease(params.ease_lambda)
        if "ease_content" in kinds and params.ease_content_alpha > 0:
            fitted.ease_content = self.ease(params.ease_lambda, params.ease_content_alpha)
        return ModelStore(fitted)

    def decayed(self, decay: float) -> sp.csr_matrix:
        """Users × items with weight ``decay`` ** (position from the newest item)."""
        rows = [
            (u, i, decay ** (len(h) - 1 - j))
            for u, h in enumerate(self.split.histories)
            for j, i in enumerate(h)
        ]
        return user_items_matrix(rows, len(self.split.histories), self.user_items.shape[1])

    def matrix_ndcg(self, score: Callable[[int, sp.csr_matrix], npt.NDArray[np.float32]]) -> float:
        """Validation NDCG@10 of ``score(first user, user rows) → users × items``.

        The grid search's fast path: one matrix product per block of users instead of one
        request per user. It ranks exactly as the single-model strategies do (their history
        weights are all 1 for these baselines), so the choice carries over.
        """
        total = 0.0
        targets = np.asarray(self.split.targets)
        for start in range(0, self.user_items.shape[0], 2048):
            rows = self.user_items[start : start + 2048]
            scores = np.asarray(score(start, rows), dtype=np.float64)
            scores[rows.nonzero()] = -np.inf
            target_scores = scores[np.arange(len(scores)), targets[start : start + 2048]]
            above = (scores > target_scores[:, None]).sum(axis=1)
            hit = np.isfinite(target_scores) & (above < 10)
            total += float((hit / np.log2(above + 2.0)).sum())
        return total / max(len(targets), 1)

    def run(self, strategy: Strategy, track: Track[RecommendRequest], label: str) -> Metrics:
        # Blend strategies can skip building evidence; the contract test checks that ``rank``
        # returns exactly what ``recommend`` would.
        rank = getattr(strategy, "rank", None)
        lists = [
            rank(self.snapshot, request).tolist()
            if rank is not None
            else [r.index for r in strategy.recommend(self.snapshot, request)]
            for request in track(self.requests, label, len(self.requests))
        ]
        return summarise(lists, self.split.targets, len(self.snapshot), self.embeddings)


def times(
    left: sp.csr_matrix | npt.NDArray[np.float32], right: sp.csr_matrix | npt.NDArray[np.float32]
) -> Callable[[int, sp.csr_matrix], npt.NDArray[np.float32]]:
    """Scores of a block of users: their rows of ``left`` times ``right``."""

    def score(start: int, rows: sp.csr_matrix) -> npt.NDArray[np.float32]:
        product = left[start : start + rows.shape[0]] @ right
        if isinstance(product, sp.spmatrix):
            return np.asarray(product.toarray())
        return np.asarray(product)

    return score
