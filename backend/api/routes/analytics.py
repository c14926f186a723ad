"""Online metrics for the product team (the admin dashboard reads these)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from backend.api.deps import AnalyticsDep
from backend.services.analytics import AnalyticsSummary

router = APIRouter(prefix="/analytics", tags=["analytics"])


@router.get(
    "/summary",
    response_model=AnalyticsSummary,
    summary="Click-through and conversion by strategy, explanation source and day",
)
async def summary(
    analytics: AnalyticsDep,
    days: Annotated[int, Query(ge=1, le=365, description="UTC days back, today included")] = 14,
) -> AnalyticsSummary:
    return await run_in_threadpool(analytics.summary, days=days)
