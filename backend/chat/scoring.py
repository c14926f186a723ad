"""The parts of a chat product's score, on the snapshot's arrays: which products the filters
allow, how close each is to the product pointed at, and how well it fits the shopper's profile.

With product embeddings in the snapshot, similarity and profile fit blend the tag and category
overlap with the embedding cosine (``SEMANTIC_SHARE``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from backend.chat.state import VALUE_FILTERS, ChatFilters
from backend.chat.vocabulary import ChatVocabulary, Kind
from backend.recommender.profile import UserProfile
from backend.recommender.snapshot import CatalogSnapshot, FloatArray, IntArray

BoolArray = np.ndarray[tuple[int], np.dtype[np.bool_]]

# Each part's weight in a product's total score (a part is in [0, 1]).
WEIGHTS = {"query": 0.45, "similar": 0.35, "profile": 0.2, "tags": 0.3, "popularity": 0.08}
SEMANTIC_SHARE = 0.5  # of the "similar" and "profile" parts, when the catalog has vectors


def hard_filter(snapshot: CatalogSnapshot, vocabulary: ChatVocabulary, f: ChatFilters) -> BoolArray:
    """Products every filter allows. Wanted tags are not among them: the retriever loosens
    those when nothing has them all."""
    n = len(snapshot)
    allowed: BoolArray = np.ones(n, dtype=bool)
    postings_of: dict[Kind, Callable[[str], IntArray | None]] = {
        "category": snapshot.category_postings_for,
        "tag": snapshot.tag_postings_for,
        "colour": snapshot.tag_postings_for,
        "brand": vocabulary.brand_postings.get,
    }

    def any_of(kind: Kind, values: list[str]) -> BoolArray:
        mask: BoolArray = np.zeros(n, dtype=bool)
        for value in values:
            postings = postings_of[kind](value)
            if postings is not None:
                mask[postings] = True
        return mask

    for kind in VALUE_FILTERS:
        wanted: list[str] = getattr(f, kind.wanted)
        if wanted and kind.kind != "tag":
            allowed &= any_of(kind.kind, wanted)
        excluded: list[str] = getattr(f, kind.excluded)
        if excluded:
            allowed &= ~any_of(kind.kind, excluded)
    if f.min_price is not None:
        allowed &= snapshot.prices >= f.min_price
    if f.max_price is not None:
        allowed &= snapshot.prices <= f.max_price
    if f.in_stock:
        allowed &= snapshot.quantities > 0
    return allowed


def product_vectors(snapshot: CatalogSnapshot) -> npt.NDArray[np.float32] | None:
    """The snapshot's product embeddings when every row belongs to it and some are set."""
    matrix = snapshot.embeddings
    if matrix is None or matrix.shape[0] != len(snapshot):
        return None
    known = snapshot.derived.get("chat_has_vectors")
    if known is None:
        known = bool(np.any(matrix))
        snapshot.derived["chat_has_vectors"] = known
    return matrix if known else None


def _cosine(
    vectors: npt.NDArray[np.float32], query: npt.NDArray[np.float32], candidates: IntArray
) -> FloatArray:
    norm = float(np.linalg.norm(query))
    if norm == 0:
        return np.zeros(len(candidates))
    sims = np.clip(vectors[candidates] @ (query / norm), 0.0, 1.0)
    return np.asarray(sims, dtype=np.float64)


def similarity(
    snapshot: CatalogSnapshot,
    anchor: int,
    candidates: IntArray,
    vectors: npt.NDArray[np.float32] | None = None,
) -> FloatArray:
    """Tag Jaccard with the product pointed at, plus a bonus for the same category; blended
    with the embedding cosine when the catalog has vectors."""
    tags = set(snapshot.products[anchor].tags)
    shared = np.zeros(len(snapshot))
    for tag in tags:
        postings = snapshot.tag_postings_for(tag)
        if postings is not None:
            shared[postings] += 1
    sizes = np.fromiter(
        (len(snapshot.products[i].tags) for i in candidates), np.float64, len(candidates)
    )
    overlap = shared[candidates]
    jaccard = overlap / np.maximum(sizes + len(tags) - overlap, 1.0)
    same = snapshot.category_codes[candidates] == snapshot.category_codes[anchor]
    tags_and_category = np.asarray(0.7 * jaccard + 0.3 * same, dtype=np.float64)
    if vectors is None or not np.any(vectors[anchor]):
        return tags_and_category
    semantic = _cosine(vectors, vectors[anchor], candidates)
    return (1 - SEMANTIC_SHARE) * tags_and_category + SEMANTIC_SHARE * semantic


def profile_scores(
    snapshot: CatalogSnapshot,
    profile: UserProfile,
    candidates: IntArray,
    vectors: npt.NDArray[np.float32] | None = None,
) -> FloatArray:
    """Category and tag affinities; with vectors, also the cosine to the weighted mean
    embedding of the products behind the profile (what they bought, liked, viewed)."""
    scores = np.zeros(len(snapshot))
    if profile.categories:
        weights = np.zeros(len(snapshot.category_names))
        for name, w in profile.categories.items():
            code = snapshot.category_index.get(name)
            if code is not None:
                weights[code] = w
        scores += weights[snapshot.category_codes] / max(max(profile.categories.values()), 1e-9)
    top_tags = profile.top_tags(20)
    if top_tags:
        best = max(w for _, w in top_tags) or 1.0
        for tag, w in top_tags:
            postings = snapshot.tag_postings_for(tag)
            if postings is not None:
                scores[postings] += 0.5 * w / best
    values = scores[candidates]
    peak = values.max() if len(values) else 0.0
    affinities = values / peak if peak > 0 else values
    if vectors is None or not profile.item_weights:
        return affinities
    items = np.fromiter(profile.item_weights, np.int64, len(profile.item_weights))
    weights = np.fromiter((w for w, _ in profile.item_weights.values()), np.float64, len(items))
    taste = (weights[:, None] * vectors[items]).sum(axis=0)
    semantic = _cosine(vectors, taste.astype(np.float32), candidates)
    top = float(semantic.max()) if len(semantic) else 0.0
    if top > 0:
        semantic = semantic / top
    return np.asarray(
        (1 - SEMANTIC_SHARE) * affinities + SEMANTIC_SHARE * semantic, dtype=np.float64
    )
