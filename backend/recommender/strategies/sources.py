"""Score sources shared by the embedding, collaborative and hybrid strategies.

Each source turns the user's recent items into one score per catalog product (a dense vector
over the snapshot). Recency is by position, newest first: in a shop's sequence the next item
is most like the last few, whatever their timestamps' spacing.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from backend.recommender.cf import CFModels, als_user_scores
from backend.recommender.matvec import matvec
from backend.recommender.profile import DEFAULT_ACTION_WEIGHTS, UserProfile
from backend.recommender.selection import largest
from backend.recommender.snapshot import CatalogSnapshot, FloatArray, IntArray
from backend.recommender.strategies.base import RecommendRequest

Float32Array = npt.NDArray[np.float32]
Scores = npt.NDArray[np.floating]  # a source's scores: float32 or float64, as it computes them
CF_KINDS = ("ease_content", "ease", "bm25", "cosine", "als")


@dataclass(frozen=True, slots=True)
class SparseScores:
    """A source that scores few of the catalogue's items: ``values`` at ``indexes`` (sorted,
    distinct), 0 for every other of the ``size`` items.

    The item-item and transition sources add up a few rows of a sparse matrix: at 100k
    products a shopper's 20 items reach a few thousand products, and the dense array of
    the rest's zeros cost the blend a 100k-row product, its masked maximum and minimum and
    three passes of the sum (``weighted_rows``).
    """

    indexes: IntArray
    values: FloatArray
    size: int

    def dense(self) -> FloatArray:
        out = np.zeros(self.size, dtype=np.float64)
        out[self.indexes] = self.values
        return out

    def at(self, i: int) -> float:
        """Item i's score."""
        pos = int(np.searchsorted(self.indexes, i))
        found = pos < len(self.indexes) and int(self.indexes[pos]) == i
        return float(self.values[pos]) if found else 0.0


SourceScores = Scores | SparseScores  # what a source gives the blend


# ``weighted_rows`` sums over the whole catalogue once its rows hold more than 1/16 of it.
DENSE_SUM_SHARE = 16


def weighted_rows(matrix: sp.csr_matrix, rows: IntArray, weights: FloatArray) -> SparseScores:
    """Σₖ weights[k] · matrix[rows[k]] over its nonzero columns: the arithmetic of
    ``matrix[rows].T @ weights`` (each column's float64 products added row after row, in
    the order of ``rows``), bit for bit, without a dense result."""
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    # Positions of the rows' entries in ``matrix.indices``, one row after the other.
    ends = np.cumsum(lengths)
    positions = np.repeat(starts - (ends - lengths), lengths) + np.arange(
        ends[-1] if len(ends) else 0
    )
    columns = matrix.indices[positions]
    products = matrix.data[positions].astype(np.float64) * np.repeat(
        np.asarray(weights, dtype=np.float64), lengths
    )
    # bincount adds each column's products in the order they come: the order scipy adds them.
    n = matrix.shape[1]
    if len(columns) * DENSE_SUM_SHARE > n:
        # A popular item's transitions reach tens of thousands of items (35k of 100k): sorting
        # them for np.unique cost 1.9 ms where a catalogue-long sum takes ~0.2 ms.
        reached = np.zeros(n, dtype=bool)
        reached[columns] = True
        indexes = np.flatnonzero(reached)
        sums = np.bincount(columns, weights=products, minlength=n)[indexes]
    else:
        indexes, slot = np.unique(columns, return_inverse=True)
        sums = np.bincount(slot, weights=products, minlength=len(indexes))
    return SparseScores(indexes.astype(np.int64), np.asarray(sums, np.float64), n)


def dense(scores: SourceScores) -> Scores:
    """A source's scores as one array over the catalogue."""
    return scores.dense() if isinstance(scores, SparseScores) else scores


def score_at(scores: SourceScores, i: int) -> float:
    """Item i's score from a source."""
    return scores.at(i) if isinstance(scores, SparseScores) else float(scores[i])


@dataclass(frozen=True, slots=True)
class History:
    """The user's distinct past items, newest first, with their weights."""

    items: IntArray
    weights: FloatArray
    actions: tuple[str, ...]
    interacted: frozenset[int]

    @property
    def empty(self) -> bool:
        return len(self.items) == 0


def past_actions(snapshot: CatalogSnapshot, history: History) -> dict[uuid.UUID, str]:
    """Each past product of the shopper → the action behind its history weight."""
    return {
        snapshot.products[int(j)].id: action
        for j, action in zip(history.items.tolist(), history.actions, strict=True)
    }


def past_items_profile(snapshot: CatalogSnapshot, history: History) -> UserProfile:
    """A profile of only the shopper's past items (what ``because_of`` reads), for
    strategies that score without one."""
    return UserProfile(
        item_weights={
            int(j): (float(w), action)
            for j, w, action in zip(
                history.items.tolist(), history.weights.tolist(), history.actions, strict=True
            )
        }
    )


def user_history(
    snapshot: CatalogSnapshot,
    request: RecommendRequest,
    *,
    action_weights: Mapping[str, float] = DEFAULT_ACTION_WEIGHTS,
    recency_decay: float = 0.7,
    max_items: int = 50,
) -> History:
    """Weight = strongest action on the item × ``recency_decay`` ** (its position, newest 0)."""
    events = sorted(
        (e for e in request.interactions if e.product_id is not None),
        key=lambda e: e.created_at,
        reverse=True,
    )
    order: dict[int, tuple[float, str]] = {}
    interacted: set[int] = set()
    for event in events:
        i = snapshot.index.get(event.product_id) if event.product_id else None
        if i is None:
            continue
        interacted.add(i)
        weight = action_weights.get(event.action, 0.0)
        if weight <= 0:
            continue
        if i not in order or weight > order[i][0]:
            order[i] = (max(weight, order.get(i, (0.0, ""))[0]), event.action)
    # Position by most recent meaningful interaction (dict keeps first-seen = newest order).
    items = list(order)[:max_items]
    weights = np.array(
        [order[i][0] * math.pow(recency_decay, rank) for rank, i in enumerate(items)],
        dtype=np.float64,
    )
    return History(
        items=np.asarray(items, dtype=np.int64),
        weights=weights,
        actions=tuple(order[i][1] for i in items),
        interacted=frozenset(interacted),
    )


def content_scores(snapshot: CatalogSnapshot, history: History) -> Float32Array | None:
    """Cosine similarity of every product to the weighted mean of the user's item vectors.

    Large catalogs scan a reduced matrix first (the scan is memory-bound: 154 MB at 100k
    products) and rescore the best candidates exactly; small ones are scored exactly. The
    scores stay float32, as the vectors are: the blend reads them as they are.
    """
    matrix = snapshot.embeddings
    if matrix is None or history.empty:
        return None
    profile = history.weights.astype(np.float32) @ matrix[history.items]
    norm = float(np.linalg.norm(profile))
    if norm == 0.0:
        return None
    profile /= norm
    reduced = reduced_embeddings(snapshot)
    if reduced is None:
        return matvec(matrix, profile)
    basis, projected = reduced
    scores = matvec(projected, basis @ profile)
    best = largest(scores, min(EXACT_RESCORE, len(scores)))
    scores[best] = matvec(matrix[best], profile)
    return scores


# Above this many products the content scan uses a reduced matrix (PCA) plus exact rescoring.
REDUCE_ABOVE = 50_000
REDUCED_DIMS = 96
EXACT_RESCORE = 2_000


def reduced_embeddings(
    snapshot: CatalogSnapshot,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
    """(basis, projected matrix) for a large catalog, built once per snapshot; else None."""
    matrix = snapshot.embeddings
    if matrix is None or len(snapshot) <= REDUCE_ABOVE or matrix.shape[1] <= REDUCED_DIMS:
        return None
    cached = snapshot.derived.get("reduced_embeddings")
    if cached is None:
        # Uncentred PCA (the top eigenvectors of EᵀE) keeps dot products, not distances.
        gram = matrix.T.astype(np.float64) @ matrix
        _, vectors = np.linalg.eigh(gram)
        basis = np.ascontiguousarray(vectors[:, ::-1][:, :REDUCED_DIMS].T, dtype=np.float32)
        cached = (basis, np.ascontiguousarray(matrix @ basis.T))
        snapshot.derived["reduced_embeddings"] = cached
    return cached  # type: ignore[return-value]


def cf_scores(models: CFModels | None, kind: str, history: History) -> FloatArray | None:
    """Collaborative scores from one model over every item; None when that model is not
    trained."""
    scores = cf_source(models, kind, history)
    return None if scores is None else np.asarray(dense(scores), dtype=np.float64)


def cf_source(models: CFModels | None, kind: str, history: History) -> SourceScores | None:
    """Collaborative scores from one model (item-item models: sparse); None when that model
    is not trained."""
    if models is None or history.empty:
        return None
    w = history.weights
    if kind in ("ease", "ease_content"):
        b = models.ease_content if kind == "ease_content" else models.ease
        if b is None:
            return None
        return np.asarray(w.astype(np.float32) @ b[history.items], dtype=np.float64)
    if kind in ("bm25", "cosine"):
        sim = models.bm25 if kind == "bm25" else models.cosine
        if sim is None:
            return None
        return weighted_rows(sim, history.items, w)
    if kind == "als":
        if models.als_items is None:
            return None
        return als_user_scores(
            models.als_items,
            history.items,
            w / max(float(w.max()), 1e-9),
            regularization=models.als_regularization,
            alpha=models.als_alpha,
            gram=models.als_gram_inverse,
        ).astype(np.float64)
    raise ValueError(f"unknown collaborative model {kind!r}; choose one of {CF_KINDS}")


def transition_scores(
    models: CFModels | None, history: History, decay: float = 0.5, last: int = 5
) -> FloatArray | None:
    """``transition_source`` over every item."""
    scores = transition_source(models, history, decay, last)
    return None if scores is None else scores.dense()


def transition_source(
    models: CFModels | None, history: History, decay: float = 0.5, last: int = 5
) -> SparseScores | None:
    """What tends to come next after the user's ``last`` newest items (transition model).

    The newest item weighs 1, the one before ``decay``, and so on: this source is about
    order, so it keeps its own, steeper recency than the other sources.
    """
    if models is None or models.transitions is None or history.empty:
        return None
    items = history.items[:last]
    weights = np.power(decay, np.arange(len(items)), dtype=np.float64)
    return weighted_rows(models.transitions, items, weights)


def item_sequence(
    snapshot: CatalogSnapshot,
    request: RecommendRequest,
    action_weights: Mapping[str, float] = DEFAULT_ACTION_WEIGHTS,
) -> list[int]:
    """The shopper's items in the order they came, oldest first, repeats kept: what a
    sequential model reads (``History`` keeps each item once, newest first)."""
    events = sorted(
        (e for e in request.interactions if e.product_id is not None),
        key=lambda e: e.created_at,
    )
    return [
        i
        for e in events
        if action_weights.get(e.action, 0.0) > 0
        and (i := snapshot.index.get(e.product_id)) is not None  # type: ignore[arg-type]
    ]


def next_item_scores(
    models: CFModels | None, sequence: list[int], temperature: float = 2.0
) -> Float32Array | None:
    """The sequential model's next-item probabilities, relative to its favourite: exp((logit −
    best) / T). Logits have no fixed sign or scale, so ``normalise``'s max-scaling cannot be
    applied to them directly; T = 2 flattens the softmax so more than the first few
    candidates count (chosen on Scientific's validation split, bench/fusion_lab.py).
    Every item is scored, as in the evaluation: the blend sums every item's sources, and
    the scaling needs the best logit of all. In float32 (the model's logits are) and in
    place: at 100k items this takes 0.1 ms where float64 copies took 1.1 ms (medians on the
    busy bench machine)."""
    if models is None or models.next_item is None or not sequence:
        return None
    logits = np.asarray(models.next_item(sequence), dtype=np.float32)
    best = float(logits.max()) if len(logits) else -math.inf
    if not math.isfinite(best):  # -inf: items the model does not know; NaN: skipped too
        finite = np.isfinite(logits)
        if not finite.any():
            return None
        best = float(logits[finite].max())
    scores = np.subtract(logits, np.float32(best))  # a new array: the model's may be shared
    scores /= np.float32(temperature)
    return np.exp(scores, out=scores)


def best_cf_kind(models: CFModels | None) -> str:
    """The strongest model that is trained: EASE with text, EASE, then item-item BM25."""
    if models is not None:
        if models.ease_content is not None:
            return "ease_content"
        if models.ease is not None:
            return "ease"
    return "bm25"


def popularity_scores(snapshot: CatalogSnapshot) -> FloatArray:
    """log-popularity on 0–1: a gentle prior, not a tide that drowns the long tail."""
    logs = np.log1p(np.maximum(snapshot.popularity, 0.0))
    top = float(logs.max()) if len(logs) else 0.0
    return logs / top if top > 0 else logs


def allowed_range(scores: SourceScores, allowed: npt.NDArray[np.bool_]) -> tuple[float, float]:
    """(largest, smallest) score of an allowed item; (-inf, inf) when none is allowed.
    Masked reductions read the scores in place: no 100k-row copy of the allowed ones."""
    if isinstance(scores, SparseScores):
        hit = allowed[scores.indexes]
        values = scores.values[hit]
        largest = float(np.max(values, initial=-np.inf))
        smallest = float(np.min(values, initial=np.inf))
        if np.count_nonzero(allowed) > np.count_nonzero(hit):  # an allowed item scores 0
            largest, smallest = max(largest, 0.0), min(smallest, 0.0)
        return largest, smallest
    return (
        float(np.max(scores, where=allowed, initial=-np.inf)),
        float(np.min(scores, where=allowed, initial=np.inf)),
    )


def extent(score_range: tuple[float, float]) -> float:
    """What ``normalise`` divides by: the largest |score| of an allowed item (0: none)."""
    largest, smallest = score_range
    return max(largest, -smallest, 0.0)


def normalise(scores: SourceScores, blocked: np.ndarray, top: float | None = None) -> Scores:
    """Scale so the best allowed candidate scores 1 (signs kept: EASE weights can be < 0).
    ``top``: the source's ``extent``, when the caller has it already."""
    if top is None:
        top = extent(allowed_range(scores, ~blocked))
    values = dense(scores)
    return values / top if top > 0 else np.zeros_like(values)
