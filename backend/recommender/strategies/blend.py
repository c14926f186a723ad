"""The blending engine behind the hybrid strategy (and the single-source ones).

Sources score every product: ``content`` (text-embedding similarity to the user's weighted
recent items), ``cf`` (a collaborative model), ``sequence`` (what tends to come next after
the newest items, from the transition model), ``next_item`` (a sequential model's
next-item probabilities after the shopper's ordered items), ``rules`` (category/tag affinity of the
weighted profile) and ``popularity`` (a log-popularity prior, and the whole answer for a
cold start without a segment; with one, the segment's favourites fill it). Each is scaled so
its best allowed candidate scores 1, then blended with configurable weights; the optional
location boost lifts what is sold near the shopper. Filters and "already interacted"
exclusions come first; a diversity step (MMR and an optional per-category cap) picks the
final list from the best candidates. Every item's evidence lists each source that
contributed with its share of the score.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from backend.recommender.cf import CFModels, ModelStore
from backend.recommender.evidence import (
    CoInteraction,
    Evidence,
    SimilarItem,
    with_past_drivers,
)
from backend.recommender.profile import DEFAULT_ACTION_WEIGHTS, UserProfile, weighted_profile
from backend.recommender.snapshot import CatalogSnapshot, FloatArray, IntArray
from backend.recommender.strategies.base import Recommendation, RecommendRequest
from backend.recommender.strategies.ranking import (
    LocationBoost,
    because_of,
    blocked_mask,
    location_boost,
    popularity_fill,
    popularity_rank,
    segment_fill,
    shares,
    top_k,
)
from backend.recommender.strategies.sources import (
    History,
    Scores,
    SourceScores,
    SparseScores,
    allowed_range,
    best_cf_kind,
    cf_source,
    content_scores,
    extent,
    item_sequence,
    next_item_scores,
    normalise,
    past_actions,
    past_items_profile,
    popularity_scores,
    score_at,
    transition_source,
    user_history,
)
from backend.recommender.strategies.weighted import WeightedStrategy

SOURCES = ("content", "cf", "rules", "popularity", "sequence", "next_item")
MAX_CO_INTERACTIONS = 3

DETAILS = {
    "content": "its description is close to items you interacted with recently",
    "cf": "shoppers who interacted with your items also interacted with this ({model})",
    "rules": "matches the categories and tags you interact with most",
    "popularity": "popular in the shop",
    "sequence": "shoppers often pick it right after the items you chose most recently",
    "next_item": "a model of shopping sequences predicts it as your next pick",
}


@dataclass(frozen=True, slots=True)
class BlendConfig:
    """Weights per source (any subset of ``SOURCES``) and the ranking knobs."""

    weights: Mapping[str, float] = field(
        default_factory=lambda: {"content": 0.4, "cf": 0.6, "rules": 0.0, "popularity": 0.0}
    )
    cf_model: str = "auto"  # auto: EASE with text when trained, else EASE, else BM25
    recency_decay: float = 0.7
    max_history: int = 50
    half_life_days: float = 30.0
    # MMR: 1.0 ranks by relevance only; lower trades relevance for variety.
    mmr_lambda: float = 1.0
    mmr_pool: int = 5  # candidates considered per slot
    max_per_category: int | None = None
    # The ``sequence`` source's own recency: weight of the k-th newest item is decay ** k.
    sequence_decay: float = 0.5

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown sources {sorted(unknown)}; known: {SOURCES}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("source weights must be ≥ 0 and not all 0")
        if not 0.0 < self.mmr_lambda <= 1.0:
            raise ValueError("mmr_lambda must be within (0, 1]")
        if not 0.0 < self.recency_decay <= 1.0:
            raise ValueError("recency_decay must be within (0, 1]")


@dataclass(frozen=True, slots=True)
class _Part:
    """One source's weighted, normalised contribution, ``weight · values / top``, read item
    by item for the evidence: only the chosen few items need it, not a 100k-row array each."""

    values: SourceScores
    top: float  # the source's ``extent``; 0: it scores no allowed item, so adds nothing
    weight: float = 1.0

    def at(self, i: int) -> float:
        return self.weight * (score_at(self.values, i) / self.top) if self.top > 0 else 0.0


@dataclass
class _Scored:
    blended: FloatArray
    parts: dict[str, _Part]  # contribution per source
    cf_kind: str | None
    profile: UserProfile | None
    boost: LocationBoost | None = None


@dataclass
class _Sources:
    raw: dict[str, SourceScores]  # each source's scores, as it gave them
    tops: dict[str, float]  # each source's ``extent`` over the allowed items
    cf_kind: str | None
    profile: UserProfile | None


class BlendStrategy:
    """Blend of sources; the named single-source strategies are blends of one."""

    def __init__(
        self,
        name: str,
        config: BlendConfig,
        models: ModelStore | None = None,
        *,
        action_weights: Mapping[str, float] = DEFAULT_ACTION_WEIGHTS,
    ) -> None:
        self.name = name
        self.config = config
        self.models = models
        self.action_weights = action_weights
        self._profile_scorer = WeightedStrategy(half_life_days=config.half_life_days)

    def recommend(
        self, snapshot: CatalogSnapshot, request: RecommendRequest
    ) -> list[Recommendation]:
        history = user_history(
            snapshot,
            request,
            action_weights=self.action_weights,
            recency_decay=self.config.recency_decay,
            max_items=self.config.max_history,
        )
        blocked = blocked_mask(snapshot, request, history.interacted)
        if request.top_n <= 0:
            return []
        boost = location_boost(snapshot, request)
        if request.segment is not None:  # the service's call: too few interactions to go on
            return segment_fill(
                snapshot, request, request.top_n, blocked, strategy=self.name, boost=boost
            )
        models = self._models(snapshot)
        scored = self._score(snapshot, request, history, blocked, models, boost)
        if scored is None:  # cold start, or no source knows anything about this user
            return popularity_fill(
                snapshot, request.top_n, blocked, strategy=self.name, boost=boost
            )
        chosen = self._select(snapshot, scored.blended, blocked, request.top_n)
        past_vectors = (
            snapshot.embeddings[history.items] if snapshot.embeddings is not None else None
        )
        actions = past_actions(snapshot, history)  # the same for every item: once
        recs = [
            self._explain(snapshot, history, scored, models, int(i), actions, past_vectors)
            for i in chosen
        ]
        if len(recs) < request.top_n:
            blocked[chosen] = True
            recs += popularity_fill(
                snapshot, request.top_n - len(recs), blocked, strategy=self.name, scored=False
            )
        return recs

    def _models(self, snapshot: CatalogSnapshot) -> CFModels | None:
        weights = self.config.weights
        if self.models is None or not (
            weights.get("cf") or weights.get("sequence") or weights.get("next_item")
        ):
            return None
        return self.models.for_items(id(snapshot), lambda: [p.id for p in snapshot.products])

    def rank(self, snapshot: CatalogSnapshot, request: RecommendRequest) -> IntArray:
        """The indexes ``recommend`` would return, without building evidence (evaluation)."""
        if request.segment is not None or request.location is not None:
            return np.asarray([r.index for r in self.recommend(snapshot, request)], np.int64)
        history = self._history(snapshot, request)
        blocked = blocked_mask(snapshot, request, history.interacted)
        if request.top_n <= 0:
            return np.empty(0, dtype=np.int64)
        scored = self._score(snapshot, request, history, blocked, self._models(snapshot))
        if scored is None:
            return top_k(
                snapshot.popularity,
                request.top_n,
                blocked,
                snapshot.popularity,
                positive_only=False,
            )
        chosen = self._select(snapshot, scored.blended, blocked, request.top_n)
        if len(chosen) < request.top_n:
            blocked[chosen] = True
            rest = top_k(
                snapshot.popularity,
                request.top_n - len(chosen),
                blocked,
                snapshot.popularity,
                positive_only=False,
            )
            chosen = np.concatenate([chosen, rest])
        return chosen

    def _history(self, snapshot: CatalogSnapshot, request: RecommendRequest) -> History:
        return user_history(
            snapshot,
            request,
            action_weights=self.action_weights,
            recency_decay=self.config.recency_decay,
            max_items=self.config.max_history,
        )

    def parts(
        self, snapshot: CatalogSnapshot, request: RecommendRequest
    ) -> tuple[dict[str, Scores], npt.NDArray[np.bool_]] | None:
        """Each source's normalised, unweighted scores and the blocked mask (None: cold start).

        ``Σ weight · part`` is exactly the blended score, so the evaluation can try many
        weightings from one pass over the users.
        """
        history = user_history(
            snapshot,
            request,
            action_weights=self.action_weights,
            recency_decay=self.config.recency_decay,
            max_items=self.config.max_history,
        )
        blocked = blocked_mask(snapshot, request, history.interacted)
        found = self._sources(snapshot, request, history, blocked, self._models(snapshot))
        if found is None:
            return None
        return {s: normalise(v, blocked, found.tops[s]) for s, v in found.raw.items()}, blocked

    def _score(
        self,
        snapshot: CatalogSnapshot,
        request: RecommendRequest,
        history: History,
        blocked: npt.NDArray[np.bool_],
        models: CFModels | None,
        boost: LocationBoost | None = None,
    ) -> _Scored | None:
        found = self._sources(snapshot, request, history, blocked, models)
        if found is None:
            return None
        weights = self.config.weights
        parts = {s: _Part(v, found.tops[s], weights[s]) for s, v in found.raw.items()}
        blended = np.zeros(len(blocked), dtype=np.float64)
        term = np.empty_like(blended)
        # Σ weight · (score / top), source by source in place: the same float64 arithmetic, in
        # the same order, as summing the normalised arrays, without one 100k-row copy per step.
        # A sparse source adds to its few items only: elsewhere its term is 0, and x + 0 is x
        # (but for a zero's sign, which no comparison sees).
        for part in parts.values():
            if part.top <= 0:
                continue
            if isinstance(part.values, SparseScores):
                few = part.values.values / part.top
                few *= part.weight
                blended[part.values.indexes] += few
            else:
                np.divide(part.values, part.top, out=term, dtype=np.float64)
                term *= part.weight
                blended += term
        if boost is not None:
            boosted = boost.apply(blended)
            parts["location"] = _Part(boosted - blended, top=1.0)
            blended = boosted
        return _Scored(
            blended=blended, parts=parts, cf_kind=found.cf_kind, profile=found.profile, boost=boost
        )

    def _sources(
        self,
        snapshot: CatalogSnapshot,
        request: RecommendRequest,
        history: History,
        blocked: npt.NDArray[np.bool_],
        models: CFModels | None,
    ) -> _Sources | None:
        weights = self.config.weights
        raw: dict[str, SourceScores | None] = {}
        cf_kind: str | None = None
        profile: UserProfile | None = None
        if history.empty:
            return None
        if weights.get("content"):
            raw["content"] = content_scores(snapshot, history)
        if weights.get("cf"):
            kind = self.config.cf_model
            cf_kind = best_cf_kind(models) if kind == "auto" else kind
            raw["cf"] = cf_source(models, cf_kind, history)
        if weights.get("sequence"):
            raw["sequence"] = transition_source(models, history, self.config.sequence_decay)
        if weights.get("next_item"):
            raw["next_item"] = next_item_scores(
                models, item_sequence(snapshot, request, self.action_weights)
            )
        if weights.get("rules"):
            profile = weighted_profile(
                request.interactions,
                snapshot,
                now=request.now,
                half_life_days=self.config.half_life_days,
                action_weights=self.action_weights,
            )
            raw["rules"] = self._rules(snapshot, profile)
        allowed = ~blocked
        ranges = {s: allowed_range(v, allowed) for s, v in raw.items() if v is not None}
        if not any(largest > 0 for largest, _ in ranges.values()):  # nothing personal
            return None
        if weights.get("popularity"):
            raw["popularity"] = popularity = popularity_scores(snapshot)
            ranges["popularity"] = allowed_range(popularity, allowed)
        return _Sources(
            raw={s: v for s, v in raw.items() if v is not None},
            tops={s: extent(r) for s, r in ranges.items()},
            cf_kind=cf_kind,
            profile=profile,
        )

    def _rules(self, snapshot: CatalogSnapshot, profile: UserProfile) -> FloatArray:
        scorer = self._profile_scorer
        scores = np.zeros(len(snapshot), dtype=np.float64)
        scorer._add_points(
            scores,
            profile.top_categories(scorer.max_categories),
            scorer.category_share,
            snapshot.category_postings_for,
        )
        scorer._add_points(
            scores,
            profile.top_tags(scorer.max_tags),
            1.0 - scorer.category_share,
            snapshot.tag_postings_for,
        )
        return scores

    def _select(
        self,
        snapshot: CatalogSnapshot,
        blended: FloatArray,
        blocked: npt.NDArray[np.bool_],
        n: int,
    ) -> IntArray:
        cfg = self.config
        if cfg.mmr_lambda >= 1.0 and cfg.max_per_category is None:
            return top_k(blended, n, blocked, snapshot.popularity, positive_only=True)
        pool = top_k(blended, n * cfg.mmr_pool, blocked, snapshot.popularity, positive_only=True)
        return mmr(snapshot, pool, blended[pool], n, cfg.mmr_lambda, cfg.max_per_category)

    def _explain(
        self,
        snapshot: CatalogSnapshot,
        history: History,
        scored: _Scored,
        models: CFModels | None,
        i: int,
        actions: Mapping[uuid.UUID, str],
        past_vectors: npt.NDArray[np.float32] | None = None,
    ) -> Recommendation:
        sources = shares(
            (
                s,
                part.at(i),
                scored.boost.detail(i)
                if s == "location" and scored.boost is not None
                else DETAILS[s].format(model=_model_label(scored.cf_kind)),
            )
            for s, part in scored.parts.items()
        )
        score = float(scored.blended[i])
        # Without the rules source there is no profile: the shopper's own past items stand in,
        # so the evidence still names the items behind a score.
        profile = scored.profile or past_items_profile(snapshot, history)
        recommendation = Recommendation(
            index=i,
            score=score,
            evidence=Evidence(
                strategy=self.name,
                score=round(score, 4),
                sources=sources,
                because_of=(
                    because_of(
                        snapshot,
                        profile,
                        i,
                        [snapshot.products[i].category],
                        snapshot.products[i].tags,
                    )
                    if profile is not None
                    else []
                ),
                popularity_rank=popularity_rank(snapshot, i),
                interaction_count=int(snapshot.popularity[i]),
                similar_to=similar_past_item(snapshot, history, i, past_vectors),
                co_interactions=co_interactions(snapshot, history, models, i),
                nearby=scored.boost.nearby(i) if scored.boost is not None else None,
            ),
        )
        evidence = with_past_drivers(recommendation.evidence, actions)
        return replace(recommendation, evidence=evidence)


def _model_label(kind: str | None) -> str:
    return {
        "ease_content": "EASE with product text",
        "ease": "EASE",
        "bm25": "item-item BM25",
        "cosine": "item-item cosine",
        "als": "ALS",
    }.get(kind or "", "collaborative model")


def similar_past_item(
    snapshot: CatalogSnapshot,
    history: History,
    i: int,
    past_vectors: npt.NDArray[np.float32] | None = None,
) -> SimilarItem | None:
    """The user's past item closest to item i in embedding space."""
    matrix = snapshot.embeddings
    if matrix is None or history.empty or not np.any(matrix[i]):
        return None
    past_vectors = matrix[history.items] if past_vectors is None else past_vectors
    sims = past_vectors @ matrix[i]
    best = int(np.argmax(sims))
    past = snapshot.products[int(history.items[best])]
    return SimilarItem(
        product_id=past.id,
        product_name=past.name,
        similarity=round(float(np.clip(sims[best], -1.0, 1.0)), 4),
    )


def co_interactions(
    snapshot: CatalogSnapshot, history: History, models: CFModels | None, i: int
) -> list[CoInteraction]:
    """Past items most often interacted with together with item i, with the shopper count."""
    if models is None or models.co_counts is None or history.empty:
        return []
    co = models.co_counts
    begin, end = co.indptr[i], co.indptr[i + 1]  # row i of the CSR, read directly
    columns = co.indices[begin:end]
    if len(columns) == 0:
        return []
    # Columns are sorted (``cf`` keeps them so): binary-search the user's few items.
    pos = np.minimum(np.searchsorted(columns, history.items), len(columns) - 1)
    hit = columns[pos] == history.items
    counts = co.data[begin:end][pos[hit]]
    pairs = sorted(
        zip(counts.tolist(), history.items[hit].tolist(), strict=True),
        key=lambda p: (-p[0], p[1]),
    )
    out = []
    for count, j in pairs[:MAX_CO_INTERACTIONS]:
        if count <= 0:
            break
        past = snapshot.products[int(j)]
        out.append(CoInteraction(product_id=past.id, product_name=past.name, count=int(count)))
    return out


def mmr(
    snapshot: CatalogSnapshot,
    pool: IntArray,
    relevance: FloatArray,
    n: int,
    lam: float,
    max_per_category: int | None,
) -> IntArray:
    """Maximal marginal relevance over the pool, with an optional cap per category.

    Similarity between items is their embedding cosine, or 1/0 for same/other category when
    the snapshot has no embeddings.
    """
    if len(pool) == 0:
        return pool
    top = float(np.abs(relevance).max()) or 1.0
    rel = relevance / top
    matrix = snapshot.embeddings
    if matrix is not None:
        vectors = matrix[pool]
        sim = vectors @ vectors.T
    else:
        codes = snapshot.category_codes[pool]
        sim = (codes[:, None] == codes[None, :]).astype(np.float64)
    codes = snapshot.category_codes[pool]
    chosen: list[int] = []
    per_category: dict[int, int] = {}
    max_sim = np.full(len(pool), -np.inf)
    available = np.ones(len(pool), dtype=bool)
    while len(chosen) < n and available.any():
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = lam * rel - (1.0 - lam) * penalty
        value[~available] = -np.inf
        k = int(np.argmax(value))
        if not np.isfinite(value[k]):
            break
        available[k] = False
        code = int(codes[k])
        if max_per_category is not None and per_category.get(code, 0) >= max_per_category:
            continue
        per_category[code] = per_category.get(code, 0) + 1
        chosen.append(k)
        max_sim = np.maximum(max_sim, sim[k])
    return pool[np.asarray(chosen, dtype=np.int64)]


def hybrid(
    models: ModelStore | None,
    *,
    content: float = 0.4,
    cf: float = 0.6,
    rules: float = 0.0,
    popularity: float = 0.0,
    sequence: float = 0.0,
    next_item: float = 0.0,
    **knobs: object,
) -> BlendStrategy:
    """The default strategy: every source, blended."""
    config = BlendConfig(
        weights={
            "content": content,
            "cf": cf,
            "rules": rules,
            "popularity": popularity,
            "sequence": sequence,
            "next_item": next_item,
        },
        **knobs,  # type: ignore[arg-type]
    )
    return BlendStrategy("hybrid", config, models)
