"""Chat retrieval: hard filters from the conversation, then a blended relevance score.

Filtering and the score parts (``scoring``) use the snapshot's arrays only (category and tag
postings, prices, stock), so they cost a few numpy operations even at 100k products; each
picked product carries its ``evidence``. Text relevance comes from a
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
import threading
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from backend.chat.evidence import chat_evidence
from backend.chat.scoring import WEIGHTS, hard_filter, product_vectors, profile_scores, similarity
from backend.chat.state import ChatFilters
from backend.chat.vocabulary import ChatVocabulary
from backend.recommender.embedder import Embedder
from backend.recommender.profile import UserProfile
from backend.recommender.snapshot import CatalogSnapshot, FloatArray, IntArray
from backend.recommender.strategies.base import Recommendation
from backend.text import singular, terms

log = logging.getLogger(__name__)

OUT_OF_STOCK_FACTOR = 0.8  # still shown, but after comparable products that can ship
RELEVANT_FRACTION = 0.3  # sorted by price, a product needs this share of the best text score
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
        words = list(dict.fromkeys(terms(query)))
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
            for word in set(terms(text)):
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
class Retrieved:
    items: list[Recommendation]
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
            return Retrieved(items=[], candidates=0, notes=["The shop has no products yet."])
        allowed = hard_filter(snapshot, vocabulary, f)
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
            return Retrieved(items=[], candidates=0, notes=notes)
        vectors = product_vectors(snapshot)

        parts: dict[str, FloatArray] = {}
        query_matched = True
        if f.query:
            text = self.ranker.scores(snapshot, f.query)[candidates]
            query_matched = bool(text.max() > 0)
            if query_matched:
                parts["query"] = text
        if f.similar_to is not None and f.similar_to.product_id in snapshot.index:
            parts["similar"] = similarity(
                snapshot, snapshot.index[f.similar_to.product_id], candidates, vectors
            )
        if request.profile is not None and not request.profile.is_empty:
            parts["profile"] = profile_scores(snapshot, request.profile, candidates, vectors)
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
        items = [
            Recommendation(
                index=int(candidates[j]),
                score=round(float(total[j]), 4),
                evidence=chat_evidence(
                    snapshot,
                    f,
                    request.profile,
                    int(candidates[j]),
                    {k: float(v[j]) for k, v in parts.items()},
                    total[j],
                ),
            )
            for j in order
        ]
        return Retrieved(
            items=items, candidates=len(candidates), notes=notes, query_matched=query_matched
        )


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
