from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from backend.api.deps import TrackerDep
from backend.api.schemas import EventIn, EventResult
from backend.api.security import PrincipalDep
from backend.services.track import MAX_BATCH, BatchResult

router = APIRouter(tags=["events"])


class EventBatchIn(BaseModel):
    # Items are validated one by one by the service, so one bad event rejects only itself.
    events: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"Up to {MAX_BATCH} events, each shaped as for POST /events.",
    )


@router.post(
    "/events",
    response_model=EventResult,
    status_code=status.HTTP_201_CREATED,
    summary="Record an interaction; the next recommendation reflects it",
    responses={
        200: {"model": EventResult, "description": "Already stored (same event_id and event)"},
        409: {"description": "This sender used the event_id for a different event"},
        422: {"description": "Unknown user or product, or a malformed event"},
    },
)
async def track_event(
    event: EventIn, tracker: TrackerDep, principal: PrincipalDep, response: Response
) -> EventResult:
    # Event ids are the sender's own: a shopper's can never shadow their storefront's.
    result = await run_in_threadpool(tracker.track, event, source=principal.identity)
    if result.duplicate:
        response.status_code = status.HTTP_200_OK
    return result


@router.post(
    "/events/batch",
    response_model=BatchResult,
    summary="Record up to 1,000 interactions; each is accepted or rejected with a reason",
    responses={422: {"description": "Not a batch (no list, or more than 1,000 events)"}},
)
async def track_events(
    batch: EventBatchIn, tracker: TrackerDep, principal: PrincipalDep
) -> BatchResult:
    """Accepted events are stored together in one transaction: all of them or, on a
    database failure, none (retrying is safe with ``event_id``). An event whose id this
    sender already used for another event is reported as a ``conflict``."""
    return await run_in_threadpool(tracker.track_many, batch.events, source=principal.identity)
