"""FastAPI dependencies: components come from ``app.state``, built once by the factory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from backend.components import Components
from backend.services.recommend import RecommendationService
from backend.services.track import TrackingService


def get_components(request: Request) -> Components:
    return request.app.state.components  # type: ignore[no-any-return]


ComponentsDep = Annotated[Components, Depends(get_components)]


def get_session(components: ComponentsDep) -> Iterator[Session]:
    with Session(components.db) as session:
        yield session


def get_recommender(components: ComponentsDep) -> RecommendationService:
    return components.recommender


def get_tracker(components: ComponentsDep) -> TrackingService:
    return components.tracker


SessionDep = Annotated[Session, Depends(get_session)]
RecommenderDep = Annotated[RecommendationService, Depends(get_recommender)]
TrackerDep = Annotated[TrackingService, Depends(get_tracker)]
