"""``POST /chat``: one turn of the shopping assistant (HTTP only; the work is in chat.service).

The body carries a ``message``, and/or ``remove_filter`` (``{"field": "colours", "value":
"red"}``: drop one understood filter, as the UI's chips do) and/or ``feedback``
(``{"product_id": …, "action": "like" | "not_interested" | "view" | "add_to_cart"}``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from starlette.concurrency import run_in_threadpool

from backend.api.deps import ChatDep
from backend.api.security import PrincipalDep
from backend.chat.deferred import ReplyFollowUp
from backend.chat.schemas import ChatRequest, ChatResponse

router = APIRouter(tags=["chat"])


@router.post(
    "/chat",
    response_model=ChatResponse,
    summary="Talk to the shopping assistant: products with reasons and the understood filters",
    responses={
        404: {"description": "No such user, or another caller's chat session"},
        422: {"description": "Empty or over-long message, bad ids, or an unknown product"},
    },
)
async def chat(body: ChatRequest, service: ChatDep, principal: PrincipalDep) -> ChatResponse:
    if principal.kind == "shopper" and body.user_id is None and principal.user_id is not None:
        body = body.model_copy(update={"user_id": principal.user_id})  # their own profile
    # The session belongs to the caller: another caller's session id is a 404.
    return await run_in_threadpool(service.chat_turn, body, owner=principal.identity)


@router.get(
    "/chat/replies/{ticket}",
    response_model=ReplyFollowUp,
    summary="The LLM's reply to a turn answered with the template while it wrote",
    responses={404: {"description": "Unknown or expired ticket, or another caller's"}},
)
def chat_reply(
    service: ChatDep,
    principal: PrincipalDep,
    ticket: Annotated[str, Path(pattern="^[0-9a-f]{32}$")],
) -> ReplyFollowUp:
    # The reply belongs to whoever sent the turn, as the chat session does.
    found = service.follow_up(ticket, owner=principal.identity)
    if found is None:
        raise HTTPException(status_code=404, detail="no such reply (unknown or expired)")
    return found


@router.get(
    "/chat/stats",
    summary="Chat reply counters: evidence checks passed/failed by reason, sources, fallbacks",
)
def chat_stats(service: ChatDep) -> dict[str, Any]:
    return service.reply_stats.snapshot()
