"""``recommend()``: cache → profile → strategy over the snapshot → evidence → explanation."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.db import crud
from backend.db.history import recent_history
from backend.db.models import utcnow
from backend.errors import InvalidInputError, NotFoundError
from backend.infra.cache import Cache, recommendations_key
from backend.infra.explanation_queue import ExplanationJob
from backend.llm.explainer import Explainer
from backend.llm.explanation_cache import CachedExplainer
from backend.llm.prompts import PromptLibrary
from backend.llm.writer import ExplainedItem, Explanation, ExplanationRequest
from backend.observability.metrics import Metrics
from backend.recommender.evidence import Evidence
from backend.recommender.profile import InteractionRecord, weighted_profile
from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager
from backend.recommender.strategies import (
    CandidateFilter,
    Recommendation,
    RecommendRequest,
    Strategy,
)
from backend.services.explanation_choice import (
    ExplainMode,
    ExplanationJobs,
    choose_explanation,
    stream_path,
)
from backend.services.schemas import RecommendationResult, RecommendedProduct, cached_json

if TYPE_CHECKING:
    from backend.jobs.impressions import ImpressionLogger
    from backend.services.experiments import Arm, ExperimentService
    from backend.services.location import Located, LocationService
    from backend.services.segments import SegmentService

log = logging.getLogger(__name__)

SUMMARY_ITEMS = 3


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
        metrics: Metrics | None = None,
        experiments: ExperimentService | None = None,
        impressions: ImpressionLogger | None = None,
        attribution_window: timedelta = timedelta(hours=24),
        segments: SegmentService | None = None,
        location: LocationService | None = None,
        jobs: ExplanationJobs | None = None,
        on_served: Callable[[str, str], None] | None = None,
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
        self.metrics = metrics
        self.precomputed_hits = 0  # answers served from the worker's precomputed lists
        # Variants of the running experiment (only when the caller names no algorithm), and
        # the impression log (cached answers included); None in tests that need neither.
        self.experiments = experiments
        self.impressions = impressions
        self.attribution_window = attribution_window  # of impressions outside experiments
        # Cold-start segments and the location boost (which its own setting turns on).
        self.segments = segments
        self.location = location
        # The explanation queue (None: no LLM, or explanations are written in the request),
        # and who counts each answer's explanation source and status.
        self.jobs = jobs
        self.on_served = on_served

    def recommend(
        self,
        user_id: uuid.UUID,
        *,
        top_n: int,
        strategy: str | None = None,
        filters: CandidateFilter | None = None,
        explain: ExplainMode = "auto",
    ) -> RecommendationResult:
        answer = self._answer(user_id, top_n, strategy, filters, explain)
        if isinstance(answer, str):
            return RecommendationResult.model_validate_json(answer)
        return answer[0]

    def recommend_json(
        self,
        user_id: uuid.UUID,
        *,
        top_n: int,
        strategy: str | None = None,
        filters: CandidateFilter | None = None,
        explain: ExplainMode = "auto",
    ) -> bytes:
        """The same answer as JSON bytes: a cache hit goes out as stored, without being
        parsed into models and serialised again (the hot path of GET /recommend)."""
        answer = self._answer(user_id, top_n, strategy, filters, explain)
        return (answer if isinstance(answer, str) else answer[1]).encode()

    def _answer(
        self,
        user_id: uuid.UUID,
        top_n: int,
        strategy: str | None,
        filters: CandidateFilter | None,
        explain: ExplainMode = "auto",
    ) -> str | tuple[RecommendationResult, str]:
        """The cached JSON (stored with ``cached: true``), or a freshly computed result and
        its JSON (serialised once, for the response and the cache both)."""
        filters = filters or CandidateFilter()
        arm = self._arm(user_id, strategy)
        name = self._strategy_name(strategy or (arm.strategy if arm else None))
        key, field = recommendations_key(user_id), _field(name, top_n, filters, arm, explain)
        hit = self.cache.get(key, field)
        self._count("response", hit is not None)
        if hit is not None:
            self._shown(hit, arm)  # the logger parses the JSON off the request path
            self._served(name, "cached")
            llm = '"explanation_source":"llm"' in hit  # no parsing on the hot path
            pending = not llm and '"explanation_status":"pending"' in hit
            status = "ready" if llm else "pending" if pending else "template"
            self._explained("llm" if llm else "template", status)
            return hit

        # Read before the database: an event invalidating the user while we compute makes
        # the version stale, and the list is then not cached (it may predate the event).
        version = self.cache.version(key)
        request, recs, now = self._rank(user_id, name, top_n, filters, arm)
        explanation, status, cacheable = choose_explanation(
            self._explainer(arm),
            request,
            self.jobs,
            strategy=strategy,
            top_n=top_n,
            filters=filters,
            explain=explain,
        )
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
            explanation_status=status,
            explanation_stream=(
                stream_path(user_id, top_n, strategy, filters) if status == "pending" else None
            ),
            fallback_reason=explanation.fallback_reason,
            user_behavior_summary=request.summary,
            algorithm=name,
            generated_at=now,
            experiment=arm.ref if arm is not None else None,
        )
        body = result.model_dump_json()
        if version is not None and cacheable:
            stored = cached_json(result, body)
            self.cache.set_if_version(key, field, stored, self.cache_ttl_seconds, version)
        self._shown(result, arm)
        self._served(name, explanation.source)
        self._explained(explanation.source, status)
        return result, body

    def settle(self, job: ExplanationJob, explanation: Explanation) -> bool:
        """Put a finished job's explanation into the user's cached answer that said pending
        (off the request path: the next request is a cache hit, not a new ranking). False
        when there is no such answer any more (an event since, or a different list)."""
        arm = self._arm(job.user_id, job.strategy or None)
        name = self._strategy_name(job.strategy or (arm.strategy if arm else None))
        filters = CandidateFilter(**dict(job.filters))
        key, field = recommendations_key(job.user_id), _field(name, job.top_n, filters, arm, "auto")
        version = self.cache.version(key)  # before the read: an event since wins
        raw = self.cache.get(key, field)
        if raw is None or version is None:
            return False
        answer = RecommendationResult.model_validate_json(raw)
        shown = tuple(p.id for p in answer.recommended_products)
        if answer.explanation_status != "pending" or shown != job.item_ids:
            return False
        settled = answer.model_copy(
            update={
                "llm_explanation": explanation.text,
                "explanation_source": explanation.source,
                "explanation_status": "ready" if explanation.source == "llm" else "template",
                "fallback_reason": explanation.fallback_reason,
                "explanation_stream": None,
            }
        )
        stored = settled.model_dump_json()
        return self.cache.set_if_version(key, field, stored, self.cache_ttl_seconds, version)

    def answer_cached(self, user_id: uuid.UUID, *, top_n: int) -> bool:
        """Whether the user's default answer (``GET /recommend`` without parameters) is in the
        response cache. Events invalidate it, so one found there was ranked after the user's
        last event: a list precomputed now would not be read before their next one."""
        arm = self._arm(user_id, None)
        name = self._strategy_name(arm.strategy if arm else None)
        field = _field(name, top_n, CandidateFilter(), arm, "auto")
        return self.cache.get(recommendations_key(user_id), field) is not None

    def _explained(self, source: str, status: str) -> None:
        if self.on_served is not None:
            self.on_served(source, status)

    def prepare_explanation(self, user_id: uuid.UUID, *, top_n: int, priority: int) -> str:
        """Queue the explanation of the user's default list (the event worker, after their
        events): "queued", "duplicate", "full", or "skipped" without a queue or LLM."""
        request, explainer = self.explanation_job(user_id, top_n=top_n)
        if self.jobs is None or not isinstance(explainer, CachedExplainer) or not request.items:
            return "skipped"
        if explainer.lookup(request) is not None:
            return "skipped"
        job = ExplanationJob(
            user_id=user_id,
            strategy="",
            top_n=top_n,
            item_ids=tuple(item.product.id for item in request.items),
            version=explainer.cache_version(),
            priority=priority,
        )
        return self.jobs.submit(job)

    def _count(self, cache: str, hit: bool) -> None:
        if self.metrics is not None:
            self.metrics.cache_requests.labels(cache, "hit" if hit else "miss").inc()

    def _served(self, algorithm: str, source: str) -> None:
        """One answer sent; ``source`` is the explanation's (llm, template) or "cached"."""
        if self.metrics is not None:
            self.metrics.recommendations.labels(algorithm, source).inc()

    def _arm(self, user_id: uuid.UUID, strategy: str | None) -> Arm | None:
        """The experiment variant for this user; a caller naming an algorithm opts out."""
        if strategy is not None or self.experiments is None:
            return None
        return self.experiments.assign(user_id)

    def _shown(self, result: RecommendationResult | str, arm: Arm | None) -> None:
        """Queue the impressions (no database work here: the logger writes in batches)."""
        if self.impressions is not None:
            window = arm.window if arm is not None else self.attribution_window
            self.impressions.log(result, at=self.clock(), window=window)

    def build_request(
        self,
        user: Located,
        records: Sequence[InteractionRecord],
        *,
        top_n: int,
        now: datetime,
        filters: CandidateFilter | None = None,
    ) -> RecommendRequest:
        """The strategy's input, with a cold-start user's segment ("shoppers like you") and
        the shopper's position when the location boost is on."""
        snapshot = self.snapshots.get()
        return RecommendRequest(
            interactions=records,
            top_n=top_n,
            now=now,
            filters=filters or CandidateFilter(),
            segment=self.segments.hint_for(records, snapshot) if self.segments else None,
            location=self.location.hint_for(user) if self.location else None,
        )

    def ranking_version(self, strategy: str, snapshot: CatalogSnapshot) -> str:
        """What a stored list was computed against: the catalog and, for strategies with
        collaborative models, the model version (a retrain makes stored lists stale)."""
        models = getattr(self.strategies[strategy], "models", None)
        current = models.current() if models is not None and hasattr(models, "current") else None
        version = f"{snapshot.version}|{getattr(current, 'version', None) or '-'}"
        if self.segments is not None:  # a recompute moves cold-start users' lists
            version += f"|s{self.segments.version}"
        return version

    def _precomputed(
        self,
        session: Session,
        user_id: uuid.UUID,
        strategy: str,
        top_n: int,
        snapshot: CatalogSnapshot,
        now: datetime,
    ) -> list[Recommendation] | None:
        """The worker's stored list, when it reflects every event and the current catalog."""
        if self.precompute_max_age_seconds <= 0:
            return None
        rows = crud.fresh_user_recommendations(
            session=session,
            user_id=user_id,
            strategy=strategy,
            top_n=top_n,
            catalog_version=self.ranking_version(strategy, snapshot),
            not_before=now - timedelta(seconds=self.precompute_max_age_seconds),
        )
        recs = self._stored_list(rows, snapshot) if rows is not None else None
        self._count("precomputed", recs is not None)
        if recs is not None:
            self.precomputed_hits += 1
        return recs

    @staticmethod
    def _stored_list(
        rows: Sequence[crud.StoredItem], snapshot: CatalogSnapshot
    ) -> list[Recommendation] | None:
        recs = []
        for row in rows:
            index = snapshot.index.get(row.product_id)
            if index is None:  # a product gone since: compute afresh
                return None
            evidence = Evidence.model_validate(row.evidence)
            recs.append(Recommendation(index=index, score=row.score, evidence=evidence))
        return recs

    def _summary(
        self,
        snapshot: CatalogSnapshot,
        records: Sequence[InteractionRecord],
        cart: list[str],
        wishlist: list[str],
        now: datetime,
    ) -> str:
        def recent(action: str) -> list[str]:
            names: dict[str, None] = {}
            for event in records:  # newest first
                if event.action == action and event.product_id in snapshot.index:
                    names[snapshot.products[snapshot.index[event.product_id]].name] = None
            return list(names)[:SUMMARY_ITEMS]

        searches = list(dict.fromkeys(e.query for e in records if e.action == "search" and e.query))
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
        """The ranked items with evidence and the summary, not yet explained."""
        return self.explanation_job(user_id, top_n=top_n, strategy=strategy)[0]

    def explanation_job(
        self,
        user_id: uuid.UUID,
        *,
        top_n: int,
        strategy: str | None = None,
        filters: CandidateFilter | None = None,
    ) -> tuple[ExplanationRequest, Explainer]:
        """The request and the explainer ``recommend`` would use (an experiment variant's
        pinned prompt included): for callers that explain on their own (the stream, the
        explanation jobs)."""
        arm = self._arm(user_id, strategy)
        name = self._strategy_name(strategy or (arm.strategy if arm else None))
        request, _, _ = self._rank(user_id, name, top_n, filters or CandidateFilter(), arm)
        return request, self._explainer(arm)

    def _explainer(self, arm: Arm | None) -> Explainer:
        return arm.explainer if arm is not None and arm.explainer else self.explainer

    def _strategy_name(self, strategy: str | None) -> str:
        name = strategy or self.default_strategy
        if name not in self.strategies:
            known = ", ".join(sorted(self.strategies))
            raise InvalidInputError(f"unknown algorithm {name!r}; choose one of: {known}")
        return name

    def _rank(
        self,
        user_id: uuid.UUID,
        name: str,
        top_n: int,
        filters: CandidateFilter,
        arm: Arm | None = None,
    ) -> tuple[ExplanationRequest, list[Recommendation], datetime]:
        """Load the user, rank with the strategy (or the worker's fresh list) and summarise.
        Every read in one session: one connection from the pool per request."""
        now = self.clock()
        snapshot = self.snapshots.get()
        ranker = arm.ranker if arm is not None else None
        # The worker precomputes unfiltered lists of the configured strategies only.
        stored = filters == CandidateFilter() and ranker is None
        with Session(self.db) as session:
            user = crud.get_shopper(session=session, user_id=user_id)
            if user is None:
                raise NotFoundError("user", user_id)
            records = recent_history(session=session, user_id=user_id)
            cart, wishlist = crud.basket_names(session=session, user_id=user_id)
            recs = (
                self._precomputed(session, user_id, name, top_n, snapshot, now) if stored else None
            )
        if recs is None:
            recs = (ranker or self.strategies[name]).recommend(
                snapshot,
                self.build_request(user, records, top_n=top_n, now=now, filters=filters),
            )
        request = ExplanationRequest(
            user_name=user.full_name or user.username,
            summary=self._summary(snapshot, records, cart, wishlist, now),
            items=tuple(ExplainedItem(snapshot.products[r.index], r.evidence) for r in recs),
            user_id=user_id,
            past_times=_last_touched(records),
            now=now,
        )
        return request, recs, now


def _field(
    name: str, top_n: int, filters: CandidateFilter, arm: Arm | None, explain: ExplainMode
) -> str:
    """The answer's field under the user's key in the response cache."""
    field = f"{name}:{top_n}"
    if filters != CandidateFilter():
        f = filters
        field += f":{f.category}:{f.min_price}:{f.max_price}:{f.in_stock}"
    if arm is not None:
        field += f":xp:{arm.tag}"
    if explain != "auto":
        field += f":explain:{explain}"
    return field


def _last_touched(records: list[InteractionRecord]) -> dict[uuid.UUID, datetime]:
    """When the shopper last touched each product: dates the explanation's facts."""
    last: dict[uuid.UUID, datetime] = {}
    for r in records:
        if r.product_id is not None and (
            r.product_id not in last or r.created_at > last[r.product_id]
        ):
            last[r.product_id] = r.created_at
    return last
