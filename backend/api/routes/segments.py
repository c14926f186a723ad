"""Shopper segments for the product team (the dashboard reads this)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from backend.api.deps import SegmentsDep
from backend.services.segments import SegmentSummary

router = APIRouter(tags=["analytics"])


@router.get(
    "/analytics/segments",
    response_model=SegmentSummary,
    summary="Shopper segments (K-means): label, size, top categories, average price",
)
async def list_segments(segments: SegmentsDep) -> SegmentSummary:
    return await run_in_threadpool(segments.summary)
