"""FastAPI dependencies: components come from ``app.state``, built once by the factory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlmodel import Session

from backend.components import Components
from backend.errors import InvalidInputError
from backend.security.text import SafeText
from backend.services.recommend import RecommendationService
from backend.services.track import TrackingService


async def get_components(request: Request) -> Components:
    # async: FastAPI runs plain ``def`` dependencies in the thread pool, a hop per request.
    return request.app.state.components  # type: ignore[no-any-return]


ComponentsDep = Annotated[Components, Depends(get_components)]


def get_session(components: ComponentsDep) -> Iterator[Session]:
    with Session(components.db) as session:
        yield session


async def get_recommender(components: ComponentsDep) -> RecommendationService:
    return components.recommender


async def get_tracker(components: ComponentsDep) -> TrackingService:
    return components.tracker


SessionDep = Annotated[Session, Depends(get_session)]
RecommenderDep = Annotated[RecommendationService, Depends(get_recommender)]
TrackerDep = Annotated[TrackingService, Depends(get_tracker)]


TopN = Annotated[int | None, Query(ge=1, le=50, description="How many (1–50)")]
Algorithm = Annotated[
    SafeText | None,
    Query(min_length=1, max_length=40, description="Strategy to use; default: the service's"),
]


def resolve_top_n(components: Components, top_n: int | None) -> int:
    """The request's top_n, or the default; never above the configured maximum."""
    settings = components.settings
    n = top_n or settings.default_top_n
    if n > settings.max_top_n:
        raise InvalidInputError(f"top_n must be at most {settings.max_top_n}")
    return n
