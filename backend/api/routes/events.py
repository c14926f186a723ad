from __future__ import annotations

from fastapi import APIRouter, Response, status
from starlette.concurrency import run_in_threadpool

from backend.api.deps import TrackerDep
from backend.api.schemas import EventIn, EventResult

router = APIRouter(tags=["events"])


@router.post(
    "/events",
    response_model=EventResult,
    status_code=status.HTTP_201_CREATED,
    summary="Record an interaction; the next recommendation reflects it",
    responses={
        200: {"model": EventResult, "description": "Already stored (same event_id)"},
        422: {"description": "Unknown user or product, or a malformed event"},
    },
)
async def track_event(event: EventIn, tracker: TrackerDep, response: Response) -> EventResult:
    result = await run_in_threadpool(tracker.track, event)
    if result.duplicate:
        response.status_code = status.HTTP_200_OK
    return result
