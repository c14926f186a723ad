"""The chat never holds a reply for the model longer than its budget.

A local model needs seconds per answer. ``BudgetedParser`` gives the LLM parser at most its
share of the budget and understands the message by rules when it is late. ``DeferredReplies``
waits for the LLM reply as long; then the template reply goes out at once, marked pending
with a ticket, and the LLM's reply (through the evidence check, as always) is kept under
that ticket when it arrives, for ``GET /chat/replies/{ticket}``: for the caller who sent the
turn only (like the chat session itself; anyone else is told the ticket does not exist).

Both run the model on a small pool of ``concurrency`` threads, as many as the model server
answers at once, and each call takes one of the model server's slots (``backend.llm.slots``,
shared with the explanation queue and streams); past a short backlog the template (or the
rules) answer without asking it. A parse whose turn went on with the rules gives up its wait
for a slot: nobody reads its answer.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from backend.chat.parser import MessageParser
from backend.chat.replies import ChatReplies, Reply, ReplyContext, TemplateReplies
from backend.chat.state import FilterUpdate
from backend.chat.vocabulary import ChatVocabulary
from backend.infra.cache import Cache
from backend.llm.slots import LocalModelSlots, ModelSlots

log = logging.getLogger(__name__)
T = TypeVar("T")

BACKLOG_PER_THREAD = 4  # waiting model calls per thread before the fallback answers at once
SLOT_POLL_SECONDS = 0.25  # how often a waiting parse looks whether its turn went on without it


class Abandoned(Exception):
    """The caller stopped waiting before a model slot came free; the call was not made."""


def reply_key(ticket: str) -> str:
    return f"chat:reply:{ticket}"


class ReplyFollowUp(BaseModel):
    """The reply of a turn that went out with the template while the LLM wrote."""

    status: Literal["pending", "ready", "template"] = Field(
        description="pending: still writing; ready: the LLM's checked reply; template: the "
        "LLM's reply did not pass (the template stays; see fallback_reason)"
    )
    reply: str | None = None
    reply_source: Literal["llm", "template"] | None = None
    reply_fallback_reason: str | None = None
    # Checked reasons for the cards, by product id (they replace the template's).
    reasons: dict[str, str] = Field(default_factory=dict)


class _Kept(BaseModel):
    """A follow-up as stored: with whom it belongs to (``ReplyContext.owner``)."""

    owner: str | None
    follow_up: ReplyFollowUp


class _Pool:
    """A bounded pool of model calls shared by the parser and the replies."""

    def __init__(self, concurrency: int, slots: ModelSlots) -> None:
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="chat-llm")
        self._slots = slots
        self._limit = concurrency * (1 + BACKLOG_PER_THREAD)
        self._lock = threading.Lock()
        self._in_flight = 0

    def submit(
        self, call: Callable[[], T], *, gone: threading.Event | None = None
    ) -> Future[T] | None:
        """Run ``call`` with a model slot held; None when the backlog is full. Once ``gone``
        is set, a call still waiting for its slot is dropped (its future raises Abandoned)."""
        with self._lock:
            if self._in_flight >= self._limit:
                return None
            self._in_flight += 1
        future = self._executor.submit(self._within_slot, call, gone)
        future.add_done_callback(self._finished)
        return future

    def _within_slot(self, call: Callable[[], T], gone: threading.Event | None) -> T:
        while True:
            lease = self._slots.acquire(timeout=None if gone is None else SLOT_POLL_SECONDS)
            if gone is not None and gone.is_set():  # also when the slot just came free
                if lease is not None:
                    lease.release()
                raise Abandoned
            if lease is not None:
                break
        try:
            return call()
        finally:
            lease.release()

    def _finished(self, _: Future[Any]) -> None:
        with self._lock:
            self._in_flight -= 1


class ChatBudget:
    """The pool and the per-step wait: each LLM step of a turn (parse, reply) waits at most
    half of ``budget_seconds``, so a turn waits for the model at most the whole budget."""

    def __init__(
        self, *, budget_seconds: float, concurrency: int, slots: ModelSlots | None = None
    ) -> None:
        self.step_seconds = budget_seconds / 2
        self.pool = _Pool(max(concurrency, 1), slots or LocalModelSlots(concurrency))


class BudgetedParser:
    """The LLM parser within the budget, else the rules (``last_source`` says which)."""

    def __init__(self, llm: MessageParser, rules: MessageParser, budget: ChatBudget) -> None:
        self.llm = llm
        self.rules = rules
        self.budget = budget
        self.last_source: Literal["llm", "rules"] = "rules"

    def parse(self, message: str, vocabulary: ChatVocabulary, *, shown_count: int) -> FilterUpdate:
        gone = threading.Event()
        future = self.budget.pool.submit(
            lambda: (
                self.llm.parse(message, vocabulary, shown_count=shown_count),
                getattr(self.llm, "last_source", "llm"),
            ),
            gone=gone,
        )
        if future is not None:
            try:
                update, source = future.result(timeout=self.budget.step_seconds)
            except FutureTimeout:
                gone.set()
                log.info("the LLM parser is late; the rules understood this message")
            else:
                self.last_source = "llm" if source == "llm" else "rules"
                return update
        self.last_source = "rules"
        return self.rules.parse(message, vocabulary, shown_count=shown_count)


class DeferredReplies:
    """The LLM reply within the budget; else the template now and the LLM's reply later."""

    def __init__(
        self,
        llm: ChatReplies,
        template: TemplateReplies,
        cache: Cache,
        budget: ChatBudget,
        *,
        ttl_seconds: int = 900,
    ) -> None:
        self.llm = llm
        self.template = template
        self.cache = cache
        self.budget = budget
        self.ttl_seconds = ttl_seconds
        self.stats = getattr(llm, "stats", None)  # GET /chat/stats counts the LLM's replies

    def reply(self, context: ReplyContext) -> Reply:
        future = self.budget.pool.submit(lambda: self.llm.reply(context))
        if future is None:  # the model is busy: no ticket, the template is the reply
            return self._template(context, "busy")
        try:
            return future.result(timeout=self.budget.step_seconds)
        except FutureTimeout:
            pass
        ticket, owner = uuid.uuid4().hex, context.owner
        self._store(ticket, owner, ReplyFollowUp(status="pending"))
        future.add_done_callback(lambda done: self._arrived(ticket, owner, done))
        template = self._template(context, "pending")
        return Reply(
            text=template.text, source="template", fallback_reason="pending", pending=ticket
        )

    def _template(self, context: ReplyContext, reason: str) -> Reply:
        text = self.template.reply(context).text
        return Reply(text=text, source="template", fallback_reason=reason)

    def _arrived(self, ticket: str, owner: str | None, done: Future[Reply]) -> None:
        try:
            reply = done.result()
        except Exception:  # the LLM replies fall back by themselves; this is a bug
            log.exception("a deferred chat reply failed")
            failed = ReplyFollowUp(status="template", reply_fallback_reason="error")
            self._store(ticket, owner, failed)
            return
        self._store(
            ticket,
            owner,
            ReplyFollowUp(
                status="ready" if reply.source == "llm" else "template",
                reply=reply.text,
                reply_source=reply.source,
                reply_fallback_reason=reply.fallback_reason,
                reasons={str(k): v for k, v in reply.reasons.items()},
            ),
        )

    def _store(self, ticket: str, owner: str | None, follow_up: ReplyFollowUp) -> None:
        kept = _Kept(owner=owner, follow_up=follow_up).model_dump_json()
        self.cache.set(reply_key(ticket), "reply", kept, self.ttl_seconds)


def follow_up(cache: Cache, ticket: str, *, owner: str | None) -> ReplyFollowUp | None:
    """The reply kept under ``ticket`` for ``owner`` (None: unknown, expired, or another
    caller's: the same answer, so a ticket seen elsewhere tells nothing)."""
    raw = cache.get(reply_key(ticket), "reply")
    if raw is None:
        return None
    try:
        kept = _Kept.model_validate(json.loads(raw))
    except ValueError:
        log.warning("dropping an unreadable deferred chat reply")
        return None
    return kept.follow_up if kept.owner == owner else None
