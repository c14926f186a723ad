from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from backend.api.deps import Algorithm, ComponentsDep, RecommenderDep, TopN, resolve_top_n
from backend.api.schemas import RecommendationResult

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
    top_n: TopN = None,
    algorithm: Algorithm = None,
) -> RecommendationResult:
    n = resolve_top_n(components, top_n)
    return await run_in_threadpool(recommender.recommend, user_id, top_n=n, strategy=algorithm)
