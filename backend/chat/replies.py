"""The chat assistant's reply: the template, or the LLM's answer through the evidence check.

``TemplateReplies`` renders ``prompts/chat_reply.j2`` (offline, and the fallback).
``LLMReplies`` asks the LLM for the same JSON as a recommendation explanation (an intro plus
one reason per product shown) through ``CheckedWriter``: the same prompt → check → one retry
→ fallback loop and the same evidence check. The LLM sees only the validated conversation
state (the understood filters, the shopper's free query words) and the products' facts,
never the raw message; what ships is rendered from the checked answer through
``prompts/chat_reply_llm.j2``, plus our own acknowledgement and notes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from backend.llm.prompts import PromptError, PromptLibrary
from backend.llm.writer import (
    CheckedWriter,
    ExplainedItem,
    ExplainOutcome,
    ExplanationRequest,
    PromptTemplates,
)

log = logging.getLogger(__name__)

ReplySource = Literal["llm", "template"]


@dataclass(frozen=True)
class ReplyContext:
    """Everything a reply may use: our own text, the understood state, the products shown."""

    user_name: str | None
    acknowledgement: str | None
    understood: Sequence[str]  # every filter chip's label, e.g. "Electronics", "not red"
    wanted: Sequence[str]  # the positive ones (minus the free words): what the shopper asked
    unwanted: Sequence[str]  # "not red", "no Voltix"
    words: str  # the shopper's free query words
    candidates: int  # products passing every filter (and not shown yet when paging)
    first_turn: bool
    understood_nothing: bool
    more: bool  # the shopper asked for the next results
    notes: Sequence[str]
    items: tuple[ExplainedItem, ...]
    # Who asked (the caller's identity, as chat sessions keep it): never sent to the model;
    # a reply written later is kept for them alone.
    owner: str | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    source: ReplySource = "template"
    fallback_reason: str | None = None
    # Checked per-product reasons from the LLM (product id → reason); empty for templates.
    reasons: dict[uuid.UUID, str] = field(default_factory=dict)
    # The ticket of the LLM reply still being written (``backend.chat.deferred``).
    pending: str | None = None


class ChatReplies(Protocol):
    def reply(self, context: ReplyContext) -> Reply: ...


class TemplateReplies:
    template = "chat_reply.j2"

    def __init__(self, prompts: PromptLibrary, *, fallback_reason: str | None = None) -> None:
        self.prompts = prompts
        self.fallback_reason = fallback_reason

    def reply(self, context: ReplyContext) -> Reply:
        text = self.prompts.render(
            self.template,
            user_name=context.user_name,
            acknowledgement=context.acknowledgement,
            understood=list(context.understood),
            count=len(context.items),
            candidates=context.candidates,
            first_turn=context.first_turn,
            understood_nothing=context.understood_nothing,
            more=context.more,
            notes=list(context.notes),
        )
        return Reply(text=text, source="template", fallback_reason=self.fallback_reason)


def request_summary(wanted: Sequence[str]) -> str:
    """The line that backs claims in the intro: only validated filters, never free words."""
    return f"Looking for: {', '.join(wanted)}." if wanted else "Looking for: anything (no filters)."


CHAT_REPLY_PROMPTS = PromptTemplates(
    system="chat_reply_system.j2", user="chat_reply_user.j2", retry="explain_retry.j2"
)


class LLMReplies:
    """LLM reply through ``CheckedWriter`` (the explainer's loop and check), else the template.

    Build the writer with ``templates=CHAT_REPLY_PROMPTS`` and its own stats, so the chat's
    checks and fallbacks are counted apart from the recommendation explanations'."""

    render_template = "chat_reply_llm.j2"

    def __init__(self, writer: CheckedWriter, *, fallback: TemplateReplies | None = None) -> None:
        self.writer = writer
        self.prompts = writer.prompts
        self.stats = writer.stats
        self.fallback = fallback or TemplateReplies(writer.prompts)
        self.last: ExplainOutcome | None = None  # for tests and debugging

    def reply(self, context: ReplyContext) -> Reply:
        request = ExplanationRequest(
            user_name=context.user_name or "",
            summary=request_summary(context.wanted),
            items=context.items,
            prompt_extra={
                "unwanted": list(context.unwanted),
                "words": context.words,
                "first_turn": context.first_turn,
                "more": context.more,
            },
        )
        outcome = self.writer.write(request)
        self.last = outcome
        if outcome.answer is None:
            return self._fallback(context, outcome.fallback_reason or "unknown")
        try:
            text = self.prompts.render(
                self.render_template,
                acknowledgement=context.acknowledgement,
                intro=outcome.answer.intro,
                notes=list(context.notes),
            )
        except PromptError:
            log.exception("the chat reply template failed to render")
            return self._fallback(context, "prompt_error")
        self.stats.record_outcome("llm", None)
        reasons = {r.item.product.id: r.reason for r in outcome.answer.reasons}
        return Reply(text=text, source="llm", reasons=reasons)

    def _fallback(self, context: ReplyContext, reason: str) -> Reply:
        self.stats.record_outcome("template", reason)
        template = self.fallback.reply(context)
        return Reply(text=template.text, source="template", fallback_reason=reason)
