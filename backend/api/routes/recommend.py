from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from backend.api.deps import Algorithm, RecommenderDep, SettingsDep, TopN, resolve_top_n
from backend.api.schemas import RecommendationResult
from backend.errors import InvalidInputError
from backend.recommender.strategies import CandidateFilter
from backend.security.text import SafeText

router = APIRouter(tags=["recommendations"])


@router.get(
    "/recommend/{user_id}",
    response_model=RecommendationResult,
    summary="Recommended products with evidence and an explanation",
    responses={404: {"description": "No such user"}, 422: {"description": "Bad parameters"}},
)
async def recommend(
    recommender: RecommenderDep,
    settings: SettingsDep,
    user_id: Annotated[uuid.UUID, Path(description="The user's id (UUID)")],
    top_n: TopN = None,
    algorithm: Algorithm = None,
    category: Annotated[SafeText | None, Query(min_length=1, max_length=120)] = None,
    min_price: Annotated[float | None, Query(ge=0, le=1_000_000)] = None,
    max_price: Annotated[float | None, Query(ge=0, le=1_000_000)] = None,
    in_stock: Annotated[bool, Query(description="Only products in stock")] = False,
) -> Response:
    n = resolve_top_n(settings, top_n)
    if min_price is not None and max_price is not None and min_price > max_price:
        raise InvalidInputError("min_price must not be greater than max_price")
    filters = CandidateFilter(
        category=category, min_price=min_price, max_price=max_price, in_stock=in_stock
    )
    # The service hands over JSON bytes: a cache hit is sent as stored, not re-validated.
    body = await run_in_threadpool(
        recommender.recommend_json,
        user_id,
        top_n=n,
        strategy=algorithm,
        filters=filters,
    )
    return Response(content=body, media_type="application/json")
