from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from backend.api.deps import ComponentsDep, RecommenderDep
from backend.api.schemas import RecommendationResult
from backend.errors import InvalidInputError

router = APIRouter(tags=["recommendations"])


@router.get(
    "/recommend/{user_id}",
    response_model=RecommendationResult,
    summary="Recommended products with evidence and an explanation",
    responses={404: {"description": "No such user"}, 422: {"description": "Bad parameters"}},
)
async def recommend(
    recommender: RecommenderDep,
    components: ComponentsDep,
    user_id: Annotated[uuid.UUID, Path(description="The user's id (UUID)")],
    top_n: Annotated[int | None, Query(ge=1, le=50, description="How many (1–50)")] = None,
    algorithm: Annotated[
        str | None,
        Query(min_length=1, max_length=40, description="Strategy to use; default: the service's"),
    ] = None,
) -> RecommendationResult:
    settings = components.settings
    n = top_n or settings.default_top_n
    if n > settings.max_top_n:
        raise InvalidInputError(f"top_n must be at most {settings.max_top_n}")
    return await run_in_threadpool(recommender.recommend, user_id, top_n=n, strategy=algorithm)
