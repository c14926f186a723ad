"""Chat retrieval: hard filters from the conversation, then a blended relevance score.

Filtering uses the snapshot's arrays only (category and tag postings, prices, stock), so it
costs a few numpy operations even at 100k products. Text relevance comes from a
``TextRanker``: the semantic search of the retrieval module when it is wired in, otherwise
``KeywordRanker`` (IDF-weighted word overlap with name, tags, category and description),
which keeps chat working offline with no vector index. ``SemanticRanker`` uses the
retrieval module's product embeddings (attached to the snapshot) when they exist. The
shopper's profile (known user, or the guest's feedback in this conversation) boosts what they
like; every item carries the evidence of each part of its score.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from backend.chat.state import ChatFilters
from backend.chat.vocabulary import ChatVocabulary, singular
from backend.recommender.embedder import Embedder
from backend.recommender.evidence import Evidence, PastInteraction, SourceShare, WeightedMatch
from backend.recommender.profile import UserProfile
from backend.recommender.snapshot import CatalogSnapshot, FloatArray, IntArray

log = logging.getLogger(__name__)

BoolArray = np.ndarray[tuple[int], np.dtype[np.bool_]]

WEIGHTS = {"query": 0.45, "similar": 0.35, "profile": 0.2, "tags": 0.3, "popularity": 0.08}
OUT_OF_STOCK_FACTOR = 0.8  # still shown, but after comparable products that can ship
RELEVANT_FRACTION = 0.3  # sorted by price, a product needs this share of the best text score
SEMANTIC_SHARE = 0.5  # of the "similar" and "profile" parts, when the catalog has vectors
_WORD = re.compile(r"[a-z0-9]+")
FIELD_WEIGHTS = {"name": 3.0, "tags": 2.0, "category": 1.5, "description": 1.0}


class TextRanker(Protocol):
    """Relevance of every product to a free-text query, in [0, 1] (0 = unrelated)."""

    def scores(self, snapshot: CatalogSnapshot, query: str) -> FloatArray: ...


@dataclass
class _KeywordIndex:
    postings: dict[str, tuple[IntArray, FloatArray]]
    size: int


class KeywordRanker:
    """IDF-weighted overlap of query words with product text; one index per snapshot."""

    def __init__(self) -> None:
        self._cached: tuple[CatalogSnapshot, _KeywordIndex] | None = None
        self._lock = threading.Lock()

    def scores(self, snapshot: CatalogSnapshot, query: str) -> FloatArray:
        index = self._index(snapshot)
        total = np.zeros(index.size, dtype=np.float64)
        words = list(dict.fromkeys(_WORD.findall(query.lower())))
        for word in words:
            hit = index.postings.get(word)
            if hit is None:
                base = singular(word)
                hit = index.postings.get(base) if base else None
            if hit is not None:
                ids, weights = hit
                np.add.at(total, ids, weights)
        best = float(total.max()) if len(total) else 0.0
        return total / best if best > 0 else total

    def _index(self, snapshot: CatalogSnapshot) -> _KeywordIndex:
        cached = self._cached
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        with self._lock:
            if self._cached is None or self._cached[0] is not snapshot:
                self._cached = (snapshot, _build_index(snapshot))
            return self._cached[1]


def _build_index(snapshot: CatalogSnapshot) -> _KeywordIndex:
    per_word: dict[str, dict[int, float]] = defaultdict(dict)
    for i, p in enumerate(snapshot.products):
        fields = (
            ("name", p.name),
            ("tags", " ".join(p.tags)),
            ("category", p.category),
            ("description", p.description),
        )
        for name, text in fields:
            weight = FIELD_WEIGHTS[name]
            for word in set(_WORD.findall(text.lower())):
                if per_word[word].get(i, 0.0) < weight:
                    per_word[word][i] = weight
    n = max(len(snapshot), 1)
    postings: dict[str, tuple[IntArray, FloatArray]] = {}
    for word, hits in per_word.items():
        idf = math.log(1.0 + n / len(hits))
        ids = np.fromiter(hits.keys(), np.int64, len(hits))
        weights = np.fromiter(hits.values(), np.float64, len(hits)) * idf
        postings[word] = (ids, weights)
    return _KeywordIndex(postings=postings, size=len(snapshot))


@dataclass
class RetrievalRequest:
    filters: ChatFilters
    top_n: int
    profile: UserProfile | None = None
    liked: Sequence[uuid.UUID] = ()
    disliked: Sequence[uuid.UUID] = ()
    exclude: Sequence[uuid.UUID] = ()  # already shown on earlier pages ("show me more")


@dataclass
class Hit:
    index: int
    score: float
    evidence: Evidence


@dataclass
class Retrieved:
    hits: list[Hit]
    candidates: int  # products passing every hard filter
    notes: list[str] = field(default_factory=list)
    query_matched: bool = True


class ChatRetriever:
    def __init__(self, ranker: TextRanker) -> None:
        self.ranker = ranker

    def retrieve(
        self, snapshot: CatalogSnapshot, vocabulary: ChatVocabulary, request: RetrievalRequest
    ) -> Retrieved:
        f = request.filters
        notes: list[str] = []
        n = len(snapshot)
        if n == 0:
            return Retrieved(hits=[], candidates=0, notes=["The shop has no products yet."])
        allowed = _hard_filter(snapshot, vocabulary, f)
        anchor = [f.similar_to.product_id] if f.similar_to else []
        for pid in [*request.disliked, *anchor]:
            i = snapshot.index.get(pid)
            if i is not None:
                allowed[i] = False

        tag_fraction = np.zeros(n)
        if f.include_tags:
            counts = np.zeros(n)
            for tag in f.include_tags:
                postings = snapshot.tag_postings_for(tag)
                if postings is not None:
                    counts[postings] += 1
            tag_fraction = counts / len(f.include_tags)
            every = allowed & (counts == len(f.include_tags))
            if every.any():
                allowed = every
            elif (allowed & (counts > 0)).any():
                allowed = allowed & (counts > 0)
                notes.append(
                    f"Nothing matches all of {_quoted(f.include_tags)} together, so I show "
                    "products with some of them."
                )
            elif allowed.any():
                notes.append(
                    f"Nothing matches {_quoted(f.include_tags)} with your other filters, "
                    "so I left that out."
                )
        # Pages already shown go only now: "show me more" must not loosen the tag filter.
        for pid in request.exclude:
            i = snapshot.index.get(pid)
            if i is not None:
                allowed[i] = False
        candidates = np.flatnonzero(allowed)
        if len(candidates) == 0:
            return Retrieved(hits=[], candidates=0, notes=notes)
        vectors = product_vectors(snapshot)

        parts: dict[str, FloatArray] = {}
        query_matched = True
        if f.query:
            text = self.ranker.scores(snapshot, f.query)[candidates]
            query_matched = bool(text.max() > 0)
            if query_matched:
                parts["query"] = text
        if f.similar_to is not None and f.similar_to.product_id in snapshot.index:
            parts["similar"] = _similarity(
                snapshot, snapshot.index[f.similar_to.product_id], candidates, vectors
            )
        if request.profile is not None and not request.profile.is_empty:
            parts["profile"] = _profile_scores(snapshot, request.profile, candidates, vectors)
        if f.include_tags:
            parts["tags"] = tag_fraction[candidates]
        pop = np.log1p(snapshot.popularity[candidates])
        parts["popularity"] = pop / pop.max() if pop.max() > 0 else pop

        total = np.zeros(len(candidates))
        for name, values in parts.items():
            total += WEIGHTS[name] * values
        in_stock = snapshot.quantities[candidates] > 0
        total = np.where(in_stock, total, total * OUT_OF_STOCK_FACTOR)

        order = _order(snapshot, f, candidates, total, parts.get("query"), request.top_n)
        hits = [
            Hit(
                index=int(candidates[j]),
                score=round(float(total[j]), 4),
                evidence=_evidence(
                    snapshot,
                    f,
                    request,
                    int(candidates[j]),
                    {k: float(v[j]) for k, v in parts.items()},
                    total[j],
                ),
            )
            for j in order
        ]
        return Retrieved(
            hits=hits, candidates=len(candidates), notes=notes, query_matched=query_matched
        )


def _hard_filter(
    snapshot: CatalogSnapshot, vocabulary: ChatVocabulary, f: ChatFilters
) -> BoolArray:
    n = len(snapshot)
    allowed: BoolArray = np.ones(n, dtype=bool)

    def any_of(postings: list[IntArray | None]) -> BoolArray:
        mask: BoolArray = np.zeros(n, dtype=bool)
        for p in postings:
            if p is not None:
                mask[p] = True
        return mask

    if f.categories:
        allowed &= any_of([snapshot.category_postings_for(c) for c in f.categories])
    if f.exclude_categories:
        allowed &= ~any_of([snapshot.category_postings_for(c) for c in f.exclude_categories])
    if f.colours:
        allowed &= any_of([snapshot.tag_postings_for(c) for c in f.colours])
    if f.exclude_colours or f.exclude_tags:
        excluded = [*f.exclude_colours, *f.exclude_tags]
        allowed &= ~any_of([snapshot.tag_postings_for(t) for t in excluded])
    if f.brands:
        allowed &= any_of([vocabulary.brand_postings.get(b) for b in f.brands])
    if f.exclude_brands:
        allowed &= ~any_of([vocabulary.brand_postings.get(b) for b in f.exclude_brands])
    if f.min_price is not None:
        allowed &= snapshot.prices >= f.min_price
    if f.max_price is not None:
        allowed &= snapshot.prices <= f.max_price
    if f.in_stock:
        allowed &= snapshot.quantities > 0
    return allowed


def _order(
    snapshot: CatalogSnapshot,
    f: ChatFilters,
    candidates: IntArray,
    total: FloatArray,
    text: FloatArray | None,
    top_n: int,
) -> list[int]:
    if f.sort != "relevance":
        pool = np.arange(len(candidates))
        if text is not None and (text > 0).any():
            # The cheapest *relevant* products, not the cheapest overall. Semantic scores are
            # rarely exactly 0, so "relevant" is relative to the best match.
            pool = pool[text >= RELEVANT_FRACTION * float(text.max())]
        prices = snapshot.prices[candidates[pool]]
        keys = prices if f.sort == "price_asc" else -prices
        return [int(pool[j]) for j in np.lexsort((-total[pool], keys))[:top_n]]
    k = min(top_n, len(candidates))
    top = np.argpartition(-total, k - 1)[:k] if k < len(candidates) else np.arange(len(total))
    return [int(j) for j in sorted(top, key=lambda j: (-total[j], int(candidates[j])))][:top_n]


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


def _similarity(
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


def _profile_scores(
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


def _evidence(
    snapshot: CatalogSnapshot,
    f: ChatFilters,
    request: RetrievalRequest,
    i: int,
    parts: dict[str, float],
    total: float,
) -> Evidence:
    product = snapshot.products[i]
    own_tags = set(product.tags)
    contributions = {k: WEIGHTS[k] * v for k, v in parts.items() if v > 0}
    whole = sum(contributions.values()) or 1.0
    pop = float(snapshot.popularity[i])
    rank = int((snapshot.popularity > pop).sum()) + 1
    query_words = [w for w in dict.fromkeys(_WORD.findall(f.query.lower()))]
    text = f"{product.name} {' '.join(product.tags)} {product.category} {product.description}"
    product_words = set(_WORD.findall(text.lower()))
    matched_words = [w for w in query_words if w in product_words or singular(w) in product_words]
    details = {
        # Never the raw query: evidence may be quoted, and the shopper's words are not facts.
        "query": (
            "matches your words: " + ", ".join(matched_words)
            if matched_words
            else "close in meaning to what you described"
        ),
        "similar": f"similar to {f.similar_to.name}" if f.similar_to else "",
        "profile": "fits what you have liked and viewed",
        "tags": "has " + ", ".join(t for t in f.include_tags if t in own_tags),
        "popularity": f"#{rank} by shopper activity",
    }
    sources = [
        SourceShare(name=k, share=round(v / whole, 3), detail=details[k])
        for k, v in sorted(contributions.items(), key=lambda kv: -kv[1])
    ]
    categories = (
        [WeightedMatch(name=product.category, weight=1.0)]
        if (product.category in f.categories)
        else []
    )
    profile = request.profile
    if profile is not None and product.category in profile.categories and not categories:
        categories = [
            WeightedMatch(
                name=product.category, weight=round(profile.categories[product.category], 3)
            )
        ]
    requested = [*f.include_tags, *f.colours, *(w for w in matched_words if w in own_tags)]
    tags = [WeightedMatch(name=t, weight=1.0) for t in dict.fromkeys(requested) if t in own_tags]
    if profile is not None:
        known = {t.name for t in tags}
        tags += [
            WeightedMatch(name=t, weight=round(w, 3))
            for t, w in profile.top_tags(10)
            if t in own_tags and t not in known
        ][:3]
    because: list[PastInteraction] = []
    if f.similar_to is not None and "similar" in contributions:
        because.append(
            PastInteraction(
                product_id=f.similar_to.product_id,
                product_name=f.similar_to.name,
                action="similar_to",
            )
        )
    return Evidence(
        strategy="chat",
        score=round(float(total), 4),
        sources=sources,
        matched_categories=categories,
        matched_tags=tags,
        because_of=because,
        popularity_rank=rank,
        interaction_count=int(pop),
    )


def _quoted(words: Sequence[str]) -> str:
    return ", ".join(f"“{w}”" for w in words)


class SemanticRanker:
    """Cosine similarity of the query's embedding to the snapshot's product embeddings (the
    retrieval module's index), blended with keyword overlap so literal matches still count.
    Keyword overlap alone while the catalog has no vectors, or when the embedder fails."""

    def __init__(
        self,
        embedder: Embedder,
        keywords: TextRanker | None = None,
        semantic_weight: float = 0.6,
        cache_size: int = 512,
    ) -> None:
        self.embedder = embedder
        self.keywords = keywords or KeywordRanker()
        self.semantic_weight = semantic_weight
        self._vectors: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._cache_size = cache_size
        self._indexed: tuple[CatalogSnapshot, bool] | None = None
        self._lock = threading.Lock()

    def scores(self, snapshot: CatalogSnapshot, query: str) -> FloatArray:
        words = self.keywords.scores(snapshot, query)
        matrix = snapshot.embeddings
        if matrix is None or not self._has_vectors(snapshot, matrix):
            return words
        try:
            vector = self._embed(query)
        except Exception:  # a broken model must not break the chat: keywords still work
            log.exception("query embedding failed; ranking by keywords only")
            return words
        sims = np.clip(matrix @ vector, 0.0, 1.0).astype(np.float64)
        peak = float(sims.max())
        if peak > 0:
            sims /= peak
        return np.asarray(
            self.semantic_weight * sims + (1 - self.semantic_weight) * words, dtype=np.float64
        )

    def _has_vectors(self, snapshot: CatalogSnapshot, matrix: npt.NDArray[np.float32]) -> bool:
        known = self._indexed
        if known is not None and known[0] is snapshot:
            return known[1]
        ok = matrix.shape[0] == len(snapshot) and bool(np.any(matrix))
        self._indexed = (snapshot, ok)
        return ok

    def _embed(self, query: str) -> npt.NDArray[np.float32]:
        key = " ".join(query.lower().split())
        with self._lock:
            hit = self._vectors.get(key)
            if hit is not None:
                self._vectors.move_to_end(key)
                return hit
        vector: npt.NDArray[np.float32] = self.embedder.encode([key])[0]
        with self._lock:
            self._vectors[key] = vector
            while len(self._vectors) > self._cache_size:
                self._vectors.popitem(last=False)
        return vector
