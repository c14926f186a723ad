"""Streamed explanations (server-sent events) and the explanation counters."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from backend.api.deps import (
    Algorithm,
    ExplanationBackgroundDep,
    ExplanationStatsDep,
    LLMModeDep,
    RecommenderDep,
    SettingsDep,
    TopN,
    resolve_top_n,
)
from backend.llm.explainer import ExplanationDelta
from backend.llm.writer import ExplanationRequest
from backend.services.explanations import ExplanationStream, explanation_stream

router = APIRouter(tags=["recommendations"])

_SSE_DOC = """The explanation of the list `GET /recommend` answers with the same parameters
(where a pending answer points). A checked text already cached is sent at once; else the
model writes it now, in this request, when the model server has a free slot (`LLM_CONCURRENCY`,
shared with the background explanation jobs) within half a second, and otherwise the
template is sent (`fallback_reason: "llm_busy"`) and the list's job queued: polling
`GET /recommend` then serves its text when ready. Server-sent events:

- `start`: `{user_id, products: [{product_id, name}], mode: "llm" | "template"}`
- `delta` (any number): `{text}`, the next piece of the explanation as the LLM writes it. Each
  piece (the intro, then each product's reason in order) has already passed the evidence
  check: nothing unchecked is sent.
- `final` (last): `{text, source, verified, fallback_reason, cached}`. `text` is the text to
  keep and **replaces** the deltas: the LLM's answer rendered after the whole answer passed
  the evidence check (`verified: true`; the deltas are its beginning), or the template
  explanation (`source: "template"`) when the whole answer did not pass.
"""


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _closing(events: Generator[str, None, None]) -> AsyncIterator[str]:
    """The events, closed when the response ends, the client gone included: the model call
    stops and its slot is free for the next shopper (a generator left to the garbage
    collector would keep the model server writing)."""
    try:
        async for chunk in iterate_in_threadpool(events):
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):  # a disconnect cancels; the close must still run
            await run_in_threadpool(events.close)


def _sse(stream: ExplanationStream, mode: str) -> Generator[str, None, None]:
    request: ExplanationRequest = stream.request
    yield _event(
        "start",
        {
            "user_id": str(request.user_id),
            "products": [
                {"product_id": str(i.product.id), "name": i.product.name} for i in request.items
            ],
            "mode": mode,
        },
    )
    try:
        yield from _events(stream)
    finally:  # now, not when collected: the model call ends and frees its slot
        close = getattr(stream.events, "close", None)
        if close is not None:
            close()


def _events(stream: ExplanationStream) -> Iterator[str]:
    for event in stream.events:
        if isinstance(event, ExplanationDelta):
            yield _event("delta", {"text": event.text})
        else:
            explanation = event.explanation
            yield _event(
                "final",
                {
                    "text": explanation.text,
                    "source": explanation.source,
                    "verified": event.verified,
                    "fallback_reason": explanation.fallback_reason,
                    "cached": event.cached,
                },
            )


@router.get(
    "/recommend/{user_id}/explanation/stream",
    summary="The recommendation explanation as server-sent events",
    description=_SSE_DOC,
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        404: {"description": "No such user"},
        422: {"description": "Bad parameters"},
    },
)
async def explanation_stream_route(
    recommender: RecommenderDep,
    settings: SettingsDep,
    mode: LLMModeDep,
    background: ExplanationBackgroundDep,
    user_id: Annotated[uuid.UUID, Path(description="The user's id (UUID)")],
    top_n: TopN = None,
    algorithm: Algorithm = None,
) -> StreamingResponse:
    n = resolve_top_n(settings, top_n)
    stream = await run_in_threadpool(
        explanation_stream,
        recommender=recommender,
        user_id=user_id,
        top_n=n,
        strategy=algorithm,
        slots=background.slots,
        jobs=background.jobs,
    )
    return StreamingResponse(
        _closing(_sse(stream, "llm" if mode == "llm" else "template")),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/explanations/stats",
    summary="Explanation counters: evidence checks passed/failed by reason, fallbacks, and "
    "the background jobs (queue, done and dropped by reason, model speed, LLM share)",
)
def explanation_stats(
    stats: ExplanationStatsDep, background: ExplanationBackgroundDep
) -> dict[str, Any]:
    return stats.snapshot() | {"jobs": background.snapshot()}
