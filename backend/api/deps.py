"""FastAPI dependencies: each route names the services it uses, built once by ``wiring``.

The components hang on ``app.state`` (the lifespan puts them there); these aliases hand a
route one service each, so a handler's signature says what it depends on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.chat.service import ChatService
from backend.config import Settings
from backend.errors import InvalidInputError
from backend.llm.stats import ExplanationStats
from backend.observability.metrics import Metrics
from backend.recommender.snapshot import SnapshotManager
from backend.security.text import SafeText
from backend.services.analytics import AnalyticsService
from backend.services.auth import AuthService
from backend.services.catalog import CatalogService
from backend.services.experiments import ExperimentService
from backend.services.health import HealthCheck, Warmup
from backend.services.location import LocationService
from backend.services.privacy import PrivacyService
from backend.services.prompt_admin import PromptAdmin
from backend.services.recommend import RecommendationService
from backend.services.search import SearchService
from backend.services.segments import SegmentService
from backend.services.track import TrackingService
from backend.wiring import Components

# Every provider is ``async``: FastAPI runs plain ``def`` dependencies in the thread pool,
# a hop per request for an attribute read.


def components_of(request: Request) -> Components:
    return request.app.state.components  # type: ignore[no-any-return]


async def _settings(request: Request) -> Settings:
    return components_of(request).settings


async def _engine(request: Request) -> Engine:
    return components_of(request).db


async def _metrics(request: Request) -> Metrics:
    return components_of(request).metrics


async def _snapshots(request: Request) -> SnapshotManager:
    return components_of(request).snapshots


async def _llm_mode(request: Request) -> str:
    return components_of(request).llm_mode


async def _explanation_stats(request: Request) -> ExplanationStats:
    return components_of(request).explanation_stats


async def _recommender(request: Request) -> RecommendationService:
    return components_of(request).recommender


async def _tracker(request: Request) -> TrackingService:
    return components_of(request).tracker


async def _chat(request: Request) -> ChatService:
    return components_of(request).chat


async def _search(request: Request) -> SearchService:
    return components_of(request).search


async def _catalog(request: Request) -> CatalogService:
    return components_of(request).catalog


async def _auth(request: Request) -> AuthService:
    return components_of(request).auth


async def _privacy(request: Request) -> PrivacyService:
    return components_of(request).privacy


async def _location(request: Request) -> LocationService:
    return components_of(request).location


async def _experiments(request: Request) -> ExperimentService:
    return components_of(request).experiments


async def _analytics(request: Request) -> AnalyticsService:
    return components_of(request).analytics


async def _segments(request: Request) -> SegmentService:
    return components_of(request).segments


async def _prompt_admin(request: Request) -> PromptAdmin:
    return components_of(request).prompt_admin


async def _health(request: Request) -> HealthCheck:
    return components_of(request).health


async def _warmup(request: Request) -> Warmup | None:
    """The app's warm start (the lifespan's, not a component): None before it began."""
    return getattr(request.app.state, "warmup", None)


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[Engine, Depends(_engine)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
SnapshotsDep = Annotated[SnapshotManager, Depends(_snapshots)]
LLMModeDep = Annotated[str, Depends(_llm_mode)]  # "llm" or why explanations are templates
ExplanationStatsDep = Annotated[ExplanationStats, Depends(_explanation_stats)]
RecommenderDep = Annotated[RecommendationService, Depends(_recommender)]
TrackerDep = Annotated[TrackingService, Depends(_tracker)]
ChatDep = Annotated[ChatService, Depends(_chat)]
SearchDep = Annotated[SearchService, Depends(_search)]
CatalogDep = Annotated[CatalogService, Depends(_catalog)]
AuthDep = Annotated[AuthService, Depends(_auth)]
PrivacyDep = Annotated[PrivacyService, Depends(_privacy)]
LocationDep = Annotated[LocationService, Depends(_location)]
ExperimentsDep = Annotated[ExperimentService, Depends(_experiments)]
AnalyticsDep = Annotated[AnalyticsService, Depends(_analytics)]
SegmentsDep = Annotated[SegmentService, Depends(_segments)]
PromptAdminDep = Annotated[PromptAdmin, Depends(_prompt_admin)]
HealthDep = Annotated[HealthCheck, Depends(_health)]
WarmupDep = Annotated[Warmup | None, Depends(_warmup)]


def get_session(db: EngineDep) -> Iterator[Session]:
    with Session(db) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


TopN = Annotated[int | None, Query(ge=1, le=50, description="How many (1–50)")]
Algorithm = Annotated[
    SafeText | None,
    Query(min_length=1, max_length=40, description="Strategy to use; default: the service's"),
]


def resolve_top_n(settings: Settings, top_n: int | None) -> int:
    """The request's top_n, or the default; never above the configured maximum."""
    n = top_n or settings.default_top_n
    if n > settings.max_top_n:
        raise InvalidInputError(f"top_n must be at most {settings.max_top_n}")
    return n
