"""``recommend()``: cache → profile → strategy over the snapshot → evidence → explanation."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.db import repository
from backend.db.models import Interaction, as_utc, utcnow
from backend.errors import InvalidInputError, NotFoundError
from backend.llm.explainer import ExplainedItem, Explainer, ExplanationRequest, ExplanationSource
from backend.llm.prompts import PromptLibrary
from backend.recommender.catalog import CatalogSnapshot, SnapshotManager
from backend.recommender.evidence import Evidence
from backend.recommender.profile import InteractionRecord, weighted_profile
from backend.recommender.strategies import (
    CandidateFilter,
    Recommendation,
    RecommendRequest,
    Strategy,
)
from backend.services.cache import Cache, recommendations_key

log = logging.getLogger(__name__)

HISTORY_LIMIT = 500  # a profile is built from the newest interactions only
SUMMARY_ITEMS = 3


class RecommendedProduct(BaseModel):
    id: uuid.UUID
    name: str
    category: str
    price: Decimal
    image_url: str | None
    in_stock: bool
    score: float
    evidence: Evidence


class RecommendationResult(BaseModel):
    user_id: uuid.UUID
    user_name: str
    recommended_products: list[RecommendedProduct]
    llm_explanation: str
    explanation_source: ExplanationSource
    fallback_reason: str | None = None
    user_behavior_summary: str
    algorithm: str
    cached: bool = False
    generated_at: datetime


class RecommendationService:
    def __init__(
        self,
        *,
        db: Engine,
        snapshots: SnapshotManager,
        strategies: Mapping[str, Strategy],
        default_strategy: str,
        explainer: Explainer,
        prompts: PromptLibrary,
        cache: Cache,
        cache_ttl_seconds: int,
        half_life_days: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
        precompute_max_age_seconds: int = 0,
    ) -> None:
        if default_strategy not in strategies:
            raise ValueError(f"unknown default strategy {default_strategy!r}")
        self.db = db
        self.snapshots = snapshots
        self.strategies = strategies
        self.default_strategy = default_strategy
        self.explainer = explainer
        self.prompts = prompts
        self.cache = cache
        self.cache_ttl_seconds = cache_ttl_seconds
        self.half_life_days = half_life_days
        self.clock = clock
        self.precompute_max_age_seconds = precompute_max_age_seconds
        self.precomputed_hits = 0  # answers served from the worker's precomputed lists

    def recommend(
        self,
        user_id: uuid.UUID,
        *,
        top_n: int,
        strategy: str | None = None,
        filters: CandidateFilter | None = None,
    ) -> RecommendationResult:
        filters = filters or CandidateFilter()
        name = self._strategy_name(strategy)
        key, field = recommendations_key(user_id), f"{name}:{top_n}"
        if filters != CandidateFilter():
            f = filters
            field += f":{f.category}:{f.min_price}:{f.max_price}:{f.in_stock}"
        hit = self.cache.get(key, field)
        if hit is not None:
            return RecommendationResult.model_validate_json(hit).model_copy(update={"cached": True})

        request, recs, now = self._rank(user_id, name, top_n, filters)
        explanation = self.explainer.explain(request)
        result = RecommendationResult(
            user_id=user_id,
            user_name=request.user_name,
            recommended_products=[
                RecommendedProduct(
                    id=item.product.id,
                    name=item.product.name,
                    category=item.product.category,
                    price=item.product.price,
                    image_url=item.product.image_url,
                    in_stock=item.product.quantity > 0,
                    score=round(rec.score, 4),
                    evidence=item.evidence,
                )
                for item, rec in zip(request.items, recs, strict=True)
            ],
            llm_explanation=explanation.text,
            explanation_source=explanation.source,
            fallback_reason=explanation.fallback_reason,
            user_behavior_summary=request.summary,
            algorithm=name,
            generated_at=now,
        )
        self.cache.set(key, field, result.model_dump_json(), self.cache_ttl_seconds)
        return result

    def ranking_version(self, strategy: str, snapshot: CatalogSnapshot) -> str:
        """What a stored list was computed against: the catalog and, for strategies with
        collaborative models, the model version (a retrain makes stored lists stale)."""
        models = getattr(self.strategies[strategy], "models", None)
        current = models.current() if models is not None and hasattr(models, "current") else None
        return f"{snapshot.version}|{getattr(current, 'version', None) or '-'}"

    def _precomputed(
        self,
        user_id: uuid.UUID,
        strategy: str,
        top_n: int,
        snapshot: CatalogSnapshot,
        now: datetime,
    ) -> list[Recommendation] | None:
        """The worker's stored list, when it reflects every event and the current catalog."""
        if self.precompute_max_age_seconds <= 0:
            return None
        with Session(self.db) as session:
            rows = repository.fresh_user_recommendations(
                session=session,
                user_id=user_id,
                strategy=strategy,
                top_n=top_n,
                catalog_version=self.ranking_version(strategy, snapshot),
                not_before=now - timedelta(seconds=self.precompute_max_age_seconds),
            )
        if rows is None:
            return None
        recs = []
        for row in rows:
            index = snapshot.index.get(row.product_id)
            if index is None:
                return None
            evidence = Evidence.model_validate(row.evidence)
            recs.append(Recommendation(index=index, score=row.score, evidence=evidence))
        self.precomputed_hits += 1
        return recs

    def _summary(
        self,
        snapshot: CatalogSnapshot,
        history: Sequence[Interaction],
        records: Sequence[InteractionRecord],
        cart: list[str],
        wishlist: list[str],
        now: datetime,
    ) -> str:
        def recent(action: str) -> list[str]:
            names: dict[str, None] = {}
            for event in history:  # newest first
                if event.action == action and event.product_id in snapshot.index:
                    names[snapshot.products[snapshot.index[event.product_id]].name] = None
            return list(names)[:SUMMARY_ITEMS]

        searches = list(dict.fromkeys(e.query for e in history if e.action == "search" and e.query))
        profile = weighted_profile(records, snapshot, now=now, half_life_days=self.half_life_days)
        return self.prompts.render(
            "user_summary.j2",
            purchased=recent("purchase"),
            viewed=recent("view"),
            carted=cart[:SUMMARY_ITEMS],
            wishlisted=wishlist[:SUMMARY_ITEMS],
            searches=searches[:SUMMARY_ITEMS],
            categories=[c for c, _ in profile.top_categories(3)],
        )

    def explanation_request(
        self, user_id: uuid.UUID, *, top_n: int, strategy: str | None = None
    ) -> ExplanationRequest:
        """The ranked items with evidence and the summary, not yet explained: for callers that
        explain on their own (the streaming endpoint)."""
        request, _, _ = self._rank(user_id, self._strategy_name(strategy), top_n, CandidateFilter())
        return request

    def _strategy_name(self, strategy: str | None) -> str:
        name = strategy or self.default_strategy
        if name not in self.strategies:
            known = ", ".join(sorted(self.strategies))
            raise InvalidInputError(f"unknown algorithm {name!r}; choose one of: {known}")
        return name

    def _rank(
        self, user_id: uuid.UUID, name: str, top_n: int, filters: CandidateFilter
    ) -> tuple[ExplanationRequest, list[Recommendation], datetime]:
        """Load the user, rank with the strategy (or the worker's fresh list) and summarise."""
        with Session(self.db) as session:
            user = repository.get_user(session=session, user_id=user_id)
            if user is None:
                raise NotFoundError("user", user_id)
            history = repository.recent_interactions(
                session=session, user_id=user_id, limit=HISTORY_LIMIT
            )
            cart = [p.name for p, _ in repository.cart(session=session, user_id=user_id)]
            wishlist = [p.name for p in repository.wishlist(session=session, user_id=user_id)]
        now = self.clock()
        snapshot = self.snapshots.get()
        records = [_record(i) for i in history]
        # The worker precomputes unfiltered lists only.
        recs = (
            self._precomputed(user_id, name, top_n, snapshot, now)
            if filters == CandidateFilter()
            else None
        )
        if recs is None:
            recs = self.strategies[name].recommend(
                snapshot,
                RecommendRequest(interactions=records, top_n=top_n, now=now, filters=filters),
            )
        request = ExplanationRequest(
            user_name=user.full_name or user.username,
            summary=self._summary(snapshot, history, records, cart, wishlist, now),
            items=tuple(ExplainedItem(snapshot.products[r.index], r.evidence) for r in recs),
            user_id=user_id,
        )
        return request, recs, now


def _record(interaction: Interaction) -> InteractionRecord:
    return InteractionRecord(
        action=interaction.action,
        created_at=as_utc(interaction.created_at),
        product_id=interaction.product_id,
        query=interaction.query,
    )
