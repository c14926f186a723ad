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
# a hop per request for an attribute read. Tests may override one by its function
# (``app.dependency_overrides[get_tracker]``).


def components_of(request: Request) -> Components:
    return request.app.state.components  # type: ignore[no-any-return]


async def get_app_settings(request: Request) -> Settings:
    return components_of(request).settings


async def get_engine(request: Request) -> Engine:
    return components_of(request).db


async def get_metrics(request: Request) -> Metrics:
    return components_of(request).metrics


async def get_snapshots(request: Request) -> SnapshotManager:
    return components_of(request).snapshots


async def get_llm_mode(request: Request) -> str:
    return components_of(request).llm_mode


async def get_explanation_stats(request: Request) -> ExplanationStats:
    return components_of(request).explanation_stats


async def get_recommender(request: Request) -> RecommendationService:
    return components_of(request).recommender


async def get_tracker(request: Request) -> TrackingService:
    return components_of(request).tracker


async def get_chat(request: Request) -> ChatService:
    return components_of(request).chat


async def get_search(request: Request) -> SearchService:
    return components_of(request).search


async def get_catalog(request: Request) -> CatalogService:
    return components_of(request).catalog


async def get_auth(request: Request) -> AuthService:
    return components_of(request).auth


async def get_privacy(request: Request) -> PrivacyService:
    return components_of(request).privacy


async def get_location(request: Request) -> LocationService:
    return components_of(request).location


async def get_experiments(request: Request) -> ExperimentService:
    return components_of(request).experiments


async def get_analytics(request: Request) -> AnalyticsService:
    return components_of(request).analytics


async def get_segments(request: Request) -> SegmentService:
    return components_of(request).segments


async def get_prompt_admin(request: Request) -> PromptAdmin:
    return components_of(request).prompt_admin


async def get_health(request: Request) -> HealthCheck:
    return components_of(request).health


async def get_warmup(request: Request) -> Warmup | None:
    """The app's warm start (the lifespan's, not a component): None before it began."""
    return getattr(request.app.state, "warmup", None)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SnapshotsDep = Annotated[SnapshotManager, Depends(get_snapshots)]
LLMModeDep = Annotated[str, Depends(get_llm_mode)]  # "llm" or why explanations are templates
ExplanationStatsDep = Annotated[ExplanationStats, Depends(get_explanation_stats)]
RecommenderDep = Annotated[RecommendationService, Depends(get_recommender)]
TrackerDep = Annotated[TrackingService, Depends(get_tracker)]
ChatDep = Annotated[ChatService, Depends(get_chat)]
SearchDep = Annotated[SearchService, Depends(get_search)]
CatalogDep = Annotated[CatalogService, Depends(get_catalog)]
AuthDep = Annotated[AuthService, Depends(get_auth)]
PrivacyDep = Annotated[PrivacyService, Depends(get_privacy)]
LocationDep = Annotated[LocationService, Depends(get_location)]
ExperimentsDep = Annotated[ExperimentService, Depends(get_experiments)]
AnalyticsDep = Annotated[AnalyticsService, Depends(get_analytics)]
SegmentsDep = Annotated[SegmentService, Depends(get_segments)]
PromptAdminDep = Annotated[PromptAdmin, Depends(get_prompt_admin)]
HealthDep = Annotated[HealthCheck, Depends(get_health)]
WarmupDep = Annotated[Warmup | None, Depends(get_warmup)]


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
